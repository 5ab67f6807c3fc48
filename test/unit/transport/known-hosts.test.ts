import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import {
  chmod,
  chown,
  copyFile,
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  rm,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import { createServer, connect, type AddressInfo, type Socket } from "node:net";
import { Server } from "ssh2";
import { freePort } from "../../../src/demo/free-port.js";
import { HostError } from "../../../src/errors.js";
import { connectSsh, type ConnectTarget, type SshSession } from "../../../src/transport/ssh-connection.js";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { skipOrFail } from "../../helpers/skip-or-fail.js";

import {
  appendKnownHost,
  defaultHostKeyAlgorithms,
  entryMatchesHost,
  fingerprintSha256,
  hostKeyAlgorithmsForKeyTypes,
  keyTypeForAlgorithm,
  keyTypeOfBlob,
  knownHostsName,
  KnownHostConflictError,
  knownKeyTypes,
  loadKnownHostsFile,
  lookupHostKeys,
  parseKnownHosts,
  planHostKeyAlgorithms,
  sshKeygenAddCommand,
  verifyHostKey,
  type KnownHostEntry,
} from "../../../src/transport/known-hosts.js";

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

// Resolves with the exit code instead of rejecting: ssh-keygen -F exits 1 when nothing matches.
function run(command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env: env ?? process.env, timeout: 20_000 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== "number") return reject(error);
      resolve({ code: typeof error?.code === "number" ? error.code : 0, stdout, stderr });
    });
  });
}

async function runOk(command: string, args: string[]): Promise<string> {
  const result = await run(command, args);
  if (result.code !== 0) throw new Error(`${command} ${args.join(" ")} failed: ${result.stderr}`);
  return result.stdout;
}

interface GeneratedKey {
  type: string;
  base64: string;
  blob: Buffer;
  pubFile: string;
  /** `<type> <base64>`, ready to paste after a host field. */
  text: string;
}

async function readPublicKey(pubFile: string): Promise<GeneratedKey> {
  const [type, base64] = (await readFile(pubFile, "utf8")).trim().split(" ");
  if (type === undefined || base64 === undefined) throw new Error(`unexpected ${pubFile}`);
  return { type, base64, blob: Buffer.from(base64, "base64"), pubFile, text: `${type} ${base64}` };
}

async function generateKey(
  dir: string,
  name: string,
  type: "ed25519" | "ecdsa" | "rsa" | "dsa",
): Promise<GeneratedKey> {
  const path = join(dir, name);
  await runOk("ssh-keygen", ["-q", "-t", type, "-N", "", "-C", `${name}@test`, "-f", path]);
  return readPublicKey(`${path}.pub`);
}

async function keygenFingerprint(file: string): Promise<string[]> {
  const out = await runOk("ssh-keygen", ["-l", "-E", "sha256", "-f", file]);
  return out
    .trim()
    .split("\n")
    .map((line) => line.split(" ")[1] ?? "");
}

/** Line numbers `ssh-keygen -F` reports for a host name: the reference for our host matching. */
async function keygenMatchedLines(file: string, name: string): Promise<number[]> {
  const result = await run("ssh-keygen", ["-F", name, "-f", file]);
  return [...result.stdout.matchAll(/^# Host .* found: line (\d+)/gm)].map((m) => Number(m[1]));
}

function ourMatchedLines(entries: readonly KnownHostEntry[], name: string): number[] {
  return entries.filter((entry) => entryMatchesHost(entry, name)).map((entry) => entry.line);
}

const tempDirs: string[] = [];
async function makeTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `rlvm-fleet-known-hosts-${prefix}-`));
  tempDirs.push(dir);
  return dir;
}

let keyDir = "";
let ed: GeneratedKey;
let ec: GeneratedKey;
let rsa: GeneratedKey;
let rogue: GeneratedKey;
let revokedKey: GeneratedKey;
let ca: GeneratedKey;
let plainFile = "";
let hashedFile = "";
let plainEntries: KnownHostEntry[] = [];
let hashedEntries: KnownHostEntry[] = [];

beforeAll(async () => {
  keyDir = await makeTempDir("keys");
  [ed, ec, rsa, rogue, revokedKey, ca] = await Promise.all([
    generateKey(keyDir, "ed", "ed25519"),
    generateKey(keyDir, "ec", "ecdsa"),
    generateKey(keyDir, "rsa", "rsa"),
    generateKey(keyDir, "rogue", "ed25519"),
    generateKey(keyDir, "revoked", "ed25519"),
    generateKey(keyDir, "ca", "ed25519"),
  ]);
  const knownHosts = [
    "# fleet known hosts",
    "",
    `10.0.0.1 ${ed.text} first key`,
    `10.0.0.1,host-a.example ${ec.text}`,
    `[127.0.0.2]:2222 ${rsa.text}`,
    `127.0.0.3 ${revokedKey.text}`,
    `*.wild.example,!bad.wild.example ${ed.text}`,
    `db-??.example ${ec.text}`,
    `@cert-authority *.ca.example ${ca.text}`,
    `both.ca.example ${ed.text}`,
    `@revoked 127.0.0.3 ${revokedKey.text}`,
    "",
  ].join("\n");
  plainFile = join(keyDir, "known_hosts.plain");
  hashedFile = join(keyDir, "known_hosts.hashed");
  await writeFile(plainFile, knownHosts);
  await copyFile(plainFile, hashedFile);
  await runOk("ssh-keygen", ["-H", "-f", hashedFile]);
  plainEntries = (await loadKnownHostsFile(plainFile)).entries;
  hashedEntries = (await loadKnownHostsFile(hashedFile)).entries;
}, 60_000);

