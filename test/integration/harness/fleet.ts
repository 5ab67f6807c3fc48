import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync, rmSync } from "node:fs";
import { chmod, mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { freePort } from "../../../src/demo/free-port.js";
import { tmpdir, userInfo } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  isProcessAlive,
  killProcessesNow,
  listDescendants,
  listProcessesWithEnvironment,
  sendSignal,
  terminateProcesses,
} from "./process-tree.js";
import { isRoot, requireExecutable, requirePrerequisites } from "./prerequisites.js";
import { runCommand, type CommandResult } from "./run-command.js";
import { generateEd25519Key, type KeyPair } from "./ssh-keys.js";
import { provisionTestUsers } from "./test-users.js";

export type { KeyPair } from "./ssh-keys.js";
export type { CommandResult } from "./run-command.js";
export { PASSWORD_SUDO_USER, PASSWORDLESS_SUDO_USER, RESTRICTED_USER } from "./test-users.js";

/**
 * "root": sshd runs as root, logins as PASSWORDLESS_SUDO_USER / PASSWORD_SUDO_USER (or root) work and sudo
 * is real. "user": sshd runs unprivileged, which only lets it log in the user running the tests, without
 * sudo: tests use `become = "none"`.
 */
export type FleetMode = "root" | "user";

export interface FleetOptions {
  /** A count (hosts are named host1, host2, …) or the host names. */
  readonly hosts: number | readonly string[];
  /** Parent directory of the fleet's temporary directory; defaults to the OS temp dir. */
  readonly dir?: string;
  /** How long each sshd may take to accept connections. Default 20 s. */
  readonly startTimeoutMs?: number;
  /** Start every sshd inside this network namespace (`ip netns exec`): unreachable from here. */
  readonly netns?: string;
  /** The first loopback address's index: 2 is 127.0.0.2 (two fleets in one namespace apart). */
  readonly firstAddress?: number;
  /**
   * Root only: every sshd starts in a private mount namespace with each `source` bound over its
   * `target`, so its sessions, sudo, agents and restic see them and the rest of the machine does not
   * (a restic wrapper over /usr/bin/restic, a test ssh_config for root's sftp: repositories).
   */
  readonly binds?: readonly FleetBind[];
  /**
   * More sshd_config lines for some hosts, by host name (e.g. a bastion serving hundreds of
   * connections at once: `MaxStartups 1000`). They go first, so they win: sshd keeps the first value
   * of a keyword. Not for `Match` blocks.
   */
  readonly sshdConfig?: Readonly<Record<string, readonly string[]>>;
}

export interface FleetBind {
  readonly source: string;
  readonly target: string;
}

export interface FleetHost {
  readonly name: string;
  /** 127.0.0.2, 127.0.0.3, … in fleet order. */
  readonly address: string;
  readonly port: number;
  /** `ssh-ed25519 AAAA…` of the key sshd currently uses. */
  readonly hostKeyPub: string;
  /** `SHA256:…` of hostKeyPub. */
  readonly hostKeyFingerprint: string;
  /** The line a known_hosts file needs for this host: `[127.0.0.2]:PORT ssh-ed25519 AAAA…`. */
  readonly knownHostsLine: string;
  /** sshd's stderr (LogLevel VERBOSE), appended across restarts. */
  readonly logFile: string;
  /** pid of the listening sshd, undefined while stopped. */
  readonly pid: number | undefined;
  readonly running: boolean;
}

export interface SshOptions {
  /** Private key to log in with; defaults to the fleet's client key. */
  readonly identityFile?: string;
  /** Defaults to fleet.knownHostsFile. */
  readonly knownHostsFile?: string;
  /** More `-o Name=value` options, e.g. ["ConnectTimeout=2"]; they take precedence over the harness's. */
  readonly sshOptions?: readonly string[];
}

export interface SshExecOptions extends SshOptions {
  /** Sent to the remote command's stdin (e.g. a sudo password for `sudo -S`). */
  readonly input?: string;
  /** Default 30 s; the ssh client is killed after it. */
  readonly timeoutMs?: number;
  /** Environment of the ssh client (e.g. SSH_ASKPASS); defaults to the test process's. */
  readonly env?: NodeJS.ProcessEnv;
}

