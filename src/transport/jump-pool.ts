// Bastions of one run: ONE connection per bastion (per chain prefix), opened lazily, shared by every
// host behind it, each hop's key verified under its own policy by connectSsh as for a target.
import type { Duplex } from "node:stream";
import { HostError } from "../errors.js";
import type { KnownHostEntry } from "./known-hosts.js";
import { connectSsh, type ConnectTarget, type SshSession } from "./ssh-connection.js";

/** One bastion as the pool connects to it: the inventory's JumpHop has these fields (transport reads no inventory). */
export interface JumpHop {
  name: string;
  address: string;
  port: number;
  user: string;
  identity_file: string | null;
  identity_passphrase_file: string | null;
  known_hosts: string;
  known_hosts_also?: string[];
  host_key_policy: "strict" | "accept-new";
  legacy_host_key_algorithms: boolean;
  connect_timeout_s: number;
  connect_retries: number;
  keepalive_interval_s: number;
}

/** The controller's files a hop's connection reads, already loaded (run/local-files.ts provides them). */
export interface HopFiles {
  privateKey(path: string | null): Buffer | null;
  secret(path: string | null): string | null;
  knownHosts(path: string): KnownHostEntry[];
}

export interface JumpPool {
  /** A stream to address:port through the chain (outermost first), for a target's openSock. */
  open(
    chain: readonly JumpHop[],
    address: string,
    port: number,
  ): Promise<{ sock: Duplex; lost: () => HostError | null }>;
  /** How many bastion connections were opened (tests, and the report's sake of honesty). */
  readonly opened: number;
  /** Close every bastion connection: at the end of the run. */
  close(): void;
}

interface Entry {
  session: Promise<SshSession>;
  lost: boolean;
}

export function createJumpPool(
  files: HopFiles,
  agentSocket: string | null,
  connect: (target: ConnectTarget) => Promise<SshSession> = connectSsh,
): JumpPool {
  const entries = new Map<string, Entry>();
  let opened = 0;
  // Shared only where every hop up to here connects and verifies alike (a literal hop takes the
  // key and known_hosts of the host it leads to, so two hosts may reach one address differently).
  const keyOf = (chain: readonly JumpHop[], i: number) =>
    JSON.stringify(
      chain
        .slice(0, i + 1)
        .map((h) => [h.address, h.port, h.user, h.identity_file, h.known_hosts, h.host_key_policy]),
    );
  const where = (hop: JumpHop) => `bastion "${hop.name}" (${hop.user}@${hop.address}:${hop.port})`;

  const entryFor = (chain: readonly JumpHop[], i: number): Entry => {
    const key = keyOf(chain, i);
    const existing = entries.get(key);
    if (existing !== undefined) return existing;
    const hop = chain[i] as JumpHop;
    opened++;
    const entry: Entry = { lost: false, session: Promise.resolve(null as never) };
    entry.session = connect({
      ...connectTargetOf(hop, files, agentSocket),
      ...(i > 0 ? { openSock: () => forward(chain, i - 1, hop.address, hop.port) } : {}),
    }).then(
      (session) => {
        void session.closed.then(() => {
          entry.lost = true;
          if (entries.get(key) === entry) entries.delete(key);
        });
        return session;
      },
      (error: unknown) => {
        // A host that comes later tries again when it was the network; a key or login problem stays.
        if (!(error instanceof HostError) || error.retryable) entries.delete(key);
        throw asBastionError(hop, error, where(hop));
      },
    );
    entries.set(key, entry);
    return entry;
  };

  const forward = async (
    chain: readonly JumpHop[],
    i: number,
    address: string,
    port: number,
  ): Promise<{ sock: Duplex; lost: () => HostError | null }> => {
    const hop = chain[i] as JumpHop;
    const entry = entryFor(chain, i);
    const session = await entry.session;
    if (session.forwardOut === undefined) throw new Error("this connection cannot forward");
    let sock: Duplex;
    try {
      sock = await session.forwardOut(address, port);
    } catch (error) {
      throw new HostError(
        "refused",
        `${where(hop)} could not open a connection to ${address}:${port}: ${(error as Error).message}`,
        "check that the host is up and that the bastion may reach it (sshd's AllowTcpForwarding and PermitOpen)",
        true,
      );
    }
    const lost = () =>
      entry.lost
        ? new HostError(
            "bastion_lost",
            `the connection to ${where(hop)} was lost while the host was in use through it`,
            "check the bastion and the network; the next run reconnects",
          )
        : null;
    return { sock, lost };
  };

  return {
    open: (chain, address, port) => forward(chain, chain.length - 1, address, port),
    get opened() {
      return opened;
    },
    close: () => {
      for (const entry of entries.values())
        entry.session.then(
          (s) => s.close(),
          () => {},
        );
      entries.clear();
    },
  };
}

/**
 * A hop's known_hosts files as one array, made once per run and list of files: known-hosts.ts indexes
 * an array on first use, and a new array per host had it index every line again for every host.
 */
const combinedKnownHosts = new WeakMap<HopFiles, Map<string, KnownHostEntry[]>>();

function knownHostsOf(hop: JumpHop, files: HopFiles): KnownHostEntry[] {
  // The first file is where accept-new writes; ssh_config may name more, read as well.
  const paths = [hop.known_hosts, ...(hop.known_hosts_also ?? [])];
  let byPaths = combinedKnownHosts.get(files);
  if (byPaths === undefined) combinedKnownHosts.set(files, (byPaths = new Map()));
  const key = JSON.stringify(paths);
  let entries = byPaths.get(key);
  if (entries === undefined) byPaths.set(key, (entries = paths.flatMap((f) => files.knownHosts(f))));
  return entries;
}

/** How to connect to a host or a bastion: its settings, with the controller's files they name, read. */
export function connectTargetOf(hop: JumpHop, files: HopFiles, agentSocket: string | null): ConnectTarget {
  return {
    name: hop.name,
    address: hop.address,
    port: hop.port,
    user: hop.user,
    knownHostsFile: hop.known_hosts,
    knownHosts: knownHostsOf(hop, files),
    hostKeyPolicy: hop.host_key_policy,
    legacyHostKeyAlgorithms: hop.legacy_host_key_algorithms,
    privateKey: files.privateKey(hop.identity_file),
    passphrase: files.secret(hop.identity_passphrase_file),
    agentSocket,
    connectTimeoutMs: hop.connect_timeout_s * 1000,
    connectRetries: hop.connect_retries,
    keepaliveIntervalMs: hop.keepalive_interval_s * 1000,
  };
}

/**
 * Whatever kept us from the bastion (refused, timeout, DNS, login, host key) makes the hosts behind
 * it unreachable: not retried per target, the bastion's own connect_retries were spent already.
 */
function asBastionError(hop: JumpHop, error: unknown, where: string): HostError {
  if (error instanceof HostError && error.code === "bastion_unreachable") return error;
  const message = error instanceof Error ? error.message : String(error);
  const hint = error instanceof HostError ? error.hint : "check the bastion";
  return new HostError("bastion_unreachable", `${where}: ${message}`, `${hint} (on ${hop.name})`);
}
