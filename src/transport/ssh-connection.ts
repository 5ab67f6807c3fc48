// The only importer of ssh2: connect with a verified host key, authenticate, exec with streams.
import type { Duplex } from "node:stream";
import ssh2, {
  Client,
  type AnyAuthMethod,
  type ClientChannel,
  type ConnectConfig,
  type ParsedKey,
} from "ssh2";
import {
  appendKnownHost,
  fingerprintSha256,
  isUsableHostKeyType,
  keyTypeOfBlob,
  KnownHostConflictError,
  planHostKeyAlgorithms,
  sshKeygenAddCommand,
  verifyHostKey,
  type KnownHostEntry,
} from "./known-hosts.js";
import { HostError } from "../errors.js";

export interface ConnectTarget {
  name: string;
  address: string;
  port: number;
  user: string;
  knownHostsFile: string;
  knownHosts: readonly KnownHostEntry[];
  hostKeyPolicy: "strict" | "accept-new";
  /** Also accept `ssh-dss` and SHA-1 `ssh-rsa` host keys, which OpenSSH 9 refuses by default. */
  legacyHostKeyAlgorithms?: boolean;
  privateKey: Buffer | null;
  passphrase: string | null;
  agentSocket: string | null;
  connectTimeoutMs: number;
  connectRetries: number;
  keepaliveIntervalMs: number;
  /**
   * Behind a bastion: opens the stream to the host (a channel on the bastion's connection), once per
   * attempt; with `lost`, which says why the connection went when the bastion under it did.
   */
  openSock?: () => Promise<{ sock: Duplex; lost?: () => HostError | null }>;
}

/** How a remote command ended: its exit code, or the signal that killed it. */
export interface RemoteExit {
  code: number | null;
  signal: string | null;
}

/** A command running on the host: its stdin, its output, and how it ended. */
export interface RemoteProcess {
  /**
   * Where stdout and stderr go. Register both: output is held (and the command, once the window
   * fills, waits) until a listener takes it, so none is lost between exec and registration.
   */
  onStdout(listener: (chunk: Buffer) => void): void;
  onStderr(listener: (chunk: Buffer) => void): void;
  write(data: string | Buffer): void;
  /** Close the command's stdin (EOF); the command keeps running. */
  end(): void;
  /** Close the channel under the command. */
  close(): void;
  /** Resolves when the channel has closed: with the exit status, or null when none arrived. */
  closed: Promise<RemoteExit | null>;
}

export interface SshSession {
  /** What happened to the host key on the way in (for the report). */
  hostKeyNote: string | null;
  /** known_hosts lines that were ignored for this host (key types that cannot be used), for the report. */
  hostKeyWarnings?: readonly string[];
  exec(command: string): Promise<RemoteProcess>;
  /** End the connection politely (SSH disconnect); a host may keep it open. */
  close(): void;
  /** Tear the connection down at once (the TCP socket), whatever the host does. */
  destroy(): void;
  /** Resolves when the connection ends, for whatever reason. */
  closed: Promise<void>;
  /** A TCP stream from this host to another (`direct-tcpip`), for the next hop behind a bastion. */
  forwardOut?(address: string, port: number): Promise<Duplex>;
  /** Why the connection went, when something else than the host ended it (a bastion dropped). */
  lostBecause?(): HostError | null;
}

/** Connect, retrying connection errors (never authentication or host key errors) with jitter. */
/** Each key file's bytes (shared by every host: run/local-files.ts reads a file once), parsed once. */
const parsedKeys = new WeakMap<Buffer, Map<string | null, Buffer | ParsedKey>>();

/**
 * ssh2 parses (and decrypts) the private key on every connection, some 0.6 ms of the controller's CPU
 * per host; given a key it parsed already, it takes it as it is. A key that does not parse is passed on
 * as bytes, so that ssh2 reports it as before.
 */
function parsedPrivateKey(key: Buffer, passphrase: string | null): Buffer | ParsedKey {
  let byPassphrase = parsedKeys.get(key);
  if (byPassphrase === undefined) parsedKeys.set(key, (byPassphrase = new Map()));
  let parsed = byPassphrase.get(passphrase);
  if (parsed === undefined) {
    const result = ssh2.utils.parseKey(key, passphrase ?? undefined);
    parsed = result instanceof Error || Array.isArray(result) ? key : result;
    byPassphrase.set(passphrase, parsed);
  }
  return parsed;
}

export async function connectSsh(target: ConnectTarget, sleep = defaultSleep): Promise<SshSession> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await connectOnce(target);
    } catch (error) {
      const retryable = error instanceof HostError && error.retryable;
      if (!retryable || attempt >= target.connectRetries) throw error;
      // 0.5 s, 1 s, 2 s ... each with up to 50 % jitter, so a fleet does not retry in lockstep.
      const delay = 500 * 2 ** attempt;
      await sleep(delay / 2 + Math.random() * delay);
    }
  }
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function connectOnce(target: ConnectTarget): Promise<SshSession> {
  const opened = target.openSock === undefined ? undefined : await target.openSock();
  return handshake(target, opened);
}

