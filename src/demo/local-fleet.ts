// Three loopback "hosts" for the demo: one OpenSSH sshd each, with its own host key, running as the
// user who starts the demo. Nothing outside the demo directory is changed, except /run/sshd, which a
// root sshd insists on; it is removed again if the demo made it.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  readFileSync,
  rmdirSync,
  writeFileSync,
} from "node:fs";
import { connect } from "node:net";
import { freePort } from "./free-port.js";
import { userInfo } from "node:os";
import { join } from "node:path";

export interface DemoHost {
  name: string;
  address: string;
  port: number;
  dir: string;
}

export interface LocalFleet {
  hosts: DemoHost[];
  user: string;
  clientKey: string;
  knownHosts: string;
  stop(): Promise<void>;
}

const SEARCH = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/** An absolute path to an executable, from PATH and the usual system directories. */
export function findExecutable(name: string, path: string | undefined): string | null {
  for (const dir of [...(path ?? "").split(":").filter((d) => d.startsWith("/")), ...SEARCH]) {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // not here
    }
  }
  return null;
}

export interface DemoTools {
  sshd: string;
  sshKeygen: string;
  restic: string;
}

/** The demo's tools found on PATH and the system directories, or the names and Debian packages missing. */
export function findDemoTools(
  path: string | undefined,
): { tools: DemoTools; missing: null } | { tools: null; missing: { names: string[]; packages: string[] } } {
  const tools = {
    sshd: { file: findExecutable("sshd", path), pkg: "openssh-server" },
    sshKeygen: { file: findExecutable("ssh-keygen", path), pkg: "openssh-client" },
    restic: { file: findExecutable("restic", path), pkg: "restic" },
  };
  const missing = Object.entries(tools).filter(([, t]) => t.file === null);
  if (missing.length > 0) {
    return {
      tools: null,
      missing: {
        names: missing.map(([name]) => (name === "sshKeygen" ? "ssh-keygen" : name)),
        packages: [...new Set(missing.map(([, t]) => t.pkg))],
      },
    };
  }
  return {
    tools: {
      sshd: tools.sshd.file as string,
      sshKeygen: tools.sshKeygen.file as string,
      restic: tools.restic.file as string,
    },
    missing: null,
  };
}

export async function startLocalFleet(options: {
  dir: string;
  names: string[];
  sshd: string;
  sshKeygen: string;
}): Promise<LocalFleet> {
  const user = userInfo().username;
  const root = userInfo().uid === 0;
  let madeRunSshd = false;
  if (root && !existsSync("/run/sshd")) {
    mkdirSync("/run/sshd", { mode: 0o755 });
    madeRunSshd = true;
  }
  const clientKey = join(options.dir, "client_key");
  keygen(options.sshKeygen, clientKey, "rlvm-fleet demo controller");
  const authorizedKeys = join(options.dir, "authorized_keys");
  writeFileSync(authorizedKeys, readFileSync(`${clientKey}.pub`), { mode: 0o644 });

  const children: ChildProcess[] = [];
  const hosts: DemoHost[] = [];
  const knownHostsLines: string[] = [];
  const stop = async () => {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once("exit", () => resolve());
            child.kill("SIGTERM");
            setTimeout(() => child.kill("SIGKILL"), 3000).unref();
          }),
      ),
    );
    if (madeRunSshd) {
      try {
        rmdirSync("/run/sshd");
      } catch {
        // something else uses it now: leave it
      }
    }
  };
  try {
    for (const [index, name] of options.names.entries()) {
      const address = `127.0.0.${index + 2}`;
      const dir = join(options.dir, "hosts", name);
      mkdirSync(dir, { recursive: true });
      const hostKey = join(dir, "ssh_host_ed25519_key");
      keygen(options.sshKeygen, hostKey, `rlvm-fleet demo ${name}`);
      const port = await freePort(address);
      const config = join(dir, "sshd_config");
      writeFileSync(
        config,
        [
          `# The demo's sshd for ${name}; rlvm-fleet demo starts and stops it.`,
          `ListenAddress ${address}:${port}`,
          `HostKey ${hostKey}`,
          `PidFile ${join(dir, "sshd.pid")}`,
          `AuthorizedKeysFile ${authorizedKeys}`,
          "StrictModes no",
          "PubkeyAuthentication yes",
          "PasswordAuthentication no",
          "KbdInteractiveAuthentication no",
          "UsePAM no",
          "PermitRootLogin prohibit-password",
          `AllowUsers ${user}`,
          "UseDNS no",
          "PrintMotd no",
          "",
        ].join("\n"),
      );
      const child = spawn(options.sshd, ["-D", "-e", "-f", config], {
        stdio: ["ignore", "ignore", "pipe"],
        detached: false,
      });
      let log = "";
      child.stderr?.on("data", (chunk: Buffer) => (log = (log + chunk.toString()).slice(-4000)));
      children.push(child);
      await waitForPort(address, port, child, () => log);
      hosts.push({ name, address, port, dir });
      knownHostsLines.push(
        `[${address}]:${port} ${readFileSync(`${hostKey}.pub`, "utf8").trim().split(" ").slice(0, 2).join(" ")}`,
      );
    }
  } catch (error) {
    await stop();
    throw error;
  }
  const knownHosts = join(options.dir, "known_hosts");
  writeFileSync(knownHosts, `${knownHostsLines.join("\n")}\n`, { mode: 0o644 });
  return { hosts, user, clientKey, knownHosts, stop };
}

function keygen(sshKeygen: string, file: string, comment: string): void {
  execFileSync(sshKeygen, ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file], { stdio: "ignore" });
}

async function waitForPort(
  address: string,
  port: number,
  child: ChildProcess,
  log: () => string,
): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sshd on ${address}:${port} exited: ${log().trim()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: address, port });
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`sshd on ${address}:${port} did not start: ${log().trim()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
