// OpenSSH known_hosts handling for host-key verification.
//
// Works on raw public-key blobs (the SSH wire format ssh2 hands to a hostVerifier callback), so this
// module has no ssh2 dependency. Matching follows OpenSSH (hostfile.c / match.c), with one deliberate
// difference: an @revoked key is refused for every host, whatever host patterns its line carries.

import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { chmod, mkdir, open, readFile, realpath, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";

export type KnownHostMarker = "revoked" | "cert-authority";

export interface KnownHostPattern {
  pattern: string;
  negated: boolean;
}

export type KnownHostHosts =
  { kind: "hashed"; salt: Buffer; hash: Buffer } | { kind: "patterns"; patterns: KnownHostPattern[] };

export interface KnownHostEntry {
  file: string;
  /** 1-based line number in `file`. */
  line: number;
  marker: KnownHostMarker | null;
  hosts: KnownHostHosts;
  /** Key type as written on the line and embedded in the blob, e.g. `ssh-ed25519`, `ssh-rsa`. */
  type: string;
  blob: Buffer;
  comment: string;
}

export interface MalformedKnownHostLine {
  file: string;
  line: number;
  reason: string;
}

export interface ParsedKnownHosts {
  entries: KnownHostEntry[];
  malformed: MalformedKnownHostLine[];
}

export interface KnownHostKey {
  type: string;
  blob: Buffer;
  file: string;
  line: number;
}

export interface HostKeyLookup {
  /** Plain (unmarked) keys whose host patterns match the host. */
  keys: KnownHostKey[];
  /** Every @revoked key in the entries: revocation applies to all hosts. */
  revoked: KnownHostKey[];
  /** Whether an @cert-authority line matches the host. */
  certAuthority: boolean;
}

export interface OfferedHostKey {
  /** Key type or negotiated host-key algorithm (`rsa-sha2-512` for an `ssh-rsa` key); informational. */
  type: string;
  blob: Buffer;
}

export type HostKeyVerdict =
  | { result: "match" }
  | { result: "unknown"; fingerprint: string }
  | {
      result: "changed";
      fingerprint: string;
      knownFingerprints: string[];
      /** `file:line` of each known key, like OpenSSH's "Offending key in" message. */
      knownLocations: string[];
    }
  | { result: "revoked"; fingerprint: string; location: string }
  | { result: "cert_authority_unsupported" };

const HASHED_HOST_PREFIX = "|1|";
const SHA1_LENGTH = 20;

function assertValidPort(port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`invalid SSH port ${port}`);
}

/** The host name OpenSSH looks up: `10.0.0.1` for port 22, `[10.0.0.1]:2222` otherwise. */
export function knownHostsName(address: string, port: number): string {
  assertValidPort(port);
  // ssh lowercases the host before any known_hosts lookup or hashing.
  const host = address.toLowerCase();
  return port === 22 ? host : `[${host}]:${port}`;
}

/** `SHA256:<unpadded base64>` of the key blob, exactly as `ssh-keygen -lf` prints it. */
export function fingerprintSha256(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** The key type string embedded at the start of an SSH wire-format public key, or null if unreadable. */
export function keyTypeOfBlob(blob: Buffer): string | null {
  if (blob.length < 4) return null;
  const length = blob.readUInt32BE(0);
  if (length === 0 || length > 128 || 4 + length > blob.length) return null;
  const type = blob.toString("latin1", 4, 4 + length);
  return /^[\x21-\x7e]+$/.test(type) ? type : null;
}

/** Map a host-key signature algorithm to the key type stored in known_hosts. */
export function keyTypeForAlgorithm(algorithm: string): string {
  return algorithm === "rsa-sha2-256" || algorithm === "rsa-sha2-512" ? "ssh-rsa" : algorithm;
}

export interface HostKeyAlgorithmOptions {
  /**
   * Also offer what OpenSSH 9 refuses by default: `ssh-dss` and `ssh-rsa` signed with SHA-1 (the
   * inventory's `legacy_host_key_algorithms`). Without it an `ssh-rsa` key is used through rsa-sha2 only.
   */
  legacy?: boolean;
}

// What ssh2 can verify, in its own order of preference; `ssh-rsa` keys sign with rsa-sha2-*.
const MODERN_HOST_KEY_ALGORITHMS = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "rsa-sha2-512",
  "rsa-sha2-256",
];
const LEGACY_HOST_KEY_ALGORITHMS = ["ssh-rsa", "ssh-dss"];

