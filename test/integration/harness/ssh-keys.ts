import { createHash } from "node:crypto";
import { readFile, rm } from "node:fs/promises";
import { requireExecutable } from "./prerequisites.js";
import { runCommandOrThrow } from "./run-command.js";

export interface KeyPair {
  readonly privateKeyPath: string;
  readonly publicKeyPath: string;
  /** `ssh-ed25519 AAAA…` without the comment: the form used in authorized_keys and known_hosts. */
  readonly publicKey: string;
  /** `SHA256:…`, as printed by `ssh-keygen -l` and OpenSSH's host key messages. */
  readonly fingerprint: string;
  /** Empty for an unprotected key. */
  readonly passphrase: string;
}

/** OpenSSH's SHA256 fingerprint of a public key line: unpadded base64 of the SHA-256 of the key blob. */
export function fingerprintOfPublicKey(publicKey: string): string {
  const blob = publicKey.trim().split(/\s+/)[1];
  if (blob === undefined) throw new Error(`not an OpenSSH public key: ${publicKey}`);
  const digest = createHash("sha256").update(Buffer.from(blob, "base64")).digest("base64");
  return `SHA256:${digest.replace(/=+$/, "")}`;
}

/** Writes a new ed25519 key pair at privateKeyPath and privateKeyPath.pub, replacing any existing one. */
export async function generateEd25519Key(
  privateKeyPath: string,
  options: { comment: string; passphrase?: string },
): Promise<KeyPair> {
  const publicKeyPath = `${privateKeyPath}.pub`;
  // ssh-keygen asks whether to overwrite instead of overwriting.
  await rm(privateKeyPath, { force: true });
  await rm(publicKeyPath, { force: true });
  const passphrase = options.passphrase ?? "";
  await runCommandOrThrow(requireExecutable("ssh-keygen"), [
    "-q",
    "-t",
    "ed25519",
    "-N",
    passphrase,
    "-C",
    options.comment,
    "-f",
    privateKeyPath,
  ]);
  const publicKey = (await readFile(publicKeyPath, "utf8")).trim().split(/\s+/).slice(0, 2).join(" ");
  return {
    privateKeyPath,
    publicKeyPath,
    publicKey,
    fingerprint: fingerprintOfPublicKey(publicKey),
    passphrase,
  };
}