export interface Fleet {
  /** Unique per fleet; sessions on its hosts see it as $RLVM_FLEET_ID (and their host as $RLVM_FLEET_HOST). */
  readonly id: string;
  readonly mode: FleetMode;
  /** Temporary directory holding keys, configs and logs; removed by stop(). */
  readonly dir: string;
  readonly hosts: readonly FleetHost[];
  /** User to log in as: rlvmtest (passwordless sudo) in root mode, the current user in user mode. */
  readonly loginUser: string;
  /** Root mode only: user whose sudo asks for sudoPassword. */
  readonly passwordUser: string | undefined;
  readonly sudoPassword: string | undefined;
  /** Authorized for every login user on every host. */
  readonly clientKey: KeyPair;
  /** known_hosts with the keys the hosts had at start (replaceHostKey does not update it unless asked). */
  readonly knownHostsFile: string;

  host(name: string): FleetHost;
  /** A new key in the fleet dir; authorized on all hosts only with `authorize: true`. */
  createKey(name: string, options?: { passphrase?: string; authorize?: boolean }): Promise<KeyPair>;
  /** A key no host accepts. */
  createWrongKey(): Promise<KeyPair>;
  /** An authorized key protected by a passphrase (random unless given). */
  createPassphraseKey(passphrase?: string): Promise<KeyPair>;
  /** Writes known_hosts lines for the hosts' current keys; returns the path. */
  writeKnownHosts(path?: string): Promise<string>;
  /**
   * Stops the host's sshd: SIGTERM, SIGKILL after 3 s. By default its open sessions and the commands they
   * run die with it (a host going down); with keepSessions only the listener stops, like `systemctl stop ssh`.
   */
  stopHost(name: string, options?: { keepSessions?: boolean }): Promise<void>;
  /**
   * SIGKILLs the host's sshd as a crash would: the listener and its session processes (sshd too), not the
   * commands they run. Their connections drop without an exit status; startHost brings it back.
   */
  killSshd(name: string): Promise<void>;
  /** Starts a stopped host again on the same address, port and host key. */
  /**
   * Start a stopped host again (same port and key). `hidePaths` (root only) starts its sshd in a
   * private mount namespace with /dev/null bound over each path: for "missing binary" faults that
   * affect only this host.
   */
  startHost(name: string, options?: { hidePaths?: readonly string[] }): Promise<void>;
  /** Gives the host a new host key (restarting it if it runs). */
  replaceHostKey(name: string, options?: { updateKnownHosts?: boolean }): Promise<void>;
  /** Arguments for the system ssh client (without the command): strict host key checking, batch mode. */
  sshArgs(host: FleetHost | string, user: string, options?: SshOptions): string[];
  /** Runs a command on a host with the system ssh client. */
  sshExec(
    host: FleetHost | string,
    user: string,
    command: string,
    options?: SshExecOptions,
  ): Promise<CommandResult>;
  /** Live pids belonging to the fleet: listening sshds, their sessions and whatever those started. */
  processIds(): number[];
  /** Kills every sshd of the fleet and what runs under it, then removes dir. Idempotent. */
  stop(): Promise<void>;
}