afterAll(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe("fingerprintSha256", () => {
  it("equals what ssh-keygen -lf prints for ed25519, ecdsa and rsa keys", async () => {
    for (const key of [ed, ec, rsa]) {
      expect(fingerprintSha256(key.blob)).toBe((await keygenFingerprint(key.pubFile))[0]);
    }
  });

  it("equals ssh-keygen -lf for every plain line of a known_hosts file", async () => {
    const expected = await keygenFingerprint(plainFile);
    const ours = plainEntries.filter((entry) => entry.marker === null).map((e) => fingerprintSha256(e.blob));
    expect(ours).toEqual(expected);
    expect(ours[0]).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });
});

describe("knownHostsName", () => {
  it("uses the bare address for port 22 and [address]:port otherwise", () => {
    expect(knownHostsName("10.0.0.1", 22)).toBe("10.0.0.1");
    expect(knownHostsName("127.0.0.2", 2222)).toBe("[127.0.0.2]:2222");
    expect(knownHostsName("::1", 2222)).toBe("[::1]:2222");
    expect(knownHostsName("Host-A.Example", 22)).toBe("host-a.example");
  });

  it("rejects impossible ports", () => {
    expect(() => knownHostsName("h", 0)).toThrow(RangeError);
    expect(() => knownHostsName("h", 65536)).toThrow(RangeError);
    expect(() => knownHostsName("h", 22.5)).toThrow(RangeError);
  });
});

describe("key type helpers", () => {
  it("reads the key type embedded in real blobs", () => {
    expect(keyTypeOfBlob(ed.blob)).toBe("ssh-ed25519");
    expect(keyTypeOfBlob(ec.blob)).toBe("ecdsa-sha2-nistp256");
    expect(keyTypeOfBlob(rsa.blob)).toBe("ssh-rsa");
    expect(keyTypeOfBlob(Buffer.from([0, 0]))).toBeNull();
    expect(keyTypeOfBlob(Buffer.from([0, 0, 0, 9, 0x61]))).toBeNull();
  });

  it("maps rsa-sha2 algorithms to ssh-rsa and pins algorithms for known types", () => {
    expect(keyTypeForAlgorithm("rsa-sha2-512")).toBe("ssh-rsa");
    expect(keyTypeForAlgorithm("rsa-sha2-256")).toBe("ssh-rsa");
    expect(keyTypeForAlgorithm("ssh-ed25519")).toBe("ssh-ed25519");
    // SHA-1 ssh-rsa only when the inventory opts in, as OpenSSH 9 does.
    expect(
      hostKeyAlgorithmsForKeyTypes(["ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ssh-rsa"]),
    ).toEqual(["ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256", "ecdsa-sha2-nistp256"]);
    expect(
      hostKeyAlgorithmsForKeyTypes(["ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ssh-rsa"], {
        legacy: true,
      }),
    ).toEqual(["ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa", "ecdsa-sha2-nistp256"]);
  });
});

describe("parseKnownHosts", () => {
  it("parses plain lines with markers, patterns and comments", () => {
    expect(parseKnownHosts(`${ed.text}\n`, "f").entries).toEqual([]);
    const { entries, malformed } = parseKnownHosts(
      [
        "  # indented comment",
        `10.0.0.1,!10.0.0.9,[h]:2222 ${ed.text} some  comment words`,
        `@revoked * ${rsa.text}`,
        `@cert-authority *.example ${ca.text}`,
      ].join("\r\n"),
      "/etc/ssh/ssh_known_hosts",
    );
    expect(malformed).toEqual([]);
    expect(entries.map((e) => [e.line, e.marker, e.type, e.comment])).toEqual([
      [2, null, "ssh-ed25519", "some comment words"],
      [3, "revoked", "ssh-rsa", ""],
      [4, "cert-authority", "ssh-ed25519", ""],
    ]);
    expect(entries[0]?.file).toBe("/etc/ssh/ssh_known_hosts");
    expect(entries[0]?.blob.equals(ed.blob)).toBe(true);
    expect(entries[0]?.hosts).toEqual({
      kind: "patterns",
      patterns: [
        { pattern: "10.0.0.1", negated: false },
        { pattern: "10.0.0.9", negated: true },
        { pattern: "[h]:2222", negated: false },
      ],
    });
  });

  it("skips malformed lines and reports their line numbers", () => {
    const edBase64 = ed.base64;
    const text = [
      `good ${ed.text}`,
      "onlyhost",
      "host ssh-ed25519",
      `@bogus host ${ed.text}`,
      "@revoked",
      "host ssh-ed25519 !!!not-base64!!!",
      `host ssh-rsa ${edBase64}`,
      "host ssh-ed25519 AAAA",
      `|1|c2FsdA==|aGFzaA== ${ed.text}`,
      `|2|abc|def ${ed.text}`,
      `a,,b ${ed.text}`,
      `host ssh-ed25519 ${edBase64.slice(0, -3)}`,
      "2048 65537 1234567890 old-rsa1-line",
      `also-good ${ec.text}`,
    ].join("\n");
    const { entries, malformed } = parseKnownHosts(text, "kh");
    expect(entries.map((e) => e.line)).toEqual([1, 14]);
    expect(malformed.map((m) => m.line)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    expect(malformed.every((m) => m.file === "kh" && m.reason.length > 0)).toBe(true);
  });

  it("never throws, whatever the input", () => {
    const alphabet = "abc |@!*?,[]:#=+/AAAA1\t\r\n";
    for (let round = 0; round < 300; round++) {
      let text = "";
      for (let i = 0; i < 200; i++) text += alphabet[Math.floor(Math.random() * alphabet.length)];
      expect(() => parseKnownHosts(text, "fuzz")).not.toThrow();
    }
    expect(() => parseKnownHosts("\u0000\uffff|1|||| @revoked", "fuzz")).not.toThrow();
  });

  it("treats a missing file as empty", async () => {
    expect(await loadKnownHostsFile(join(keyDir, "does-not-exist"))).toEqual({ entries: [], malformed: [] });
  });
});

describe("host matching against ssh-keygen -F", () => {
  const names = [
    "10.0.0.1",
    "10.0.0.2",
    "host-a.example",
    "HOST-A.example",
    "[127.0.0.2]:2222",
    "127.0.0.2",
    "[10.0.0.1]:2222",
    "127.0.0.3",
    "good.wild.example",
    "bad.wild.example",
    "wild.example",
    "db-01.example",
    "db-001.example",
    "x.ca.example",
    "both.ca.example",
  ];

  it("ssh-keygen -H really hashed the file", async () => {
    const hashed = await readFile(hashedFile, "utf8");
    expect(hashed).not.toContain("10.0.0.1");
    expect(hashed).not.toContain("127.0.0.2");
    expect(hashedEntries.filter((e) => e.hosts.kind === "hashed").length).toBeGreaterThanOrEqual(5);
    expect(parseKnownHosts(hashed, hashedFile).malformed).toEqual([]);
  });

  it.each(names)("matches the same lines as ssh-keygen -F for %s (plain and hashed)", async (name) => {
    expect(ourMatchedLines(plainEntries, name)).toEqual(await keygenMatchedLines(plainFile, name));
    // ssh lowercases the host before hashing it; ssh-keygen -F hashes the name exactly as given.
    const lowered = name.toLowerCase();
    expect(ourMatchedLines(hashedEntries, name)).toEqual(await keygenMatchedLines(hashedFile, lowered));
  });

  it("finds the same keys in the hashed file as in the plain one", () => {
    const hosts: Array<[string, number]> = [
      ["10.0.0.1", 22],
      ["host-a.example", 22],
      ["127.0.0.2", 2222],
      ["127.0.0.2", 22],
      ["10.0.0.1", 2222],
      ["10.9.9.9", 22],
    ];
    for (const [address, port] of hosts) {
      const plain = lookupHostKeys(plainEntries, address, port).keys.map((k) => k.blob.toString("base64"));
      const hashed = lookupHostKeys(hashedEntries, address, port).keys.map((k) => k.blob.toString("base64"));
      expect(hashed).toEqual(plain);
    }
    expect(lookupHostKeys(hashedEntries, "10.0.0.1", 22).keys.map((k) => k.type)).toEqual([
      "ssh-ed25519",
      "ecdsa-sha2-nistp256",
    ]);
    expect(lookupHostKeys(hashedEntries, "10.0.0.2", 22).keys).toEqual([]);
    expect(lookupHostKeys(hashedEntries, "10.0.0.1", 2222).keys).toEqual([]);
  });
});

describe.each([
  ["plain", () => plainEntries],
  ["hashed", () => hashedEntries],
])("verifyHostKey on a %s known_hosts", (_label, getEntries) => {
  it("matches any of several keys known for a host", () => {
    expect(verifyHostKey(getEntries(), "10.0.0.1", 22, ed)).toEqual({ result: "match" });
    expect(verifyHostKey(getEntries(), "10.0.0.1", 22, ec)).toEqual({ result: "match" });
    expect(verifyHostKey(getEntries(), "HOST-A.example", 22, ec)).toEqual({ result: "match" });
  });

  it("distinguishes [host]:port from port 22", () => {
    expect(verifyHostKey(getEntries(), "127.0.0.2", 2222, rsa)).toEqual({ result: "match" });
    expect(verifyHostKey(getEntries(), "127.0.0.2", 2222, { type: "rsa-sha2-512", blob: rsa.blob })).toEqual({
      result: "match",
    });
    expect(verifyHostKey(getEntries(), "127.0.0.2", 22, rsa)).toEqual({
      result: "unknown",
      fingerprint: fingerprintSha256(rsa.blob),
    });
    expect(verifyHostKey(getEntries(), "10.0.0.1", 2222, ed).result).toBe("unknown");
  });

  it("reports unknown hosts with the offered fingerprint", async () => {
    const [fingerprint] = await keygenFingerprint(rogue.pubFile);
    expect(verifyHostKey(getEntries(), "10.9.9.9", 22, rogue)).toEqual({ result: "unknown", fingerprint });
  });

  it("reports a changed key of the same type", async () => {
    const verdict = verifyHostKey(getEntries(), "10.0.0.1", 22, rogue);
    expect(verdict).toMatchObject({
      result: "changed",
      fingerprint: (await keygenFingerprint(rogue.pubFile))[0],
      knownFingerprints: [(await keygenFingerprint(ed.pubFile))[0], (await keygenFingerprint(ec.pubFile))[0]],
    });
    if (verdict.result === "changed") expect(verdict.knownLocations).toHaveLength(2);
  });

  it("reports keys of other types only as changed, not unknown, and exposes the types to pin", () => {
    expect(verifyHostKey(getEntries(), "10.0.0.1", 22, rsa).result).toBe("changed");
    expect(verifyHostKey(getEntries(), "127.0.0.2", 2222, ed)).toMatchObject({
      result: "changed",
      knownFingerprints: [fingerprintSha256(rsa.blob)],
    });
    expect(knownKeyTypes(getEntries(), "10.0.0.1", 22)).toEqual(["ssh-ed25519", "ecdsa-sha2-nistp256"]);
    expect(knownKeyTypes(getEntries(), "127.0.0.2", 2222)).toEqual(["ssh-rsa"]);
    expect(hostKeyAlgorithmsForKeyTypes(knownKeyTypes(getEntries(), "127.0.0.2", 2222))).toEqual([
      "rsa-sha2-512",
      "rsa-sha2-256",
    ]);
    expect(
      hostKeyAlgorithmsForKeyTypes(knownKeyTypes(getEntries(), "127.0.0.2", 2222), { legacy: true }),
    ).toEqual(["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]);
    expect(knownKeyTypes(getEntries(), "10.9.9.9", 22)).toEqual([]);
  });

  it("refuses @revoked keys even when a plain line lists them, and for any host", () => {
    const revoked = { result: "revoked", fingerprint: fingerprintSha256(revokedKey.blob) };
    expect(verifyHostKey(getEntries(), "127.0.0.3", 22, revokedKey)).toMatchObject(revoked);
    expect(verifyHostKey(getEntries(), "10.0.0.1", 22, revokedKey)).toMatchObject(revoked);
    expect(verifyHostKey(getEntries(), "10.9.9.9", 2222, revokedKey)).toMatchObject(revoked);
    expect(lookupHostKeys(getEntries(), "10.9.9.9", 22).revoked.map((k) => k.type)).toEqual(["ssh-ed25519"]);
  });

  it("reports hosts known only through @cert-authority as unsupported", () => {
    expect(verifyHostKey(getEntries(), "x.ca.example", 22, ed)).toEqual({
      result: "cert_authority_unsupported",
    });
    expect(verifyHostKey(getEntries(), "x.ca.example", 22, ca)).toEqual({
      result: "cert_authority_unsupported",
    });
    expect(lookupHostKeys(getEntries(), "x.ca.example", 22)).toMatchObject({ keys: [], certAuthority: true });
    expect(knownKeyTypes(getEntries(), "x.ca.example", 22)).toEqual([]);
    // Plain keys next to a CA line still decide.
    expect(verifyHostKey(getEntries(), "both.ca.example", 22, ed)).toEqual({ result: "match" });
    expect(verifyHostKey(getEntries(), "both.ca.example", 22, rogue).result).toBe("changed");
  });

  it("honours negated and wildcard patterns", () => {
    expect(verifyHostKey(getEntries(), "good.wild.example", 22, ed)).toEqual({ result: "match" });
    expect(verifyHostKey(getEntries(), "bad.wild.example", 22, ed).result).toBe("unknown");
    expect(verifyHostKey(getEntries(), "wild.example", 22, ed).result).toBe("unknown");
    expect(verifyHostKey(getEntries(), "db-07.example", 22, ec)).toEqual({ result: "match" });
    expect(verifyHostKey(getEntries(), "db-007.example", 22, ec).result).toBe("unknown");
    expect(verifyHostKey(getEntries(), "db-07.example", 2222, ec).result).toBe("unknown");
  });
});

describe("wildcard matching details", () => {
  it("follows OpenSSH for *, ? and port forms", async () => {
    const dir = await makeTempDir("wildcards");
    const file = join(dir, "known_hosts");
    await writeFile(
      file,
      [
        `[*.example]:2222,![*.bad.example]:2222 ${ed.text}`,
        `10.0.*.?,!10.0.0.5 ${ec.text}`,
        // The negation is compared with the whole "[host]:port" string, so it never excludes anything here.
        `[*.other]:2222,!*.bad.other ${rsa.text}`,
      ].join("\n"),
    );
    const { entries } = await loadKnownHostsFile(file);
    expect(verifyHostKey(entries, "a.example", 2222, ed).result).toBe("match");
    expect(verifyHostKey(entries, "a.example", 22, ed).result).toBe("unknown");
    expect(verifyHostKey(entries, "x.bad.example", 2222, ed).result).toBe("unknown");
    expect(verifyHostKey(entries, "10.0.3.7", 22, ec).result).toBe("match");
    expect(verifyHostKey(entries, "10.0.3.77", 22, ec).result).toBe("unknown");
    expect(verifyHostKey(entries, "10.0.0.5", 22, ec).result).toBe("unknown");
    expect(verifyHostKey(entries, "x.bad.other", 2222, rsa).result).toBe("match");
    const names = [
      "[a.example]:2222",
      "a.example",
      "[x.bad.example]:2222",
      "10.0.3.7",
      "10.0.3.77",
      "10.0.0.5",
    ];
    for (const name of [...names, "[x.bad.other]:2222", "x.bad.other"]) {
      expect(ourMatchedLines(entries, name)).toEqual(await keygenMatchedLines(file, name));
    }
  });
});

describe("sshKeygenAddCommand", () => {
  it("omits -p for port 22 and quotes only what needs quoting", () => {
    expect(sshKeygenAddCommand("10.0.0.1", 22, "/root/.ssh/known_hosts")).toBe(
      "ssh-keyscan 10.0.0.1 >> /root/.ssh/known_hosts",
    );
    expect(sshKeygenAddCommand("10.0.0.1", 2222, "/home/a b/it's known_hosts")).toBe(
      "ssh-keyscan -p 2222 10.0.0.1 >> '/home/a b/it'\\''s known_hosts'",
    );
    expect(sshKeygenAddCommand("host;rm -rf /", 22, "/tmp/kh")).toBe(
      "ssh-keyscan 'host;rm -rf /' >> /tmp/kh",
    );
    expect(() => sshKeygenAddCommand("-oProxyCommand=x", 22, "/tmp/kh")).toThrow(RangeError);
  });

  it("survives a real shell with awkward paths", async () => {
    const dir = await makeTempDir("shell");
    const binDir = join(dir, "bin");
    await mkdir(binDir);
    // Stand-in for ssh-keyscan that prints its arguments, to see what the shell passes.
    await writeFile(
      join(binDir, "ssh-keyscan"),
      '#!/bin/sh\nfor a in "$@"; do printf "<%s>\\n" "$a"; done\n',
      {
        mode: 0o755,
      },
    );
    const target = join(dir, "it's a $HOME `x` file");
    const command = sshKeygenAddCommand("weird host'name", 2222, target);
    await run("sh", ["-c", command], { ...process.env, PATH: `${binDir}:${process.env.PATH ?? ""}` });
    expect(await readFile(target, "utf8")).toBe("<-p>\n<2222>\n<weird host'name>\n");
  });
});

describe("appendKnownHost", () => {
  it("creates the directory 0700 and the file 0600 with exactly one line", async () => {
    const dir = await makeTempDir("append");
    const file = join(dir, "nested", ".ssh", "known_hosts");
    const result = await appendKnownHost(file, "10.0.0.1", 22, "ssh-ed25519", ed.blob);
    expect(result).toEqual({ appended: true, line: `10.0.0.1 ${ed.text}` });
    expect(await readFile(file, "utf8")).toBe(`10.0.0.1 ${ed.text}\n`);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, "nested", ".ssh"))).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, "nested"))).mode & 0o777).toBe(0o700);

    await appendKnownHost(file, "127.0.0.2", 2222, "rsa-sha2-512", rsa.blob);
    expect((await readFile(file, "utf8")).split("\n")).toEqual([
      `10.0.0.1 ${ed.text}`,
      `[127.0.0.2]:2222 ${rsa.text}`,
      "",
    ]);
    // What we wrote is what OpenSSH reads.
    expect(await keygenMatchedLines(file, "[127.0.0.2]:2222")).toEqual([2]);
    expect(await keygenFingerprint(file)).toEqual([fingerprintSha256(ed.blob), fingerprintSha256(rsa.blob)]);
    expect(await readdir(dirname(file))).toEqual(["known_hosts"]);
  });

  it("preserves an existing file's content and mode and completes a missing final newline", async () => {
    const dir = await makeTempDir("append-mode");
    const file = join(dir, "known_hosts");
    await writeFile(file, `# mine\nhost-a.example ${ec.text}`);
    await chmod(file, 0o640);
    await appendKnownHost(file, "host-b.example", 22, "ssh-ed25519", ed.blob);
    expect(await readFile(file, "utf8")).toBe(
      `# mine\nhost-a.example ${ec.text}\nhost-b.example ${ed.text}\n`,
    );
    expect((await stat(file)).mode & 0o777).toBe(0o640);
  });

  it("does not add a key the host already has, even through a hashed line", async () => {
    const dir = await makeTempDir("append-dup");
    const file = join(dir, "known_hosts");
    await writeFile(file, `10.0.0.1 ${ed.text}\n`);
    await runOk("ssh-keygen", ["-H", "-f", file]);
    const before = await readFile(file, "utf8");
    expect(await appendKnownHost(file, "10.0.0.1", 22, "ssh-ed25519", ed.blob)).toMatchObject({
      appended: false,
    });
    expect(await readFile(file, "utf8")).toBe(before);
  });

  it("writes through a symlinked known_hosts", async () => {
    const dir = await makeTempDir("append-link");
    const real = join(dir, "real_known_hosts");
    const link = join(dir, "known_hosts");
    await writeFile(real, "", { mode: 0o600 });
    await symlink(real, link);
    await appendKnownHost(link, "10.0.0.1", 22, "ssh-ed25519", ed.blob);
    expect((await lstat(link)).isSymbolicLink()).toBe(true);
    expect(await readFile(real, "utf8")).toBe(`10.0.0.1 ${ed.text}\n`);
  });

  it("keeps all 20 lines when 20 appends run concurrently", async () => {
    const dir = await makeTempDir("append-concurrent");
    const file = join(dir, "known_hosts");
    const hosts = Array.from({ length: 20 }, (_, i) => `10.1.0.${i + 1}`);
    await Promise.all(
      hosts.map((host, i) => appendKnownHost(file, host, i % 2 ? 22 : 2200 + i, ed.type, ed.blob)),
    );
    const lines = (await readFile(file, "utf8")).trimEnd().split("\n");
    expect(lines).toHaveLength(20);
    expect(new Set(lines).size).toBe(20);
    const { entries, malformed } = await loadKnownHostsFile(file);
    expect(malformed).toEqual([]);
    hosts.forEach((host, i) => {
      expect(verifyHostKey(entries, host, i % 2 ? 22 : 2200 + i, ed)).toEqual({ result: "match" });
    });
    expect(await readdir(dir)).toEqual(["known_hosts"]);
  });

  it("waits for another writer's lock and times out without touching its lock", async () => {
    const dir = await makeTempDir("append-lock");
    const file = join(dir, "known_hosts");
    await writeFile(`${file}.lock`, "");
    await expect(
      appendKnownHost(file, "10.0.0.1", 22, ed.type, ed.blob, { lockTimeoutMs: 100 }),
    ).rejects.toThrow(/timed out waiting for lock/);
    expect(existsSync(`${file}.lock`)).toBe(true);
    expect(existsSync(file)).toBe(false);

    const pending = appendKnownHost(file, "10.0.0.1", 22, ed.type, ed.blob, { lockTimeoutMs: 5000 });
    await delay(100);
    await rm(`${file}.lock`);
    await expect(pending).resolves.toMatchObject({ appended: true });
    expect(await readdir(dir)).toEqual(["known_hosts"]);
  });

  it("rejects blobs, types and addresses that would write a wrong line", async () => {
    const dir = await makeTempDir("append-invalid");
    const file = join(dir, "known_hosts");
    await expect(appendKnownHost(file, "10.0.0.1", 22, "ssh-rsa", ed.blob)).rejects.toThrow(/does not match/);
    await expect(appendKnownHost(file, "10.0.0.1", 22, "ssh-ed25519", Buffer.from("xx"))).rejects.toThrow();
    for (const address of ["*", "a,b", "a b", "!a", "|1|x"]) {
      await expect(appendKnownHost(file, address, 22, ed.type, ed.blob)).rejects.toThrow(RangeError);
    }
    expect(existsSync(file)).toBe(false);
  });
});