function algorithmsForKeyType(type: string, legacy: boolean): string[] {
  if (type === "ssh-rsa") return ["rsa-sha2-512", "rsa-sha2-256", ...(legacy ? ["ssh-rsa"] : [])];
  if (type === "ssh-dss") return legacy ? ["ssh-dss"] : [];
  return MODERN_HOST_KEY_ALGORITHMS.includes(type) ? [type] : [];
}

/** Every host-key algorithm we offer when nothing is known for the host. */
export function defaultHostKeyAlgorithms(options: HostKeyAlgorithmOptions = {}): string[] {
  return [...MODERN_HOST_KEY_ALGORITHMS, ...(options.legacy === true ? LEGACY_HOST_KEY_ALGORITHMS : [])];
}

/** Whether a key of this type can be verified (ssh2 supports it, and it is not refused as legacy). */
export function isUsableHostKeyType(type: string, options: HostKeyAlgorithmOptions = {}): boolean {
  return algorithmsForKeyType(type, options.legacy === true).length > 0;
}

/**
 * Host-key algorithms to offer during key exchange so the server can only present a key type we know.
 * Types we cannot use (e.g. `sk-ssh-ed25519@openssh.com`, or `ssh-dss` without `legacy`) add nothing.
 */
export function hostKeyAlgorithmsForKeyTypes(
  types: readonly string[],
  options: HostKeyAlgorithmOptions = {},
): string[] {
  const algorithms: string[] = [];
  for (const type of types) {
    for (const algorithm of algorithmsForKeyType(type, options.legacy === true)) {
      if (!algorithms.includes(algorithm)) algorithms.push(algorithm);
    }
  }
  return algorithms;
}

export interface IgnoredKnownHostKey extends KnownHostKey {
  reason: string;
}

export interface HostKeyAlgorithmPlan {
  /** What to offer in key exchange: never empty. */
  algorithms: string[];
  /** The host's known_hosts lines that cannot be used, as OpenSSH skips key types it cannot use. */
  ignored: IgnoredKnownHostKey[];
}

/**
 * The host-key algorithms to offer for a host: those of its usable known keys, or every usable one when
 * none is known. Unusable lines are ignored (and listed, so the caller can warn) instead of failing the
 * connection; they still count as known keys in `verifyHostKey`, so a host known only through them is
 * "changed", never silently "unknown".
 */
export function planHostKeyAlgorithms(
  entries: readonly KnownHostEntry[],
  address: string,
  port: number,
  options: HostKeyAlgorithmOptions = {},
): HostKeyAlgorithmPlan {
  const ignored: IgnoredKnownHostKey[] = [];
  for (const key of lookupHostKeys(entries, address, port).keys) {
    if (isUsableHostKeyType(key.type, options)) continue;
    const reason = LEGACY_HOST_KEY_ALGORITHMS.includes(key.type)
      ? `${key.type} host keys are refused unless legacy_host_key_algorithms = true`
      : `key type ${key.type} is not supported`;
    ignored.push({ ...key, reason });
  }
  const known = hostKeyAlgorithmsForKeyTypes(knownKeyTypes(entries, address, port), options);
  return { algorithms: known.length > 0 ? known : defaultHostKeyAlgorithms(options), ignored };
}