const DEFAULT_START_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 3_000;
// 'exit' handlers block the dying process, so they wait less.
const EXIT_HANDLER_GRACE_MS = 1_000;
const MAX_PORT_ATTEMPTS = 5;
const STARTUP_CONCURRENCY = 16;
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Starts one sshd per host on 127.0.0.2, 127.0.0.3, … and resolves once all of them accept connections. */
export async function startFleet(options: FleetOptions): Promise<Fleet> {
  requirePrerequisites();
  const names = hostNames(options.hosts);
  for (const [name, lines] of Object.entries(options.sshdConfig ?? {})) {
    if (!names.includes(name)) throw new Error(`sshdConfig names no host of the fleet: ${name}`);
    if (lines.some((line) => /[\r\n]/.test(line))) throw new Error(`sshdConfig for ${name}: one line each`);
  }
  const mode: FleetMode = isRoot() ? "root" : "user";
  const users = mode === "root" ? await provisionTestUsers() : undefined;
  const parent = resolve(options.dir ?? tmpdir());
  await mkdir(parent, { recursive: true });
  const dir = await mkdtemp(join(parent, "rlvm-fleet-"));
  if (/\s/.test(dir)) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`fleet directory ${dir} contains whitespace, which sshd_config cannot take unquoted`);
  }
  const fleet = new SshdFleet({
    dir,
    mode,
    names,
    loginUser: users?.loginUser ?? userInfo().username,
    passwordUser: users?.passwordUser,
    sudoPassword: users?.sudoPassword,
    startTimeoutMs: options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
    netns: options.netns,
    firstAddress: options.firstAddress ?? 2,
    binds: options.binds ?? [],
    sshdConfig: options.sshdConfig ?? {},
  });
  if (fleet.binds.length > 0 && mode !== "root") {
    await fleet.stop();
    throw new Error("binds need root (a private mount namespace)");
  }
  try {
    await fleet.initialize();
  } catch (error) {
    await fleet.stop().catch(() => {});
    throw error;
  }
  return fleet;
}

function hostNames(hosts: FleetOptions["hosts"]): string[] {
  const names =
    typeof hosts === "number" ? Array.from({ length: hosts }, (_, i) => `host${i + 1}`) : [...hosts];
  if (names.length === 0) throw new Error("a fleet needs at least one host");
  for (const name of names) {
    if (!SAFE_NAME.test(name)) throw new Error(`host name ${JSON.stringify(name)} is not [A-Za-z0-9._-]`);
  }
  if (new Set(names).size !== names.length) throw new Error(`duplicate host names in ${names.join(", ")}`);
  return names;
}

/** 127.0.0.2, 127.0.0.3, …; skips .0 and .255 in the last octet. */
function loopbackAddresses(count: number, first = 2): string[] {
  const addresses: string[] = [];
  for (let n = first; addresses.length < count; n++) {
    const last = n & 0xff;
    if (last === 0 || last === 0xff) continue;
    if (n > 0xfffffe) throw new Error("more hosts than 127/8 has addresses");
    addresses.push(`127.${(n >> 16) & 0xff}.${(n >> 8) & 0xff}.${last}`);
  }
  return addresses;
}

/** Whether whatever listens on address:port sends an SSH banner; false as soon as giveUp settles. */
function answersWithSshBanner(
  address: string,
  port: number,
  timeoutMs: number,
  giveUp: Promise<unknown>,
): Promise<boolean> {
  return new Promise((resolveAnswer) => {
    const socket = connect({ host: address, port });
    let received = "";
    const finish = (answer: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolveAnswer(answer);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    void giveUp.then(() => finish(false));
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1");
      if (received.includes("\n")) finish(received.startsWith("SSH-"));
    });
    socket.on("error", () => finish(false));
    socket.on("close", () => finish(false));
  });
}

async function readLogFrom(path: string, offset: number): Promise<string> {
  const handle = await open(path, "r").catch(() => undefined);
  if (handle === undefined) return "";
  try {
    const { size } = await handle.stat();
    const length = Math.max(0, size - offset);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, offset);
    return buffer.toString("utf8");
  } finally {
    await handle.close();
  }
}

function tail(text: string, lines: number): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