interface StartedSshd {
  port: number;
  /** Why sshd is not running (for skipOrFail), or "". */
  unavailable: string;
  stop(): Promise<void>;
}

/** An sshd on 127.0.0.1 with the given host key files (in `dir`) and extra sshd_config lines. */
async function startSshd(
  dir: string,
  hostKeyNames: string[],
  extraConfig: string[] = [],
): Promise<StartedSshd> {
  const port = await freePort();
  const started: StartedSshd = { port, unavailable: "", stop: async () => {} };
  const config = join(dir, "sshd_config");
  await writeFile(
    config,
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      "UsePAM no",
      "PidFile none",
      "StrictModes no",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      ...extraConfig,
      "",
    ].join("\n"),
  );
  const sshdArgs = ["-D", "-e", "-f", config, ...hostKeyNames.flatMap((name) => ["-h", join(dir, name)])];
  let command = "/usr/sbin/sshd";
  let args = sshdArgs;
  // As root sshd insists on /run/sshd for privilege separation; as an unprivileged user it does not.
  if (process.getuid?.() === 0 && !existsSync("/run/sshd")) {
    if (!existsSync("/usr/bin/setpriv")) {
      started.unavailable = "running as root without /run/sshd or setpriv";
      return started;
    }
    for (const name of await readdir(dir)) await chown(join(dir, name), 65534, 65534);
    await chown(dir, 65534, 65534);
    command = "/usr/bin/setpriv";
    args = ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/sbin/sshd", ...sshdArgs];
  }
  if (!existsSync("/usr/sbin/sshd")) {
    started.unavailable = "/usr/sbin/sshd not installed";
    return started;
  }
  const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] });
  started.stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    }
  };
  let stderr = "";
  started.unavailable = await new Promise<string>((resolve) => {
    const timer = setTimeout(() => resolve(`sshd did not start: ${stderr}`), 10_000);
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.includes("Server listening on")) {
        clearTimeout(timer);
        resolve("");
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve(`sshd exited with ${code}: ${stderr}`);
    });
    child.once("error", (error) => {
      clearTimeout(timer);
      resolve(`sshd failed to spawn: ${error.message}`);
    });
  });
  return started;
}