function isCanonicalBase64(text: string): boolean {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return false;
  // Buffer.from silently drops garbage; a round trip rejects truncated or bit-padded input.
  const unpadded = text.replace(/=+$/, "");
  return Buffer.from(text, "base64").toString("base64").replace(/=+$/, "") === unpadded;
}

function parseHostsField(field: string): KnownHostHosts | string {
  if (field.startsWith("|")) {
    if (!field.startsWith(HASHED_HOST_PREFIX)) return "unsupported hashed host format";
    const parts = field.slice(HASHED_HOST_PREFIX.length).split("|");
    const [saltText, hashText] = parts;
    if (parts.length !== 2 || saltText === undefined || hashText === undefined) {
      return "malformed hashed host";
    }
    if (!isCanonicalBase64(saltText) || !isCanonicalBase64(hashText)) return "malformed hashed host";
    const salt = Buffer.from(saltText, "base64");
    const hash = Buffer.from(hashText, "base64");
    if (salt.length !== SHA1_LENGTH || hash.length !== SHA1_LENGTH) return "malformed hashed host";
    return { kind: "hashed", salt, hash };
  }
  const patterns: KnownHostPattern[] = [];
  for (const item of field.split(",")) {
    const negated = item.startsWith("!");
    const pattern = (negated ? item.slice(1) : item).toLowerCase();
    if (pattern === "") return "empty host pattern";
    patterns.push({ pattern, negated });
  }
  return { kind: "patterns", patterns };
}

// Returns the entry, a reason for rejecting the line, or null for blank and comment lines.
function parseKnownHostsLine(text: string, file: string, line: number): KnownHostEntry | string | null {
  const trimmed = text.trim();
  if (trimmed === "" || trimmed.startsWith("#")) return null;
  const fields = trimmed.split(/[ \t]+/);
  let marker: KnownHostMarker | null = null;
  if (fields[0]?.startsWith("@")) {
    const markerText = fields.shift();
    if (markerText === "@revoked") marker = "revoked";
    else if (markerText === "@cert-authority") marker = "cert-authority";
    else return `unknown marker ${markerText}`;
  }
  const [hostsText, type, keyText, ...commentWords] = fields;
  if (hostsText === undefined || type === undefined || keyText === undefined) {
    return "expected host patterns, key type and base64 key";
  }
  const hosts = parseHostsField(hostsText);
  if (typeof hosts === "string") return hosts;
  if (!isCanonicalBase64(keyText)) return "key is not valid base64";
  const blob = Buffer.from(keyText, "base64");
  const blobType = keyTypeOfBlob(blob);
  if (blobType === null) return "key blob has no key type";
  if (blobType !== type) return `key type ${type} does not match key blob type ${blobType}`;
  return { file, line, marker, hosts, type, blob, comment: commentWords.join(" ") };
}

/**
 * Parse known_hosts text. Never throws: lines that cannot be understood are left out of `entries` and
 * listed in `malformed` with their line number so the caller can warn.
 */
export function parseKnownHosts(text: string, file: string): ParsedKnownHosts {
  const parsed: ParsedKnownHosts = { entries: [], malformed: [] };
  text.split(/\r?\n|\r/).forEach((lineText, index) => {
    const result = parseKnownHostsLine(lineText, file, index + 1);
    if (typeof result === "string") parsed.malformed.push({ file, line: index + 1, reason: result });
    else if (result !== null) parsed.entries.push(result);
  });
  return parsed;
}

/** Read and parse a known_hosts file; a missing file is an empty one. */
export async function loadKnownHostsFile(file: string): Promise<ParsedKnownHosts> {
  try {
    return parseKnownHosts(await readFile(file, "utf8"), file);
  } catch (error) {
    if (isErrnoException(error) && error.code === "ENOENT") return { entries: [], malformed: [] };
    throw error;
  }
}

