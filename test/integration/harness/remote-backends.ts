// Real remote repositories for the integration tier, and a way to count what restic did in them:
// - a REST server: `rclone serve restic` (Debian's rclone) over a directory, optionally --append-only;
// - an SFTP server: an sshd of a second fleet, which root's restic on the hosts reaches through a
//   test-only ssh_config bound over /etc/ssh/ssh_config in the hosts' mount namespace;
// - a restic recorder: a wrapper bound over /usr/bin/restic in the same namespace, which appends each
//   call's repository and arguments to a log and runs the real restic. Counting there, not in the
//   report, is what proves "one prune per repository".
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  writeFileSync,
} from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import type { Fleet, FleetBind } from "./fleet.js";
import { requireExecutable } from "./prerequisites.js";
import { waitFor } from "../../helpers/wait-for.js";
import { freePort } from "../../../src/demo/free-port.js";

export interface ResticCall {
  /** RESTIC_REPOSITORY of the call ("" when unset, as for `restic version`). */
  readonly repository: string;
  /** restic's arguments, space-joined. */
  readonly args: string;
  /** The restic command: the first argument of lower-case letters (global flags may come first). */
  readonly command: string;
}

export interface ResticRecorder {
  /** Bind it with startFleet({ binds }). */
  readonly bind: FleetBind;
  calls(): ResticCall[];
  /** The repositories `restic <command>` ran in, one entry per call. */
  repositoriesOf(command: string): string[];
}

/** A root-owned directory with the real restic (as found now) and the recording wrapper. */
export function createResticRecorder(parent: string): ResticRecorder {
  const dir = mkdtempSync(join(parent, "restic-recorder-"));
  chmodSync(dir, 0o755);
  const real = join(dir, "restic.real");
  copyFileSync(realpathSync(requireExecutable("restic")), real);
  chmodSync(real, 0o755);
  const log = join(dir, "calls.log");
  writeFileSync(log, "", { mode: 0o644 });
  const wrapper = join(dir, "restic");
  // One short line per call, appended (O_APPEND): concurrent hosts never interleave within a line.
  writeFileSync(
    wrapper,
    `#!/bin/sh\nprintf '%s\\t%s\\n' "\${RESTIC_REPOSITORY-}" "$*" >>${log}\nexec ${real} "$@"\n`,
    { mode: 0o755 },
  );
  chmodSync(wrapper, 0o755);
  const calls = (): ResticCall[] =>
    readFileSync(log, "utf8")
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => {
        const tab = line.indexOf("\t");
        const args = line.slice(tab + 1);
        return {
          repository: line.slice(0, tab),
          args,
          command: args.split(" ").find((word) => /^[a-z]+$/.test(word)) ?? "",
        };
      });
  return {
    bind: { source: wrapper, target: "/usr/bin/restic" },
    calls,
    repositoriesOf: (command) =>
      calls()
        .filter((c) => c.command === command)
        .map((c) => c.repository),
  };
}

export interface RestServer {
  readonly port: number;
  /** `rest:http://127.0.0.1:PORT/NAME/`. */
  url(name: string): string;
  /** The directory of url(name) on this machine. */
  path(name: string): string;
  stop(): Promise<void>;
}

/** `rclone serve restic` over `dir` on loopback; `appendOnly` refuses every delete. */
export async function startRestServer(
  dir: string,
  options: { appendOnly?: boolean } = {},
): Promise<RestServer> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort("127.0.0.1");
  const args = [
    "serve",
    "restic",
    "--addr",
    `127.0.0.1:${port}`,
    ...(options.appendOnly ? ["--append-only"] : []),
    dir,
  ];
  const child: ChildProcess = spawn(requireExecutable("rclone"), args, {
    stdio: ["ignore", "ignore", "pipe"],
    // No rclone.conf is read or written: the local directory needs none.
    env: { ...process.env, RCLONE_CONFIG: "/dev/null" },
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  await waitFor(
    `rclone serve restic on 127.0.0.1:${port}`,
    () => {
      if (child.exitCode !== null) throw new Error(`rclone serve restic exited: ${stderr}`);
      return new Promise<boolean>((resolve) => {
        const socket = connect({ host: "127.0.0.1", port }, () => {
          socket.destroy();
          resolve(true);
        });
        socket.on("error", () => resolve(false));
      });
    },
    { timeoutMs: 20_000, detail: () => stderr },
  );
  return {
    port,
    url: (name) => `rest:http://127.0.0.1:${port}/${name}/`,
    path: (name) => join(dir, name),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

export interface SftpServer {
  /** The ssh_config to bind over /etc/ssh/ssh_config for the hosts (root's restic reads it). */
  readonly bind: FleetBind;
  /** `sftp:NAME:PATH`, PATH under the server's directory. */
  url(path: string): string;
  /** The directory the server's login user writes repositories into. */
  readonly dir: string;
  /** Gives `dir` and everything in it (repositories initialised locally) to the server's login user. */
  handOver(): void;
}

/**
 * An SFTP server: `server` is a one-host fleet (its sshd has internal-sftp); root on the hosts logs in
 * as its login user with the server fleet's client key, its host key checked against the server
 * fleet's known_hosts. Repositories go below `dir`, which that user owns (see `handOver`).
 */
export function sftpServer(server: Fleet, dir: string): SftpServer {
  const host = server.hosts[0];
  if (host === undefined) throw new Error("the SFTP server fleet has no host");
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const config = join(server.dir, "hosts-ssh_config");
  writeFileSync(
    config,
    [
      "# The hosts' ssh client config in this test (bound over /etc/ssh/ssh_config): restic's sftp: backend.",
      `Host ${host.name}`,
      `  HostName ${host.address}`,
      `  Port ${host.port}`,
      `  User ${server.loginUser}`,
      `  IdentityFile ${server.clientKey.privateKeyPath}`,
      "  IdentitiesOnly yes",
      `  UserKnownHostsFile ${server.knownHostsFile}`,
      "  StrictHostKeyChecking yes",
      "  BatchMode yes",
      "",
    ].join("\n"),
    { mode: 0o644 },
  );
  return {
    bind: { source: config, target: "/etc/ssh/ssh_config" },
    url: (path) => `sftp:${host.name}:${join(dir, path)}`,
    dir,
    handOver: () => execFileSync("chown", ["-R", `${server.loginUser}:`, dir]),
  };
}
