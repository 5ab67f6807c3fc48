// RLVM_FLEET_EVENT_LOOP_STATS=FILE: how long the controller's event loop stalled during the run,
// written to FILE as JSON when the process exits (the bench's scale dimension reads it: with every
// host at once, a stall is what turns into connect and keepalive timeouts). Unset, nothing is started.
import { writeFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";

export const EVENT_LOOP_STATS_ENV = "RLVM_FLEET_EVENT_LOOP_STATS";

/** Node samples with a timer of this period; each sample is how late it fired (the period taken off). */
const RESOLUTION_MS = 10;

export interface EventLoopStats {
  /** Milliseconds a timer fired late: the worst, and the 99th and 50th percentiles. */
  max_ms: number;
  p99_ms: number;
  p50_ms: number;
  samples: number;
  resolution_ms: number;
}

/**
 * Starts measuring when the variable names a file; returns the function that writes the stats so
 * far (also called at process exit), or null when it is unset.
 */
export function recordEventLoopStats(
  env: Record<string, string | undefined>,
  onExit: (write: () => void) => void = (write) => process.once("exit", write),
): (() => void) | null {
  const file = env[EVENT_LOOP_STATS_ENV];
  if (file === undefined || file === "") return null;
  const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  histogram.enable();
  const late = (ns: number) => Math.max(0, ns / 1e6 - RESOLUTION_MS);
  const write = () => {
    const stats: EventLoopStats = {
      max_ms: late(histogram.max),
      p99_ms: late(histogram.percentile(99)),
      p50_ms: late(histogram.percentile(50)),
      samples: histogram.count,
      resolution_ms: RESOLUTION_MS,
    };
    try {
      writeFileSync(file, `${JSON.stringify(stats)}\n`);
    } catch {
      // A measurement aid: never the reason a run fails.
    }
  };
  onExit(write);
  return write;
}