// OpenSSH match_pattern(): `*` matches any run of characters, `?` exactly one; nothing else is special.
function matchesWildcard(text: string, pattern: string): boolean {
  let t = 0;
  let p = 0;
  let starPattern = -1;
  let starText = 0;
  while (t < text.length) {
    const patternChar = pattern[p];
    if (patternChar === "*") {
      starPattern = p++;
      starText = t;
    } else if (p < pattern.length && (patternChar === "?" || patternChar === text[t])) {
      t++;
      p++;
    } else if (starPattern !== -1) {
      p = starPattern + 1;
      t = ++starText;
    } else {
      return false;
    }
  }
  while (pattern[p] === "*") p++;
  return p === pattern.length;
}

/** Whether an entry's host field matches a name produced by `knownHostsName`. */
export function entryMatchesHost(entry: KnownHostEntry, name: string): boolean {
  const host = name.toLowerCase();
  if (entry.hosts.kind === "hashed") {
    const digest = createHmac("sha1", entry.hosts.salt).update(host).digest();
    return timingSafeEqual(digest, entry.hosts.hash);
  }
  let positive = false;
  for (const { pattern, negated } of entry.hosts.patterns) {
    if (!matchesWildcard(host, pattern)) continue;
    // As in OpenSSH, one matching negated pattern rules the whole line out.
    if (negated) return false;
    positive = true;
  }
  return positive;
}

function toKnownHostKey(entry: KnownHostEntry): KnownHostKey {
  return { type: entry.type, blob: entry.blob, file: entry.file, line: entry.line };
}

/**
 * A parsed known_hosts, indexed on first use so that a fleet run does not scan every line for every host
 * (quadratic in the fleet's size): lines whose host patterns are all literal names are found through a
 * map; only hashed lines and lines with wildcards or negations are tried one by one (a hashed line can
 * only be matched by hashing the name with its salt, as OpenSSH does). Each name's result is kept, so
 * pinning the host-key types and then verifying the key look the host up once.
 */
interface KnownHostsIndex {
  /** The entries' length when indexed: a different length means the array changed, so index again. */
  size: number;
  /** Literal host pattern → positions of the (unmarked or @cert-authority) lines that list it. */
  literal: Map<string, number[]>;
  /** Positions of hashed lines and lines with a wildcard or a negated pattern. */
  scanned: number[];
  revoked: KnownHostKey[];
  byName: Map<string, { keys: KnownHostKey[]; certAuthority: boolean }>;
}

const indexes = new WeakMap<readonly KnownHostEntry[], KnownHostsIndex>();

function indexOf(entries: readonly KnownHostEntry[]): KnownHostsIndex {
  const known = indexes.get(entries);
  if (known !== undefined && known.size === entries.length) return known;
  const index: KnownHostsIndex = {
    size: entries.length,
    literal: new Map(),
    scanned: [],
    revoked: [],
    byName: new Map(),
  };
  entries.forEach((entry, position) => {
    if (entry.marker === "revoked") {
      index.revoked.push(toKnownHostKey(entry));
      return;
    }
    const { hosts } = entry;
    if (hosts.kind === "hashed" || hosts.patterns.some((p) => p.negated || /[*?]/.test(p.pattern))) {
      index.scanned.push(position);
      return;
    }
    for (const pattern of new Set(hosts.patterns.map((p) => p.pattern))) {
      const positions = index.literal.get(pattern);
      if (positions === undefined) index.literal.set(pattern, [position]);
      else positions.push(position);
    }
  });
  indexes.set(entries, index);
  return index;
}

