// Files the controller reads before connecting anywhere: keys, passphrases, sudo passwords and
// known_hosts, each read once however many hosts name it. A problem here is a usage error: nothing ran.
import { readFileSync, statSync } from "node:fs";
import { UsageError, type Problem } from "../errors.js";
import type { HostSpec } from "../inventory/load-inventory.js";
import { parseKnownHosts, type KnownHostEntry } from "../transport/known-hosts.js";

export interface LocalFiles {
  privateKey(path: string | null): Buffer | null;
  secret(path: string | null): string | null;
  knownHosts(path: string): KnownHostEntry[];
}

type FileSettings = Pick<
  HostSpec,
  | "name"
  | "identity_file"
  | "identity_passphrase_file"
  | "become_password_file"
  | "known_hosts"
  | "known_hosts_also"
> & { jump?: HostSpec["jump"] };

export function loadLocalFiles(hosts: readonly FileSettings[], inventoryFile: string): LocalFiles {
  const problems: Problem[] = [];
  const keys = new Map<string, Buffer>();
  const secrets = new Map<string, string>();
  const knownHosts = new Map<string, KnownHostEntry[]>();

  const read = (path: string, what: string, key: string, privateFile: boolean): Buffer | null => {
    try {
      if (privateFile && (statSync(path).mode & 0o077) !== 0) {
        problems.push({
          file: inventoryFile,
          path: key,
          message: `${what} ${path} can be read by other users`,
          hint: `chmod 600 ${path}`,
        });
        return null;
      }
      return readFileSync(path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      problems.push({
        file: inventoryFile,
        path: key,
        message: `${what} ${path} ${code === "ENOENT" ? "does not exist" : `cannot be read (${code ?? String(error)})`}`,
        hint: `fix ${key} in the inventory`,
      });
      return null;
    }
  };

  // Bastions' keys and known_hosts too: a hop connects as a target does.
  const hops = hosts.flatMap((h) => h.jump ?? []).map((hop) => ({ ...hop, become_password_file: null }));
  for (const host of [...hosts, ...hops]) {
    const at = (key: string) => `hosts.${host.name}.${key} (or its group or [defaults])`;
    if (host.identity_file !== null && !keys.has(host.identity_file)) {
      const bytes = read(host.identity_file, "identity_file", at("identity_file"), true);
      if (bytes !== null) keys.set(host.identity_file, bytes);
    }
    for (const [key, path] of [
      ["identity_passphrase_file", host.identity_passphrase_file],
      ["become_password_file", host.become_password_file],
    ] as const) {
      if (path === null || secrets.has(path)) continue;
      const bytes = read(path, key, at(key), true);
      // The first line is the secret; a trailing newline is not part of it.
      if (bytes !== null) secrets.set(path, bytes.toString("utf8").split(/\r?\n/)[0] ?? "");
    }
    for (const file of [host.known_hosts, ...(host.known_hosts_also ?? [])]) {
      if (knownHosts.has(file)) continue;
      let text = "";
      try {
        text = readFileSync(file, "utf8");
      } catch (error) {
        // A missing known_hosts is an empty one: every host is unknown (and accept-new creates it).
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
          problems.push({
            file: inventoryFile,
            path: at("known_hosts"),
            message: `known_hosts ${file} cannot be read (${String(error)})`,
          });
        }
      }
      knownHosts.set(file, parseKnownHosts(text, file).entries);
    }
  }
  if (problems.length > 0)
    throw new UsageError("local files named by the inventory are not usable", { problems });
  return {
    privateKey: (path) => (path === null ? null : (keys.get(path) ?? null)),
    secret: (path) => (path === null ? null : (secrets.get(path) ?? null)),
    knownHosts: (path) => knownHosts.get(path) ?? [],
  };
}