function handshake(
  target: ConnectTarget,
  opened: { sock: Duplex; lost?: () => HostError | null } | undefined,
): Promise<SshSession> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let verdict: HostError | null = null;
    let hostKeyNote: string | null = null;
    let handshakeDone = false;
    let settled = false;

    const legacy = target.legacyHostKeyAlgorithms === true;
    const plan = planHostKeyAlgorithms(target.knownHosts, target.address, target.port, { legacy });
    // As OpenSSH does, a line of a key type we cannot use is skipped, not fatal; the report says so.
    const hostKeyWarnings = plan.ignored.map(
      (key) => `known_hosts line ${key.file}:${key.line} ignored: ${key.reason}`,
    );
    const config: ConnectConfig = {
      host: target.address,
      port: target.port,
      username: target.user,
      readyTimeout: target.connectTimeoutMs,
      keepaliveInterval: target.keepaliveIntervalMs,
      keepaliveCountMax: 3,
      // Offer only the key types we know for this host, so a host with an ed25519 and an RSA key
      // known is never reported as "changed" because it preferred the other one. Always explicit:
      // ssh2's defaults include SHA-1 ssh-rsa, which OpenSSH 9 refuses unless asked for.
      algorithms: { serverHostKey: plan.algorithms as never },
      // The callback form: an accept-new key is accepted only once it is in known_hosts.
      hostVerifier: (key: Buffer, accept: (ok: boolean) => void) => {
        const type = keyTypeOfBlob(key) ?? "unknown";
        const fingerprint = fingerprintSha256(key);
        if (!isUsableHostKeyType(type, { legacy })) {
          verdict = new HostError(
            "host_key_unknown",
            `the host presented a ${type} host key ${fingerprint}, which is refused`,
            "give the host an ed25519, ecdsa or rsa key (rsa-sha2), or set legacy_host_key_algorithms = true",
          );
          return accept(false);
        }
        const result = verifyHostKey(target.knownHosts, target.address, target.port, { type, blob: key });
        switch (result.result) {
          case "match":
            return accept(true);
          case "unknown":
            if (target.hostKeyPolicy === "accept-new") {
              appendKnownHost(target.knownHostsFile, target.address, target.port, type, key).then(
                ({ appended }) => {
                  if (appended)
                    hostKeyNote = `host key ${fingerprint} (${type}) was unknown and has been added to ${target.knownHostsFile}`;
                  accept(true);
                },
                (error: Error) => {
                  verdict =
                    error instanceof KnownHostConflictError
                      ? new HostError(
                          "host_key_changed",
                          `HOST KEY CHANGED: the host offered ${type} ${fingerprint}, but ${error.message}`,
                          "another host with this address, or another run, recorded a different key; verify the keys out of band before replacing the line in known_hosts",
                        )
                      : new HostError(
                          "host_key_unknown",
                          `could not add the host key: ${error.message}`,
                          "check that known_hosts is writable",
                        );
                  accept(false);
                },
              );
              return;
            }
            verdict = new HostError(
              "host_key_unknown",
              `host key unknown: ${type} ${fingerprint} is not in ${target.knownHostsFile}`,
              `check the fingerprint with the host's administrator, then add it: ${sshKeygenAddCommand(target.address, target.port, target.knownHostsFile)} (or set host_key_policy = "accept-new")`,
            );
            return accept(false);
          case "changed":
            verdict = new HostError(
              "host_key_changed",
              `HOST KEY CHANGED: the host offered ${type} ${fingerprint}, known_hosts has ${result.knownFingerprints.join(", ")} (${result.knownLocations.join(", ")})${hostKeyWarnings.length > 0 ? `; ${hostKeyWarnings.join("; ")}` : ""}`,
              "someone may be intercepting the connection, or the host was reinstalled; verify the new key out of band, then replace the old line in known_hosts",
            );
            return accept(false);
          case "revoked":
            verdict = new HostError(
              "host_key_revoked",
              `host key ${fingerprint} is marked @revoked in ${result.location}`,
              "the host presents a revoked key: do not connect until its key is replaced",
            );
            return accept(false);
          case "cert_authority_unsupported":
            verdict = new HostError(
              "host_key_unknown",
              `known_hosts has only @cert-authority lines for ${target.address}; host certificates are not supported`,
              `add the host's plain key: ${sshKeygenAddCommand(target.address, target.port, target.knownHostsFile)}`,
            );
            return accept(false);
        }
      },
    };
    if (target.agentSocket !== null) config.agent = target.agentSocket;
    if (opened !== undefined) config.sock = opened.sock;
    // ssh2 starts with a "none" attempt that only asks which methods the server allows: one round
    // trip per host for nothing. Go straight to what we have, in ssh2's own order.
    const key = target.privateKey === null ? null : parsedPrivateKey(target.privateKey, target.passphrase);
    if (key !== null && !Buffer.isBuffer(key)) {
      const username = target.user;
      const methods: AnyAuthMethod[] = [{ type: "publickey", username, key }];
      if (target.agentSocket !== null) methods.push({ type: "agent", username, agent: target.agentSocket });
      config.authHandler = methods;
    } else {
      // No key, or one that does not parse: ssh2 gets the bytes, and says what is wrong with them.
      if (target.privateKey !== null) {
        config.privateKey = target.privateKey;
        if (target.passphrase !== null) config.passphrase = target.passphrase;
      }
      const methods = [
        ...(target.privateKey !== null ? ["publickey" as const] : []),
        ...(target.agentSocket !== null ? ["agent" as const] : []),
      ];
      if (methods.length > 0) config.authHandler = methods;
    }

    let resolveClosed: () => void = () => {};
    const closed = new Promise<void>((r) => (resolveClosed = r));
    client.on("handshake", () => (handshakeDone = true));
    client.on("close", () => {
      resolveClosed();
      if (!settled) {
        settled = true;
        reject(
          verdict ??
            new HostError("connection_lost", "the connection closed during setup", CONNECTION_HINT, true),
        );
      }
    });
    client.on("error", (error: Error & { level?: string; code?: string }) => {
      if (settled) return;
      settled = true;
      client.end();
      reject(verdict ?? classifyConnectError(error, target, handshakeDone));
    });
    client.on("ready", () => {
      settled = true;
      resolve({
        hostKeyNote,
        hostKeyWarnings,
        exec: (command) =>
          new Promise((resolveExec, rejectExec) =>
            client.exec(command, (error, channel) =>
              error ? rejectExec(error) : resolveExec(remoteProcess(channel)),
            ),
          ),
        close: () => client.end(),
        destroy: () => client.destroy(),
        closed,
        forwardOut: (address, port) =>
          new Promise((resolveForward, rejectForward) =>
            client.forwardOut("127.0.0.1", 0, address, port, (error, channel) =>
              error ? rejectForward(error) : resolveForward(channel),
            ),
          ),
        lostBecause: () => opened?.lost?.() ?? null,
      });
    });
    try {
      client.connect(config);
    } catch (error) {
      settled = true;
      reject(
        new HostError(
          "auth",
          `cannot use the SSH key: ${(error as Error).message}`,
          "check identity_file and identity_passphrase_file",
        ),
      );
    }
  });
}