describe("against a real sshd", () => {
  let sshd: StartedSshd | undefined;
  let sshdUnavailable = "";
  let port = 0;
  let sshdDir = "";
  let hostKeys: GeneratedKey[] = [];

  beforeAll(async () => {
    sshdDir = await makeTempDir("sshd");
    hostKeys = await Promise.all([
      generateKey(sshdDir, "host_ed25519", "ed25519"),
      generateKey(sshdDir, "host_ecdsa", "ecdsa"),
    ]);
    sshd = await startSshd(sshdDir, ["host_ed25519", "host_ecdsa"]);
    port = sshd.port;
    sshdUnavailable = sshd.unavailable;
  }, 60_000);

  afterAll(async () => {
    await sshd?.stop();
  });

  it("parses ssh-keyscan output and finds the host keys ssh-keygen wrote", async (ctx) => {
    skipOrFail(ctx, "unit", sshdUnavailable);
    const scanned = await runOk("ssh-keyscan", ["-p", String(port), "127.0.0.1"]);
    const { entries, malformed } = parseKnownHosts(scanned, "ssh-keyscan");
    expect(malformed).toEqual([]);
    expect(entries.map((e) => e.type).sort()).toEqual(["ecdsa-sha2-nistp256", "ssh-ed25519"]);
    for (const entry of entries) {
      expect(hostKeys.some((key) => key.blob.equals(entry.blob))).toBe(true);
    }
    const known = lookupHostKeys(entries, "127.0.0.1", port);
    expect(known.keys).toHaveLength(2);
    for (const key of hostKeys) {
      expect(verifyHostKey(entries, "127.0.0.1", port, key)).toEqual({ result: "match" });
      expect(verifyHostKey(entries, "127.0.0.1", 22, key).result).toBe("unknown");
    }
    expect(verifyHostKey(entries, "127.0.0.1", port, rogue).result).toBe("changed");
  });

  it("the suggested ssh-keyscan command fills a known_hosts that verifies", async (ctx) => {
    skipOrFail(ctx, "unit", sshdUnavailable);
    const dir = await makeTempDir("keyscan-cmd");
    const file = join(dir, "my known_hosts");
    const result = await run("sh", ["-c", sshKeygenAddCommand("127.0.0.1", port, file)]);
    expect(result.code).toBe(0);
    const { entries } = await loadKnownHostsFile(file);
    expect(verifyHostKey(entries, "127.0.0.1", port, hostKeys[0] as GeneratedKey)).toEqual({
      result: "match",
    });
  });

  it("OpenSSH accepts the line appendKnownHost writes and rejects a changed key like we do", async (ctx) => {
    skipOrFail(ctx, "unit", sshdUnavailable);
    const [hostKey] = hostKeys as [GeneratedKey];
    const dir = await makeTempDir("ssh-client");
    const good = join(dir, "known_hosts_good");
    const bad = join(dir, "known_hosts_bad");
    await appendKnownHost(good, "127.0.0.1", port, hostKey.type, hostKey.blob);
    await appendKnownHost(bad, "127.0.0.1", port, rogue.type, rogue.blob);
    const sshTo = (knownHosts: string) =>
      run("ssh", [
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        `UserKnownHostsFile=${knownHosts}`,
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        `HostKeyAlgorithms=${hostKeyAlgorithmsForKeyTypes([hostKey.type]).join(",")}`,
        "-o",
        "PubkeyAuthentication=no",
        "-o",
        "ConnectTimeout=5",
        "-p",
        String(port),
        "-l",
        "nobody",
        "127.0.0.1",
        "true",
      ]);
    const accepted = await sshTo(good);
    expect(accepted.stderr).not.toMatch(/Host key verification failed/);
    expect(accepted.stderr).toMatch(/Permission denied/);
    expect(verifyHostKey((await loadKnownHostsFile(good)).entries, "127.0.0.1", port, hostKey)).toEqual({
      result: "match",
    });

    const refused = await sshTo(bad);
    expect(refused.stderr).toMatch(/Host key verification failed/);
    expect(verifyHostKey((await loadKnownHostsFile(bad)).entries, "127.0.0.1", port, hostKey).result).toBe(
      "changed",
    );
  }, 30_000);
});