async function mapWithConcurrency<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>) {
  let next = 0;
  const errors: unknown[] = [];
  const worker = async () => {
    for (let index = next++; index < items.length; index = next++) {
      try {
        await work(items[index] as T);
      } catch (error) {
        errors.push(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (errors.length > 0) throw errors[0];
}

/**
 * sshd reads AuthorizedKeysFile with the login user's uid, so in root mode the fleet dir's ancestors must be
 * searchable by other users (a TMPDIR under /root would not be).
 */
async function assertSearchableByOthers(dir: string): Promise<void> {
  for (let ancestor = dirname(dir); ; ancestor = dirname(ancestor)) {
    const { mode } = await stat(ancestor);
    if ((mode & 0o001) === 0) {
      throw new Error(
        `${ancestor} is not searchable by other users, so sshd cannot read the fleet's authorized_keys as ` +
          `the login user: pass startFleet({ dir }) or set TMPDIR to a directory under e.g. /tmp`,
      );
    }
    if (ancestor === "/") return;
  }
}

let perSourcePenaltiesSupported: Promise<boolean> | undefined;

/**
 * OpenSSH 9.8 added PerSourcePenalties, on by default: after a few failed logins (which "wrong key" tests
 * provoke on purpose) sshd refuses the source address for a while. Older sshd rejects the keyword.
 */
function supportsPerSourcePenalties(sshd: string, probeDir: string, hostKey: string): Promise<boolean> {
  perSourcePenaltiesSupported ??= (async () => {
    const config = join(probeDir, "probe_sshd_config");
    await writeFile(config, `HostKey ${hostKey}\nPerSourcePenalties no\n`);
    const result = await runCommand(sshd, ["-t", "-f", config]);
    await rm(config, { force: true });
    return result.code === 0;
  })();
  return perSourcePenaltiesSupported;
}

class SshdHost implements FleetHost {
  port = 0;
  hidePaths: string[] = [];
  hostKeyPub = "";
  hostKeyFingerprint = "";
  process: ChildProcess | undefined;
  hasExited = true;
  exited: Promise<void> = Promise.resolve();
  readonly dir: string;
  readonly hostKeyPath: string;
  readonly configPath: string;
  readonly pidFile: string;
  readonly logFile: string;

  constructor(
    readonly name: string,
    readonly address: string,
    fleetDir: string,
  ) {
    this.dir = join(fleetDir, "hosts", name);
    this.hostKeyPath = join(this.dir, "ssh_host_ed25519_key");
    this.configPath = join(this.dir, "sshd_config");
    this.pidFile = join(this.dir, "sshd.pid");
    this.logFile = join(this.dir, "sshd.log");
  }

  get knownHostsLine(): string {
    return `[${this.address}]:${this.port} ${this.hostKeyPub}`;
  }

  get pid(): number | undefined {
    return this.running ? this.process?.pid : undefined;
  }

  get running(): boolean {
    return !this.hasExited;
  }
}

// Fleets whose sshds may still run, killed synchronously if the test process exits without stop().
const liveFleets = new Set<SshdFleet>();
let exitHandlersInstalled = false;

interface WatchdogMessage {
  readonly id: string;
  readonly dir?: string;
  readonly pids?: readonly number[];
  readonly keepDir?: boolean;
  readonly done?: boolean;
}

let watchdog: ChildProcess | undefined;

/**
 * 'exit' handlers do not run when the test process is SIGKILLed (e.g. by a test runner giving up on it).
 * A detached watchdog process notices that from its stdin pipe closing and cleans up instead.
 */
function tellWatchdog(message: WatchdogMessage): void {
  if (watchdog === undefined) {
    const script = fileURLToPath(new URL("./fleet-watchdog.mjs", import.meta.url));
    const env = { ...process.env };
    delete env["NODE_OPTIONS"];
    watchdog = spawn(process.execPath, [script], {
      detached: true,
      stdio: ["pipe", "ignore", "ignore"],
      env,
    });
    // Neither the watchdog nor the pipe to it may keep the test process alive.
    watchdog.unref();
    (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    watchdog.stdin?.on("error", () => {});
  }
  watchdog.stdin?.write(`${JSON.stringify(message)}\n`);
}

function killLiveFleetsNow(): void {
  for (const fleet of liveFleets) fleet.killNow();
}

function installExitHandlers(): void {
  if (exitHandlersInstalled) return;
  exitHandlersInstalled = true;
  process.on("exit", killLiveFleetsNow);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = () => {
      killLiveFleetsNow();
      // Adding a listener disables Node's default "die on signal"; restore it if nobody else handles it.
      if (process.listenerCount(signal) === 1) {
        process.removeListener(signal, onSignal);
        process.kill(process.pid, signal);
      }
    };
    process.on(signal, onSignal);
  }
}

interface SshdFleetSettings {
  readonly dir: string;
  readonly mode: FleetMode;
  readonly names: readonly string[];
  readonly loginUser: string;
  readonly passwordUser: string | undefined;
  readonly sudoPassword: string | undefined;
  readonly startTimeoutMs: number;
  readonly netns: string | undefined;
  readonly firstAddress: number;
  readonly binds: readonly FleetBind[];
  readonly sshdConfig: Readonly<Record<string, readonly string[]>>;
}

class SshdFleet implements Fleet {
  readonly id: string;
  readonly mode: FleetMode;
  readonly dir: string;
  readonly loginUser: string;
  readonly passwordUser: string | undefined;
  readonly sudoPassword: string | undefined;
  readonly knownHostsFile: string;
  readonly hosts: readonly SshdHost[];
  clientKey!: KeyPair;
  private readonly keysDir: string;
  private readonly authorizedKeysFile: string;
  private readonly authorizedKeys: string[] = [];
  private readonly startTimeoutMs: number;
  private readonly netns: string | undefined;
  readonly binds: readonly FleetBind[];
  private readonly extraSshdConfig: Readonly<Record<string, readonly string[]>>;
  private readonly sshd = requireExecutable("sshd");
  private readonly ssh = requireExecutable("ssh");
  private perSourcePenalties = false;
  // Sessions of hosts stopped with keepSessions: their sshd processes no longer descend from a listener.
  private readonly detachedSessions = new Set<number>();
  private stopping: Promise<void> | undefined;

  constructor(settings: SshdFleetSettings) {
    this.dir = settings.dir;
    this.id = basename(settings.dir);
    this.mode = settings.mode;
    this.loginUser = settings.loginUser;
    this.passwordUser = settings.passwordUser;
    this.sudoPassword = settings.sudoPassword;
    this.startTimeoutMs = settings.startTimeoutMs;
    this.netns = settings.netns;
    this.binds = settings.binds;
    this.extraSshdConfig = settings.sshdConfig;
    this.keysDir = join(this.dir, "keys");
    this.authorizedKeysFile = join(this.dir, "authorized_keys");
    this.knownHostsFile = join(this.dir, "known_hosts");
    const addresses = loopbackAddresses(settings.names.length, settings.firstAddress);
    this.hosts = settings.names.map((name, i) => new SshdHost(name, addresses[i] as string, this.dir));
    liveFleets.add(this);
    installExitHandlers();
  }

  async initialize(): Promise<void> {
    if (this.mode === "root") {
      await chmod(this.dir, 0o711);
      await assertSearchableByOthers(this.dir);
    }
    await mkdir(this.keysDir, { mode: 0o700 });
    this.clientKey = await generateEd25519Key(join(this.keysDir, "client"), { comment: `${this.id}-client` });
    await this.authorize(this.clientKey);
    this.perSourcePenalties = await supportsPerSourcePenalties(
      this.sshd,
      this.keysDir,
      this.clientKey.privateKeyPath,
    );
    await mapWithConcurrency(this.hosts, STARTUP_CONCURRENCY, async (host) => {
      await mkdir(host.dir, { recursive: true, mode: 0o700 });
      await this.generateHostKey(host);
      await this.startSshd(host, { reusePort: false });
    });
    await this.writeKnownHosts();
  }

  host(name: string): SshdHost {
    const host = this.hosts.find((candidate) => candidate.name === name);
    if (host === undefined)
      throw new Error(`no host ${name} in fleet (${this.hosts.map((h) => h.name).join(", ")})`);
    return host;
  }

  async createKey(
    name: string,
    options: { passphrase?: string; authorize?: boolean } = {},
  ): Promise<KeyPair> {
    if (!SAFE_NAME.test(name) || name === "client") throw new Error(`bad key name ${JSON.stringify(name)}`);
    const key = await generateEd25519Key(join(this.keysDir, name), {
      comment: `${this.id}-${name}`,
      passphrase: options.passphrase ?? "",
    });
    if (options.authorize) await this.authorize(key);
    return key;
  }

  createWrongKey(): Promise<KeyPair> {
    return this.createKey("wrong", { authorize: false });
  }

  createPassphraseKey(passphrase = `pass-${Math.random().toString(36).slice(2)}`): Promise<KeyPair> {
    return this.createKey("passphrase", { passphrase, authorize: true });
  }

  async writeKnownHosts(path = this.knownHostsFile): Promise<string> {
    await writeFile(path, this.hosts.map((host) => `${host.knownHostsLine}\n`).join(""), { mode: 0o644 });
    return path;
  }

  async stopHost(name: string, options: { keepSessions?: boolean } = {}): Promise<void> {
    const host = this.host(name);
    const listener = host.process;
    if (listener?.pid === undefined || !host.running) return;
    if (options.keepSessions) {
      for (const pid of listDescendants([listener.pid])) this.detachedSessions.add(pid);
      await terminateProcesses([listener.pid], { graceMs: STOP_GRACE_MS, includeDescendants: false });
    } else {
      await terminateProcesses([listener.pid], {
        graceMs: STOP_GRACE_MS,
        findMore: () => this.sessionProcesses(host),
      });
    }
    await host.exited;
    this.reportToWatchdog();
  }

  async killSshd(name: string): Promise<void> {
    const host = this.host(name);
    const listener = host.process;
    if (listener?.pid === undefined || !host.running) throw new Error(`host ${name} is not running`);
    const sessions = listDescendants([listener.pid]);
    // What the sessions ran outlives them: stop() still finds it.
    for (const pid of sessions) this.detachedSessions.add(pid);
    sendSignal([listener.pid, ...sessions.filter(isSshdProcess)], "SIGKILL");
    await host.exited;
    this.reportToWatchdog();
  }

  async startHost(name: string, options: { hidePaths?: readonly string[] } = {}): Promise<void> {
    const host = this.host(name);
    if (host.running) throw new Error(`host ${name} is already running (pid ${host.pid})`);
    if ((options.hidePaths ?? []).length > 0 && this.mode !== "root") {
      throw new Error("hidePaths needs root (a private mount namespace)");
    }
    host.hidePaths = [...(options.hidePaths ?? [])];
    await this.startSshd(host, { reusePort: true });
  }

  async replaceHostKey(name: string, options: { updateKnownHosts?: boolean } = {}): Promise<void> {
    const host = this.host(name);
    const wasRunning = host.running;
    if (wasRunning) await this.stopHost(name);
    await this.generateHostKey(host);
    if (wasRunning) await this.startHost(name);
    if (options.updateKnownHosts) await this.writeKnownHosts();
  }

  sshArgs(hostOrName: FleetHost | string, user: string, options: SshOptions = {}): string[] {
    const host = typeof hostOrName === "string" ? this.host(hostOrName) : hostOrName;
    // ssh keeps the first value it sees for an option, so the caller's go first.
    const sshOptions = [
      ...(options.sshOptions ?? []),
      `UserKnownHostsFile=${options.knownHostsFile ?? this.knownHostsFile}`,
      "GlobalKnownHostsFile=/dev/null",
      "StrictHostKeyChecking=yes",
      "UpdateHostKeys=no",
      "BatchMode=yes",
      // Only the given key: not whatever the developer's ssh-agent or ~/.ssh holds.
      "IdentitiesOnly=yes",
      "IdentityAgent=none",
      "ConnectTimeout=10",
    ];
    return [
      // Ignore ~/.ssh/config and /etc/ssh/ssh_config (ControlMaster, ProxyJump, … would change behaviour).
      "-F",
      "/dev/null",
      ...sshOptions.flatMap((option) => ["-o", option]),
      "-i",
      options.identityFile ?? this.clientKey.privateKeyPath,
      "-p",
      String(host.port),
      "-l",
      user,
      host.address,
    ];
  }

  sshExec(
    host: FleetHost | string,
    user: string,
    command: string,
    options: SshExecOptions = {},
  ): Promise<CommandResult> {
    return runCommand(this.ssh, [...this.sshArgs(host, user, options), "--", command], {
      timeoutMs: options.timeoutMs ?? 30_000,
      ...(options.input === undefined ? {} : { input: options.input }),
      ...(options.env === undefined ? {} : { env: options.env }),
    });
  }

  processIds(): number[] {
    const roots = this.rootPids();
    return [...new Set([...roots, ...listDescendants(roots), ...this.markedProcesses()])];
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      try {
        await terminateProcesses(this.rootPids(), {
          graceMs: STOP_GRACE_MS,
          findMore: () => this.markedProcesses(),
        });
        await Promise.all(this.hosts.map((host) => host.exited));
      } finally {
        liveFleets.delete(this);
        tellWatchdog({ id: this.id, done: true });
        if (keepFleetDir()) {
          console.warn(`RLVM_KEEP_FLEET_DIR=1: keeping ${this.dir}`);
        } else {
          await rm(this.dir, { recursive: true, force: true });
        }
      }
    })();
    return this.stopping;
  }

  /** Synchronous last resort for the process 'exit' handler. */
  killNow(): void {
    killProcessesNow(this.rootPids(), {
      graceMs: EXIT_HANDLER_GRACE_MS,
      findMore: () => this.markedProcesses(),
    });
    liveFleets.delete(this);
    if (!keepFleetDir()) rmSync(this.dir, { recursive: true, force: true });
  }

  private reportToWatchdog(): void {
    tellWatchdog({ id: this.id, dir: this.dir, pids: this.rootPids(), keepDir: keepFleetDir() });
  }

  /** Listening sshds plus detached sessions: the roots of the fleet's process trees. */
  private rootPids(): number[] {
    const listeners = this.hosts.flatMap((host) => (host.pid === undefined ? [] : [host.pid]));
    return [...listeners, ...[...this.detachedSessions].filter(isProcessAlive)];
  }

  private markedProcesses(): number[] {
    return listProcessesWithEnvironment([`RLVM_FLEET_ID=${this.id}`]);
  }

  private sessionProcesses(host: SshdHost): number[] {
    return listProcessesWithEnvironment([`RLVM_FLEET_ID=${this.id}`, `RLVM_FLEET_HOST=${host.name}`]);
  }

  private async authorize(key: KeyPair): Promise<void> {
    this.authorizedKeys.push(`${key.publicKey}\n`);
    // sshd rereads it on every login, so no restart is needed. In root mode it reads it as the login user.
    await writeFile(this.authorizedKeysFile, this.authorizedKeys.join(""), { mode: 0o644 });
    await chmod(this.authorizedKeysFile, 0o644);
  }

  private async generateHostKey(host: SshdHost): Promise<void> {
    const key = await generateEd25519Key(host.hostKeyPath, { comment: `${this.id}-${host.name}` });
    host.hostKeyPub = key.publicKey;
    host.hostKeyFingerprint = key.fingerprint;
  }

  private sshdConfig(host: SshdHost): string {
    return [
      "# Written by the rlvm-fleet integration test harness.",
      ...(this.extraSshdConfig[host.name] ?? []),
      `ListenAddress ${host.address}:${host.port}`,
      `HostKey ${host.hostKeyPath}`,
      `PidFile ${host.pidFile}`,
      `AuthorizedKeysFile ${this.authorizedKeysFile}`,
      // The fleet dir sits in world-writable /tmp, which StrictModes rejects as a home for authorized_keys.
      "StrictModes no",
      "PubkeyAuthentication yes",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      // PAM cannot work for an unprivileged sshd, and sudo does its own PAM anyway.
      "UsePAM no",
      "PermitRootLogin prohibit-password",
      "LogLevel VERBOSE",
      "UseDNS no",
      "PrintMotd no",
      "PrintLastLog no",
      // Tests open many connections at once; the default 10:30:100 randomly drops some.
      "MaxStartups 200",
      "MaxSessions 100",
      "Subsystem sftp internal-sftp",
      // Lets stop() find commands that escaped the sshd process tree, and tests tell "hosts" apart.
      `SetEnv RLVM_FLEET_ID=${this.id} RLVM_FLEET_HOST=${host.name}`,
      ...(this.perSourcePenalties ? ["PerSourcePenalties no"] : []),
      "",
    ].join("\n");
  }

  private async startSshd(host: SshdHost, options: { reusePort: boolean }): Promise<void> {
    const deadline = Date.now() + this.startTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      if (!options.reusePort) host.port = await freePort(host.address);
      await writeFile(host.configPath, this.sshdConfig(host));
      const logOffset = await stat(host.logFile).then(
        (stats) => stats.size,
        () => 0,
      );
      this.spawnSshd(host);
      const outcome = await this.waitUntilAccepting(host, deadline);
      if (outcome === "ready") return;
      const log = await readLogFrom(host.logFile, logOffset);
      // Something else took the port between freePort() closing it and sshd binding it.
      const portTaken = /Address already in use/.test(log);
      if (portTaken && !options.reusePort && attempt < MAX_PORT_ATTEMPTS && Date.now() < deadline) continue;
      if (host.process?.pid !== undefined) {
        await terminateProcesses([host.process.pid], { graceMs: STOP_GRACE_MS });
        await host.exited;
      }
      const reason =
        outcome === "exited" ? "exited" : `did not accept connections within ${this.startTimeoutMs} ms`;
      throw new Error(
        `sshd for ${host.name} on ${host.address}:${host.port} ${reason}; end of ${host.logFile}:\n${tail(log, 30)}`,
      );
    }
  }

  private spawnSshd(host: SshdHost): void {
    const log = openSync(host.logFile, "a", 0o600);
    try {
      // sshd re-executes itself, so it insists on an absolute path. Detached: a Ctrl-C in the terminal must
      // reach the test process, which then kills the whole tree, not race it by killing only the listener.
      // ip netns exec execs too: the pid is sshd's.
      const sshdArgv = [
        ...(this.netns === undefined ? [] : ["ip", "netns", "exec", this.netns]),
        this.sshd,
        "-D",
        "-e",
        "-f",
        host.configPath,
      ];
      // unshare execs (no fork), so the pid stays sshd's and the usual teardown applies.
      const binds = [...this.binds, ...host.hidePaths.map((target) => ({ source: "/dev/null", target }))];
      const argv =
        binds.length === 0
          ? sshdArgv
          : [
              "unshare",
              "--mount",
              "--propagation",
              "private",
              "sh",
              "-c",
              'n=$1; shift; while [ "$n" -gt 0 ]; do mount --bind "$1" "$2"; shift 2; n=$((n-1)); done; exec "$@"',
              "bind-paths",
              String(binds.length),
              ...binds.flatMap((b) => [b.source, b.target]),
              ...sshdArgv,
            ];
      const child = spawn(argv[0] as string, argv.slice(1), {
        stdio: ["ignore", log, log],
        detached: true,
      });
      host.process = child;
      host.hasExited = false;
      host.exited = new Promise((resolveExit) => {
        const onGone = () => {
          host.hasExited = true;
          resolveExit();
        };
        child.once("exit", onGone);
        // Spawning failed (no 'exit' follows).
        child.once("error", onGone);
      });
    } finally {
      closeSync(log);
    }
    this.reportToWatchdog();
  }

  private async waitUntilAccepting(
    host: SshdHost,
    deadline: number,
  ): Promise<"ready" | "exited" | "timeout"> {
    for (;;) {
      if (!host.running) return "exited";
      // Inside a namespace nothing here reaches it: its log says when it listens.
      if (this.netns !== undefined) {
        const log = await readFile(host.logFile, "utf8").catch(() => "");
        if (log.includes(`Server listening on ${host.address} port ${host.port}.`)) return "ready";
        if (Date.now() >= deadline) return "timeout";
        await new Promise((resolveDelay) => setTimeout(resolveDelay, 25));
        continue;
      }
      // Stop waiting when sshd exits: whatever holds the port it could not bind may accept and stay silent.
      if (await answersWithSshBanner(host.address, host.port, 2_000, host.exited)) return "ready";
      if (!host.running) return "exited";
      if (Date.now() >= deadline) return "timeout";
      await new Promise((resolveDelay) => setTimeout(resolveDelay, 25));
    }
  }
}

/** sshd's own processes: the listener and its session processes ("sshd: user [priv]", "sshd: user@notty"). */
function isSshdProcess(pid: number): boolean {
  try {
    return /^(\S*\/)?sshd([: ]|$)/.test(readFileSync(`/proc/${pid}/cmdline`, "latin1"));
  } catch {
    return false;
  }
}

function keepFleetDir(): boolean {
  return process.env["RLVM_KEEP_FLEET_DIR"] === "1";
}

/** Whether any of the pids still runs (zombies count as gone). For "nothing outlives the fleet" checks. */
export function anyProcessAlive(pids: readonly number[]): boolean {
  return pids.some(isProcessAlive);
}
