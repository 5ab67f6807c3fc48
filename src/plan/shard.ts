// `--shard K/N`: which hosts of a selection one of N machines runs. The hash of the host's name
// alone decides, so every machine and every run agrees, whatever the inventory's order.
import { createHash } from "node:crypto";
import { UsageError } from "../errors.js";

/** Shard `k` of `n` (k from 1 to n), as the report's options record it. */
export interface Shard {
  k: number;
  n: number;
}

/**
 * sha256(name) read as one big-endian integer, mod n, is k - 1. Chosen over rendezvous hashing because
 * anyone can check an assignment in one line (`python3 -c 'import hashlib;
 * print(int(hashlib.sha256(b"web1").hexdigest(), 16) % 3 + 1)'`); what rendezvous hashing would add
 * (few hosts move when N changes) buys nothing here, since no shard keeps state between runs.
 */
export function shardOf(name: string, n: number): number {
  const digest = createHash("sha256").update(name, "utf8").digest("hex");
  return Number(BigInt(`0x${digest}`) % BigInt(n)) + 1;
}

/** The items whose name falls in `shard`, in their given order. */
export function selectShard<T>(items: readonly T[], shard: Shard, nameOf: (item: T) => string): T[] {
  return items.filter((item) => shardOf(nameOf(item), shard.n) === shard.k);
}

/** `K/N` → a shard; anything else (K outside 1..N, N < 1, not two whole numbers) is a UsageError. */
export function parseShard(text: string): Shard {
  const match = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const k = Number(match?.[1]);
  const n = Number(match?.[2]);
  if (match === null || !Number.isSafeInteger(k) || !Number.isSafeInteger(n))
    throw new UsageError(`--shard must be K/N, such as 2/5, got "${text}"`, {
      hint: "K is this machine's shard, from 1 to N; N is how many machines share the hosts",
    });
  if (n < 1) throw new UsageError(`--shard ${text}: N must be at least 1`);
  if (k < 1 || k > n) throw new UsageError(`--shard ${text}: K must be from 1 to ${n}`);
  return { k, n };
}

export function formatShard(shard: Shard): string {
  return `${shard.k}/${shard.n}`;
}