function remoteProcess(channel: ClientChannel): RemoteProcess {
  let exit: RemoteExit | null = null;
  channel.on("exit", (code: number | null, signal?: string) => (exit = { code, signal: signal ?? null }));
  return {
    // ssh2's channel is a stream: data that came before the listener waits in it, paused.
    onStdout: (listener) => void channel.on("data", listener),
    onStderr: (listener) => void channel.stderr.on("data", listener),
    write: (data) => void channel.write(data),
    end: () => void channel.end(),
    close: () => void channel.close(),
    closed: new Promise((resolve) => channel.on("close", () => resolve(exit))),
  };
}

const CONNECTION_HINT = "check that the host is up and sshd listens on that address and port";

function classifyConnectError(
  error: Error & { level?: string; code?: string },
  target: ConnectTarget,
  handshakeDone: boolean,
): HostError {
  const where = `${target.address}:${target.port}`;
  if (/no matching host key format/.test(error.message)) {
    return new HostError(
      "host_key_unknown",
      `${where} offers no host-key algorithm the controller accepts (${error.message})`,
      "give the host an ed25519, ecdsa or rsa key usable with rsa-sha2; ssh-dss and SHA-1 ssh-rsa need legacy_host_key_algorithms = true",
    );
  }
  if (error.level === "client-authentication") {
    return new HostError(
      "auth",
      `authentication failed for ${target.user}@${where} (${error.message})`,
      "check user and identity_file, that the key is in the user's authorized_keys, or that the SSH agent holds it",
    );
  }
  if (error.level === "client-timeout") {
    return handshakeDone
      ? new HostError(
          "auth",
          `timed out during authentication to ${where}`,
          "the host answered but did not finish logging in; check sshd's logs",
        )
      : new HostError(
          "timeout",
          `timed out after ${target.connectTimeoutMs / 1000} s connecting to ${where}`,
          CONNECTION_HINT,
          true,
        );
  }
  switch (error.code) {
    case "ENOTFOUND":
      return new HostError(
        "dns",
        `cannot resolve ${target.address}`,
        "check the host's address in the inventory and DNS",
      );
    case "EAI_AGAIN":
      return new HostError(
        "dns",
        `DNS lookup for ${target.address} failed for now`,
        "check DNS on the controller",
        true,
      );
    case "ECONNREFUSED":
      return new HostError("refused", `connection refused by ${where}`, CONNECTION_HINT, true);
    case "ETIMEDOUT":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return new HostError("timeout", `cannot reach ${where} (${error.code})`, CONNECTION_HINT, true);
  }
  if (!handshakeDone) {
    return new HostError(
      "connection_lost",
      `the connection to ${where} failed before the handshake: ${error.message}`,
      CONNECTION_HINT,
      true,
    );
  }
  return new HostError(
    "connection_lost",
    `the connection to ${where} failed: ${error.message}`,
    CONNECTION_HINT,
  );
}