export function lookupHostKeys(
  entries: readonly KnownHostEntry[],
  address: string,
  port: number,
): HostKeyLookup {
  const name = knownHostsName(address, port);
  const index = indexOf(entries);
  let found = index.byName.get(name);
  if (found === undefined) {
    const positions = [
      ...(index.literal.get(name) ?? []),
      ...index.scanned.filter((position) => entryMatchesHost(entries[position] as KnownHostEntry, name)),
    ].sort((a, b) => a - b);
    found = { keys: [], certAuthority: false };
    for (const position of positions) {
      const entry = entries[position] as KnownHostEntry;
      if (entry.marker === "cert-authority") found.certAuthority = true;
      else found.keys.push(toKnownHostKey(entry));
    }
    index.byName.set(name, found);
  }
  // Copies: a caller may change what it gets without changing what the next host gets.
  return { keys: [...found.keys], revoked: [...index.revoked], certAuthority: found.certAuthority };
}

/** Distinct key types known for the host, in file order; feed to `hostKeyAlgorithmsForKeyTypes`. */
export function knownKeyTypes(entries: readonly KnownHostEntry[], address: string, port: number): string[] {
  const types: string[] = [];
  for (const key of lookupHostKeys(entries, address, port).keys) {
    if (!types.includes(key.type)) types.push(key.type);
  }
  return types;
}

/**
 * Decide whether the key a server offered is acceptable.
 *
 * Order: a revoked key is refused whatever else is known; a host known only through @cert-authority
 * lines cannot be verified (certificates are not supported); then the offered blob must equal one of
 * the host's keys. A host with keys of other types only is "changed", not "unknown": treating it as
 * unknown would let an attacker who cannot present the known key type get a new key accepted.
 * Callers avoid that false alarm by pinning host-key algorithms with `knownKeyTypes`.
 */
export function verifyHostKey(
  entries: readonly KnownHostEntry[],
  address: string,
  port: number,
  offered: OfferedHostKey,
): HostKeyVerdict {
  const fingerprint = fingerprintSha256(offered.blob);
  const lookup = lookupHostKeys(entries, address, port);
  const revoked = lookup.revoked.find((key) => key.blob.equals(offered.blob));
  if (revoked) return { result: "revoked", fingerprint, location: `${revoked.file}:${revoked.line}` };
  if (lookup.keys.length === 0) {
    return lookup.certAuthority
      ? { result: "cert_authority_unsupported" }
      : { result: "unknown", fingerprint };
  }
  if (lookup.keys.some((key) => key.blob.equals(offered.blob))) return { result: "match" };
  return {
    result: "changed",
    fingerprint,
    knownFingerprints: [...new Set(lookup.keys.map((key) => fingerprintSha256(key.blob)))],
    knownLocations: lookup.keys.map((key) => `${key.file}:${key.line}`),
  };
}

function quoteForShell(word: string): string {
  return /^[A-Za-z0-9_.,:/@%+=-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** The command a user would run to add the host's keys by hand. */
export function sshKeygenAddCommand(address: string, port: number, file: string): string {
  if (address === "" || address.startsWith("-")) throw new RangeError(`invalid SSH address ${address}`);
  assertValidPort(port);
  const portOption = port === 22 ? "" : `-p ${port} `;
  return `ssh-keyscan ${portOption}${quoteForShell(address)} >> ${quoteForShell(file)}`;
}

export interface AppendKnownHostOptions {
  /** How long to wait for another writer's `<file>.lock` before giving up. */
  lockTimeoutMs?: number;
}

export interface AppendKnownHostResult {
  /** False when the file already held this key for this host (e.g. a concurrent run added it). */
  appended: boolean;
  line: string;
}

/** accept-new refused: by the time of the append, known_hosts held another key for the host. */
export class KnownHostConflictError extends Error {
  constructor(
    readonly file: string,
    readonly verdict: Exclude<HostKeyVerdict, { result: "match" | "unknown" }>,
  ) {
    super(
      verdict.result === "changed"
        ? `${file} now holds another key for the host: ${verdict.knownFingerprints.join(", ")} (${verdict.knownLocations.join(", ")})`
        : verdict.result === "revoked"
          ? `the key is marked @revoked in ${verdict.location}`
          : `${file} now has only @cert-authority lines for the host`,
    );
    this.name = "KnownHostConflictError";
  }
}

function isErrnoException(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && "code" in error;
}

async function acquireLockFile(lockPath: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const handle = await open(lockPath, "wx", 0o600);
      await handle.close();
      return;
    } catch (error) {
      if (!isErrnoException(error) || error.code !== "EEXIST") throw error;
      if (Date.now() >= deadline) {
        throw new Error(
          `timed out waiting for lock ${lockPath}; remove it if no other rlvm-fleet is writing known_hosts`,
          { cause: error },
        );
      }
      // Jitter so concurrent waiters do not retry in lockstep.
      await delay(5 + Math.random() * 20);
    }
  }
}

