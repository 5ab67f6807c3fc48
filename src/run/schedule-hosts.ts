// When each host runs, as Ansible users expect: `--forks` at once, in `--serial` batches (a batch
// starts when the previous one has ended), each host after a random `--splay` delay, and no more
// started once more than `--max-fail-percent` have failed.
import PQueue from "p-queue";
import type { HostResult } from "../report/report-schema.js";

export interface Schedule {
  forks: number;
  /** Hosts per batch, or null for one batch of all. */
  serial: number | null;
  /** Start no more once more than this share (0–100) has failed; null: never stop. */
  maxFailPercent: number | null;
  /** Each host waits a random time in [0, splayMs) before it starts; 0 for none. */
  splayMs: number;
}

/** How one host is to run: after which splay, or not at all (`stopped` says why). */
export interface HostStart {
  splayMs: number | null;
  stopped: string | null;
}

export interface ScheduleHooks<T> {
  run: (item: T, start: HostStart) => Promise<HostResult>;
  signal: AbortSignal;
  random?: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** Unreachable counts as failed, as in Ansible's max_fail_percentage. */
const FAILED = new Set<HostResult["status"]>(["failed", "unreachable"]);

/** Ansible's serial "N%": that share of the hosts, rounded down, at least 1. */
export function batchSize(serial: string, hosts: number): number {
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(serial);
  if (percent !== null) return Math.max(1, Math.floor((Number(percent[1]) / 100) * hosts));
  return Number(serial);
}

/**
 * File descriptors the controller keeps for itself (Node, stdio, the report files), and what each
 * running host holds: its connection's socket, and for a moment the one that is closing (measured:
 * 20 with one host at a time, some 30 with ten).
 */
export const RESERVED_OPEN_FILES = 32;
export const OPEN_FILES_PER_HOST = 2;

/**
 * At most as many hosts at once as the open-files limit leaves room for: past it, every further host
 * would fail with EMFILE while connecting. `limit` undefined: not known, `forks` as asked.
 */
export function forksWithinOpenFiles(forks: number, limit: number | undefined): number {
  if (limit === undefined) return forks;
  return Math.max(1, Math.min(forks, Math.floor((limit - RESERVED_OPEN_FILES) / OPEN_FILES_PER_HOST)));
}

export async function scheduleHosts<T>(
  items: readonly T[],
  schedule: Schedule,
  hooks: ScheduleHooks<T>,
): Promise<HostResult[]> {
  const random = hooks.random ?? Math.random;
  const sleep = hooks.sleep ?? abortableSleep;
  const results = new Array<HostResult | undefined>(items.length);
  let stopReason: string | null = null;
  const size = schedule.serial ?? items.length;
  for (let start = 0; start < items.length; start += size) {
    const batch = items.slice(start, start + size).map((item, offset) => ({ item, index: start + offset }));
    if (stopReason !== null) {
      const stopped = stopReason;
      for (const { item, index } of batch) results[index] = await hooks.run(item, { splayMs: null, stopped });
      continue;
    }
    const queue = new PQueue({ concurrency: schedule.forks });
    let finished = 0;
    let failed = 0;
    // Without --serial the threshold is over the hosts finished so far; with it, over each batch.
    const overThreshold = (count: number, of: number) =>
      schedule.maxFailPercent !== null && of > 0 && (count / of) * 100 > schedule.maxFailPercent;
    const why = (count: number, of: number) =>
      `not started: ${count} of ${of} host(s) ${schedule.serial === null ? "finished so far" : "in the previous batch"} failed or were unreachable, more than --max-fail-percent ${schedule.maxFailPercent}%`;
    await Promise.all(
      batch.map(async ({ item, index }) => {
        const splayMs = schedule.splayMs > 0 ? Math.floor(random() * schedule.splayMs) : null;
        if (splayMs !== null && splayMs > 0) await sleep(splayMs, hooks.signal);
        results[index] = (await queue.add(async () => {
          if (stopReason !== null) return hooks.run(item, { splayMs, stopped: stopReason });
          const result = await hooks.run(item, { splayMs, stopped: null });
          finished++;
          if (FAILED.has(result.status)) failed++;
          if (schedule.serial === null && stopReason === null && overThreshold(failed, finished))
            stopReason = why(failed, finished);
          return result;
        })) as HostResult;
      }),
    );
    if (schedule.serial !== null && stopReason === null && overThreshold(failed, batch.length))
      stopReason = why(failed, batch.length);
  }
  return results.map((result) => {
    if (result === undefined) throw new Error("a host was never scheduled");
    return result;
  });
}

/** Resolves after `ms`, or at once when the run is interrupted (the host then starts as skipped). */
function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}
