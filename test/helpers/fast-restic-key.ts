// Test repositories with a cheap key: restic calibrates its scrypt key derivation at `restic init` to
// about 0.5 s of CPU, and pays it again on every command that opens the repository. The tests run
// thousands of restic commands on two cores, so that cost is most of a tier's time. Like restic's own
// tests (TestUseLowSecurityKDFParameters), the tests' repositories get a key with scrypt N=1024, r=8,
// p=1: the same key file format (doc/design.rst, "Keys, Encryption and MAC"), re-sealed here with
// node's crypto, so every restic version reads it as any other key. Never for a real repository.
import { createCipheriv, createHash, randomBytes, scryptSync, timingSafeEqual } from "node:crypto";
import { readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const FAST = { N: 1024, r: 8, p: 1 } as const;

interface KeyFile {
  kdf: string;
  N: number;
  r: number;
  p: number;
  salt: string;
  data: string;
  [field: string]: unknown;
}

/** The 64 bytes scrypt derives: the AES-256 key, then the MAC key k (AES-128) and r (Poly1305). */
function derive(password: string, salt: Buffer, params: { N: number; r: number; p: number }) {
  const bytes = scryptSync(password, salt, 64, { ...params, maxmem: 256 * params.N * params.r + 2 ** 20 });
  return { encryption: bytes.subarray(0, 32), k: bytes.subarray(32, 48), r: bytes.subarray(48, 64) };
}

const P1305 = (1n << 130n) - 5n;

function littleEndian(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i] as number);
  return n;
}

/** Poly1305-AES as restic uses it: r clamped, s = AES-128_k(nonce). */
function mac(message: Buffer, nonce: Buffer, key: { k: Buffer; r: Buffer }): Buffer {
  const aes = createCipheriv("aes-128-ecb", key.k, null).setAutoPadding(false);
  const s = littleEndian(Buffer.concat([aes.update(nonce), aes.final()]));
  const r = littleEndian(key.r) & 0x0ffffffc0ffffffc0ffffffc0fffffffn;
  let acc = 0n;
  for (let i = 0; i < message.length; i += 16) {
    const block = message.subarray(i, i + 16);
    acc = ((acc + littleEndian(block) + (1n << BigInt(8 * block.length))) * r) % P1305;
  }
  const tag = (acc + s) & ((1n << 128n) - 1n);
  const out = Buffer.alloc(16);
  for (let i = 0; i < 16; i++) out[i] = Number((tag >> BigInt(8 * i)) & 0xffn);
  return out;
}

function ctr(key: Buffer, nonce: Buffer, data: Buffer): Buffer {
  const cipher = createCipheriv("aes-256-ctr", key, nonce);
  return Buffer.concat([cipher.update(data), cipher.final()]);
}

/**
 * One key file's content (a restic key opened by `password`) re-sealed with the cheap scrypt
 * parameters, and its new file name (a key's name is the SHA-256 of its content, which restic checks
 * when it loads it). Throws if the password does not open the key.
 */
export function fastKey(content: string, password: string): { name: string; content: string } {
  const file = JSON.parse(content) as KeyFile;
  if (file.kdf !== "scrypt") throw new Error(`kdf ${file.kdf}`);
  const sealed = Buffer.from(file.data, "base64");
  const nonce = sealed.subarray(0, 16);
  const body = sealed.subarray(16, -16);
  const old = derive(password, Buffer.from(file.salt, "base64"), file);
  if (!timingSafeEqual(mac(body, nonce, old), sealed.subarray(-16)))
    throw new Error("the password does not open this key");
  const masterKey = ctr(old.encryption, nonce, body);
  const salt = randomBytes(64);
  const fast = derive(password, salt, FAST);
  const freshNonce = randomBytes(16);
  const freshBody = ctr(fast.encryption, freshNonce, masterKey);
  const data = Buffer.concat([freshNonce, freshBody, mac(freshBody, freshNonce, fast)]);
  const fresh = JSON.stringify({
    ...file,
    ...FAST,
    salt: salt.toString("base64"),
    data: data.toString("base64"),
  });
  return { name: createHash("sha256").update(fresh).digest("hex"), content: fresh };
}

/**
 * Re-seals every key of the local repository at `repo` (opened with the password in `passwordFile`)
 * with the cheap scrypt parameters. Throws if a key does not open with that password.
 */
export function useFastKeys(repo: string, passwordFile: string): void {
  const password = readFileSync(passwordFile, "utf8").replace(/\r?\n$/, "");
  const keys = join(repo, "keys");
  for (const name of readdirSync(keys)) {
    const path = join(keys, name);
    let fresh;
    try {
      fresh = fastKey(readFileSync(path, "utf8"), password);
    } catch (error) {
      throw new Error(`${path}: ${(error as Error).message}`, { cause: error });
    }
    writeFileSync(join(keys, fresh.name), fresh.content, { mode: statSync(path).mode & 0o777 });
    unlinkSync(path);
  }
}