async function removeIgnoringMissing(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (error) {
    if (!isErrnoException(error) || error.code !== "ENOENT") throw error;
  }
}

async function writeFileAtomically(target: string, content: string, mode: number): Promise<void> {
  const directory = dirname(target);
  const temp = join(directory, `.${basename(target)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const handle = await open(temp, "wx", mode);
    try {
      await handle.writeFile(content, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    // open()'s mode is filtered by the umask; the existing file's mode must survive exactly.
    await chmod(temp, mode);
    await rename(temp, target);
  } catch (error) {
    await removeIgnoringMissing(temp);
    throw error;
  }
  // Persist the rename itself; not every platform lets a directory be opened for fsync.
  try {
    const dirHandle = await open(directory, "r");
    try {
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
  } catch {
    // Best effort only.
  }
}

/**
 * Append `<name> <type> <base64>` for the `accept-new` policy. The file is rewritten atomically
 * (temp file + fsync + rename) under an exclusive `<file>.lock`, so concurrent appends from several
 * connections or processes are serialised instead of overwriting each other. Under that lock the file
 * is read again: a host that meanwhile got another key (or whose key was revoked) is refused with a
 * `KnownHostConflictError`, as OpenSSH refuses a changed key, so the file never holds two keys for it.
 */
export async function appendKnownHost(
  file: string,
  address: string,
  port: number,
  type: string,
  blob: Buffer,
  options: AppendKnownHostOptions = {},
): Promise<AppendKnownHostResult> {
  const blobType = keyTypeOfBlob(blob);
  if (blobType === null) throw new Error("host key blob has no key type");
  if (keyTypeForAlgorithm(type) !== blobType) {
    throw new Error(`host key type ${type} does not match key blob type ${blobType}`);
  }
  // A character that known_hosts treats as syntax would write a line matching other hosts.
  if (!/^[A-Za-z0-9_.:%-]+$/.test(address)) throw new RangeError(`invalid SSH address ${address}`);
  const name = knownHostsName(address, port);
  const line = `${name} ${blobType} ${blob.toString("base64")}`;

  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const lockPath = `${file}.lock`;
  await acquireLockFile(lockPath, options.lockTimeoutMs ?? 5000);
  try {
    let target = file;
    let existing = "";
    let mode = 0o600;
    try {
      // Write through a symlinked known_hosts instead of replacing the link with a regular file.
      target = await realpath(file);
      existing = await readFile(target, "utf8");
      mode = (await stat(target)).mode & 0o7777;
    } catch (error) {
      if (!isErrnoException(error) || error.code !== "ENOENT") throw error;
    }
    // Re-checked under the lock against the file as it is now, not the snapshot the caller verified
    // against: another connection (two hosts with one address) or controller may have added a key.
    const verdict = verifyHostKey(parseKnownHosts(existing, target).entries, address, port, {
      type: blobType,
      blob,
    });
    if (verdict.result === "match") return { appended: false, line };
    if (verdict.result !== "unknown") throw new KnownHostConflictError(target, verdict);
    const separator = existing === "" || existing.endsWith("\n") ? "" : "\n";
    await writeFileAtomically(target, `${existing}${separator}${line}\n`, mode);
    return { appended: true, line };
  } finally {
    await removeIgnoringMissing(lockPath);
  }
}
