// Inventories, configs and restic repositories for integration tests over the sshd harness.
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Fleet } from "../harness/fleet.js";
import { useFastKeys } from "../../helpers/fast-restic-key.js";

export type TomlValue = string | number | boolean | string[];
export type Settings = Record<string, TomlValue>;

function tomlTable(name: string, settings: Settings): string {
  const lines = Object.entries(settings).map(([key, value]) => `${key} = ${JSON.stringify(value)}`);
  return `[${name}]\n${lines.join("\n")}\n`;
}

/**
 * An inventory for the fleet's hosts: the right login user and become for this machine (root: the
 * passwordless sudo user; otherwise: yourself with become = "none"), the fleet's key and known_hosts.
 */
export function writeInventory(
  fleet: Fleet,
  path: string,
  options: { hosts?: string[]; defaults?: Settings; host?: Record<string, Settings>; extra?: string } = {},
): string {
  const defaults: Settings = {
    user: fleet.loginUser,
    become: fleet.mode === "root" ? "sudo" : "none",
    identity_file: fleet.clientKey.privateKeyPath,
    known_hosts: fleet.knownHostsFile,
    connect_timeout: 10,
    connect_retries: 0,
    ...options.defaults,
  };
  const hosts = (options.hosts ?? fleet.hosts.map((h) => h.name)).map((name) => {
    const host = fleet.host(name);
    return tomlTable(`hosts.${name}`, { address: host.address, port: host.port, ...options.host?.[name] });
  });
  writeFileSync(path, [tomlTable("defaults", defaults), ...hosts, options.extra ?? ""].join("\n"));
  return path;
}

/**
 * A ResticLVM config of one standard_path job `data`: `source` backed up into `repo` (keep_last 3
 * unless `keepLast` says otherwise; null for none).
 */
export function standardPathConfig(options: {
  source: string;
  repo: string;
  passwordFile: string;
  keepLast?: number | null;
}): string {
  const keepLast = options.keepLast === undefined ? 3 : options.keepLast;
  return `[standard_path.data]
backup_source_path = ${JSON.stringify(options.source)}
exclude_paths = []

[[standard_path.data.repositories]]
repo_path = ${JSON.stringify(options.repo)}
password_file = ${JSON.stringify(options.passwordFile)}
${keepLast === null ? "" : `prune_keep_last = ${keepLast}\n`}`;
}

/**
 * A host of a fleet that shares repositories: its source `DIR/src/HOST` (one file) and its config
 * `DIR/HOST.toml`, one standard_path job `data` backed up into each of `repos` with keep_last.
 */
export function writeSharingHost(
  dir: string,
  host: string,
  options: { repos: string[]; passwordFile: string; keepLast: number },
): void {
  const source = join(dir, "src", host);
  mkdirSync(source, { recursive: true });
  writeFileSync(join(source, "file.txt"), `${host}\n`);
  const repository = (url: string) => `[[standard_path.data.repositories]]
repo_path = ${JSON.stringify(url)}
password_file = ${JSON.stringify(options.passwordFile)}
prune_keep_last = ${options.keepLast}
`;
  writeFileSync(
    join(dir, `${host}.toml`),
    `[standard_path.data]\nbackup_source_path = ${JSON.stringify(source)}\n\n${options.repos.map(repository).join("\n")}`,
  );
}

/** A password file the agent accepts: owned by whoever the agent runs as, mode 0600. */
export function writePasswordFile(path: string, password: string): string {
  writeFileSync(path, `${password}\n`, { mode: 0o600 });
  return path;
}

/**
 * `restic init`, then the repository's key made cheap to open (fast-restic-key.ts): `repo` is a local
 * path, or a URL whose directory here is `dir`.
 */
export function resticInit(repo: string, passwordFile: string, dir = repo): string {
  execFileSync("restic", ["init", "--repo", repo, "--password-file", passwordFile], { stdio: "pipe" });
  useFastKeys(dir, passwordFile);
  return repo;
}

/**
 * The run directories of this fleet's hosts still on disk: /run/rlvm-fleet/* as root (but locks/, the
 * hosts' lock files, which stay), $TMPDIR/rlvm-fleet.* otherwise (each holds a `host` file naming its
 * inventory host).
 */
export function leftoverRunDirs(fleet: Fleet): string[] {
  const names = new Set(fleet.hosts.map((h) => h.name));
  const ours = (dir: string) => {
    try {
      return names.has(readFileSync(join(dir, "host"), "utf8").trim());
    } catch {
      return true; // no host file yet: a run directory being made, count it
    }
  };
  const list = (dir: string, prefix = "") => {
    try {
      return readdirSync(dir)
        .filter((entry) => entry.startsWith(prefix))
        .map((entry) => join(dir, entry));
    } catch {
      return [];
    }
  };
  const dirs =
    fleet.mode === "root"
      ? list("/run/rlvm-fleet").filter((dir) => dir !== "/run/rlvm-fleet/locks") // the hosts' locks, kept
      : list(process.env["TMPDIR"] ?? "/tmp", "rlvm-fleet.");
  return dirs.filter(ours);
}

export function makeDir(path: string): string {
  mkdirSync(path, { recursive: true });
  return path;
}

/** The restic this pass of the tier runs, as the hosts do ("0.14.0"; scripts/test.mjs runs 0.14 and 0.18). */
export function localResticVersion(): string {
  const match = /^restic (\d+\.\d+\.\d+)/.exec(execFileSync("restic", ["version"], { encoding: "utf8" }));
  if (match?.[1] === undefined) throw new Error("cannot read restic's version");
  return match[1];
}

/**
 * restic's exit status for a missing repository, a lock held by another restic and a wrong password:
 * 10, 11, 12 from 0.17.1 (the tier's 0.18), 1 for all three on 0.14. The tier runs only these two.
 */
export function resticFailureExits(version: string): {
  missing: number;
  locked: number;
  wrongPassword: number;
} {
  if (version === "0.18.0") return { missing: 10, locked: 11, wrongPassword: 12 };
  if (version === "0.14.0") return { missing: 1, locked: 1, wrongPassword: 1 };
  throw new Error(`restic ${version}: the integration tier runs restic 0.14.0 and 0.18.0`);
}