/** An SSH server (ssh2's) that presents one host key and lets anyone in: a host the test controls. */
async function startFakeHost(privateKeyFile: string): Promise<{ port: number; close(): Promise<void> }> {
  const server = new Server({ hostKeys: [await readFile(privateKeyFile)] }, (client) => {
    client.on("authentication", (ctx) => ctx.accept());
    client.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** One port whose connections go to each backend in turn: one address, several host keys. */
async function startAlternatingProxy(ports: number[]): Promise<{ port: number; close(): Promise<void> }> {
  let next = 0;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    const upstream = connect(ports[next++ % ports.length] as number, "127.0.0.1");
    for (const s of [socket, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => sockets.delete(s));
    }
    socket.pipe(upstream).pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function connectTarget(
  port: number,
  knownHostsFile: string,
  knownHosts: readonly KnownHostEntry[],
  overrides: Partial<ConnectTarget> = {},
): ConnectTarget {
  return {
    name: "h",
    address: "127.0.0.1",
    port,
    user: "nobody",
    knownHostsFile,
    knownHosts,
    hostKeyPolicy: "accept-new",
    privateKey: null,
    passphrase: null,
    agentSocket: null,
    connectTimeoutMs: 10_000,
    connectRetries: 0,
    keepaliveIntervalMs: 0,
    ...overrides,
  };
}

/** Connect, close at once, and hand back the session or the HostError. */
async function tryConnect(target: ConnectTarget): Promise<SshSession | HostError> {
  try {
    const session = await connectSsh(target);
    session.close();
    return session;
  } catch (error) {
    if (error instanceof HostError) return error;
    throw error;
  }
}

function sshString(data: Buffer | string): Buffer {
  const bytes = Buffer.from(data);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

// A FIDO key line (what `ssh-keygen -t ed25519-sk` gives): OpenSSH can use it, ssh2 cannot.
const skBlob = Buffer.concat([
  sshString("sk-ssh-ed25519@openssh.com"),
  sshString(Buffer.alloc(32, 7)),
  sshString("ssh:"),
]);
const skText = `sk-ssh-ed25519@openssh.com ${skBlob.toString("base64")}`;

describe("accept-new re-checks known_hosts under its lock (finding 5)", () => {
  it("refuses a second, different key for one host, concurrent or not: the file holds one key", async () => {
    const dir = await makeTempDir("append-conflict");
    const file = join(dir, "known_hosts");
    const settled = await Promise.allSettled([
      appendKnownHost(file, "10.5.0.1", 22, ed.type, ed.blob),
      appendKnownHost(file, "10.5.0.1", 22, rogue.type, rogue.blob),
    ]);
    expect(settled.map((s) => s.status).sort()).toEqual(["fulfilled", "rejected"]);
    const refused = settled.find((s) => s.status === "rejected");
    expect(refused?.reason).toBeInstanceOf(KnownHostConflictError);
    expect((refused?.reason as KnownHostConflictError).verdict.result).toBe("changed");
    const lines = (await readFile(file, "utf8")).trimEnd().split("\n");
    expect(lines).toHaveLength(1);

    // Later, from a stale snapshot: still refused, for a key of another type too.
    const kept = lines[0]?.split(" ")[2] === ed.base64 ? ed : rogue;
    const other = kept === ed ? rogue : ed;
    await expect(appendKnownHost(file, "10.5.0.1", 22, other.type, other.blob)).rejects.toThrow(
      KnownHostConflictError,
    );
    await expect(appendKnownHost(file, "10.5.0.1", 22, ec.type, ec.blob)).rejects.toThrow(/another key/);
    // The same key again is no conflict; another host is not affected.
    await expect(appendKnownHost(file, "10.5.0.1", 22, kept.type, kept.blob)).resolves.toMatchObject({
      appended: false,
    });
    await expect(appendKnownHost(file, "10.5.0.2", 22, other.type, other.blob)).resolves.toMatchObject({
      appended: true,
    });
    const { entries } = await loadKnownHostsFile(file);
    expect(lookupHostKeys(entries, "10.5.0.1", 22).keys).toHaveLength(1);
    expect(await readdir(dir)).toEqual(["known_hosts"]);
  });

  it("refuses a key that was revoked in the file meanwhile", async () => {
    const dir = await makeTempDir("append-revoked");
    const file = join(dir, "known_hosts");
    await writeFile(file, `@revoked * ${rogue.text}\n`);
    const error: unknown = await appendKnownHost(file, "10.5.0.1", 22, rogue.type, rogue.blob).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(KnownHostConflictError);
    expect((error as KnownHostConflictError).verdict.result).toBe("revoked");
    expect(await readFile(file, "utf8")).toBe(`@revoked * ${rogue.text}\n`);
  });

  it("two accept-new connections to one address with different keys: the second is refused", async () => {
    const hosts = await Promise.all([
      startFakeHost(join(keyDir, "ed")),
      startFakeHost(join(keyDir, "rogue")),
    ]);
    const proxy = await startAlternatingProxy(hosts.map((h) => h.port));
    try {
      const dir = await makeTempDir("accept-new-race");
      const file = join(dir, "known_hosts");
      // Both start from the same snapshot (two inventory hosts with one address, or two controllers).
      const outcomes = await Promise.all([
        tryConnect(connectTarget(proxy.port, file, [])),
        tryConnect(connectTarget(proxy.port, file, [])),
      ]);
      const refused = outcomes.filter((o) => o instanceof HostError);
      expect(refused).toHaveLength(1);
      expect(refused[0]).toMatchObject({ code: "host_key_changed" });
      expect(refused[0]?.message).toMatch(/HOST KEY CHANGED/);
      const accepted = outcomes.find((o) => !(o instanceof HostError)) as SshSession;
      expect(accepted.hostKeyNote).toMatch(/has been added/);
      const { entries } = await loadKnownHostsFile(file);
      expect(entries).toHaveLength(1);
      expect(lookupHostKeys(entries, "127.0.0.1", proxy.port).keys).toHaveLength(1);

      // A third connection from the stale (empty) snapshot: whichever key it meets, one key stays.
      for (let i = 0; i < 2; i++) await tryConnect(connectTarget(proxy.port, file, []));
      expect((await loadKnownHostsFile(file)).entries).toHaveLength(1);
    } finally {
      await proxy.close();
      await Promise.all(hosts.map((h) => h.close()));
    }
  }, 30_000);
});

describe("host-key types compared with OpenSSH 9 (finding 11)", () => {
  it("plans algorithms from usable lines only and names the lines it ignores", async () => {
    const dsa = await generateKey(await makeTempDir("dsa"), "dsa", "dsa");
    const { entries } = parseKnownHosts(
      [`10.6.0.1 ${skText}`, `10.6.0.1 ${ed.text}`, `10.6.0.2 ${dsa.text}`, `10.6.0.3 ${rsa.text}`].join(
        "\n",
      ),
      "kh",
    );
    const plan = planHostKeyAlgorithms(entries, "10.6.0.1", 22);
    expect(plan.algorithms).toEqual(["ssh-ed25519"]);
    expect(plan.ignored).toMatchObject([{ file: "kh", line: 1, type: "sk-ssh-ed25519@openssh.com" }]);
    expect(plan.ignored[0]?.reason).toMatch(/not supported/);

    // ssh-dss: ignored (and the default, modern list offered) unless legacy.
    const dss = planHostKeyAlgorithms(entries, "10.6.0.2", 22);
    expect(dss.algorithms).toEqual(defaultHostKeyAlgorithms());
    expect(dss.ignored[0]?.reason).toMatch(/legacy_host_key_algorithms = true/);
    expect(planHostKeyAlgorithms(entries, "10.6.0.2", 22, { legacy: true })).toEqual({
      algorithms: ["ssh-dss"],
      ignored: [],
    });
    // An RSA key stays usable, through rsa-sha2 only.
    expect(planHostKeyAlgorithms(entries, "10.6.0.3", 22)).toEqual({
      algorithms: ["rsa-sha2-512", "rsa-sha2-256"],
      ignored: [],
    });
    expect(defaultHostKeyAlgorithms()).not.toContain("ssh-rsa");
    expect(defaultHostKeyAlgorithms()).not.toContain("ssh-dss");
    expect(defaultHostKeyAlgorithms({ legacy: true })).toEqual(
      expect.arrayContaining(["ssh-rsa", "ssh-dss", "ssh-ed25519"]),
    );
    // Ignored lines still count as known keys: such a host is "changed", never silently "unknown".
    expect(verifyHostKey(entries, "10.6.0.2", 22, rogue).result).toBe("changed");
  });

  it("ignores a known_hosts line ssh2 cannot use, connects through the usable one and says so", async () => {
    const host = await startFakeHost(join(keyDir, "ed"));
    try {
      const name = `[127.0.0.1]:${host.port}`;
      const file = join(await makeTempDir("sk-line"), "known_hosts");
      await writeFile(file, `${name} ${skText}\n${name} ${ed.text}\n`);
      const { entries } = await loadKnownHostsFile(file);
      const session = await tryConnect(connectTarget(host.port, file, entries, { hostKeyPolicy: "strict" }));
      expect(session).not.toBeInstanceOf(HostError);
      const warnings = (session as SshSession).hostKeyWarnings ?? [];
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain(`${file}:1`);
      expect(warnings[0]).toMatch(/sk-ssh-ed25519@openssh\.com is not supported/);

      // Known only through the unusable line: refused as changed, and the message says why.
      await writeFile(file, `${name} ${skText}\n`);
      const only = await tryConnect(
        connectTarget(host.port, file, (await loadKnownHostsFile(file)).entries, {
          hostKeyPolicy: "accept-new",
        }),
      );
      expect(only).toMatchObject({ code: "host_key_changed" });
      expect((only as HostError).message).toMatch(/ignored: key type sk-ssh-ed25519@openssh\.com/);
      expect(await readFile(file, "utf8")).toBe(`${name} ${skText}\n`);
    } finally {
      await host.close();
    }
  }, 30_000);

  describe("an sshd that offers only ssh-dss and SHA-1 ssh-rsa", () => {
    let sshd: StartedSshd | undefined;
    let dir = "";
    let dsa: GeneratedKey;
    let rsaHost: GeneratedKey;

    beforeAll(async () => {
      dir = await makeTempDir("legacy-sshd");
      [rsaHost, dsa] = await Promise.all([
        generateKey(dir, "host_rsa", "rsa"),
        generateKey(dir, "host_dsa", "dsa"),
      ]);
      sshd = await startSshd(dir, ["host_rsa", "host_dsa"], ["HostKeyAlgorithms ssh-rsa,ssh-dss"]);
    }, 60_000);

    afterAll(async () => {
      await sshd?.stop();
    });

    it("OpenSSH's own client refuses it by default", async (ctx) => {
      skipOrFail(ctx, "unit", sshd?.unavailable ?? "sshd not started");
      const result = await run("ssh", [
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-p",
        String(sshd?.port),
        "nobody@127.0.0.1",
        "true",
      ]);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(/no matching host key type found/);
    });

    it("is refused unless legacy_host_key_algorithms, then its key is verified and added", async (ctx) => {
      skipOrFail(ctx, "unit", sshd?.unavailable ?? "sshd not started");
      const port = sshd?.port ?? 0;
      const file = join(await makeTempDir("legacy-kh"), "known_hosts");
      const refused = await tryConnect(connectTarget(port, file, []));
      expect(refused).toMatchObject({ code: "host_key_unknown" });
      expect((refused as HostError).message).toMatch(/no host-key algorithm the controller accepts/);
      expect((refused as HostError).hint).toMatch(/legacy_host_key_algorithms = true/);
      expect(existsSync(file)).toBe(false);

      // Opted in: the host key passes (sshd then refuses the login: no key is offered).
      const accepted = await tryConnect(connectTarget(port, file, [], { legacyHostKeyAlgorithms: true }));
      expect(accepted).toMatchObject({ code: "auth" });
      const { entries } = await loadKnownHostsFile(file);
      expect(entries.map((e) => e.type)).toEqual(["ssh-rsa"]);
      expect(entries[0]?.blob.equals(rsaHost.blob)).toBe(true);
    }, 30_000);

    it("a host known by its ssh-dss key is refused unless legacy_host_key_algorithms", async (ctx) => {
      skipOrFail(ctx, "unit", sshd?.unavailable ?? "sshd not started");
      const port = sshd?.port ?? 0;
      const file = join(await makeTempDir("legacy-dss"), "known_hosts");
      await writeFile(file, `[127.0.0.1]:${port} ${dsa.text}\n`);
      const { entries } = await loadKnownHostsFile(file);
      const strict = { hostKeyPolicy: "strict" } as const;
      const refused = await tryConnect(connectTarget(port, file, entries, strict));
      expect(refused).toMatchObject({ code: "host_key_unknown" });
      const accepted = await tryConnect(
        connectTarget(port, file, entries, { ...strict, legacyHostKeyAlgorithms: true }),
      );
      expect(accepted).toMatchObject({ code: "auth" });
      expect((accepted as HostError).message).toMatch(/authentication failed/);
    }, 30_000);
  });
});
