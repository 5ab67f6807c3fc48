// RLVM_FLEET_EVENT_LOOP_STATS=FILE: off unless set; when set, a stall of the event loop shows in FILE.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  EVENT_LOOP_STATS_ENV,
  recordEventLoopStats,
  type EventLoopStats,
} from "../../../src/cli/event-loop-stats.js";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("recordEventLoopStats", () => {
  it("starts nothing and registers nothing when the variable is unset or empty", () => {
    const registered: unknown[] = [];
    expect(recordEventLoopStats({}, (write) => registered.push(write))).toBeNull();
    expect(
      recordEventLoopStats({ [EVENT_LOOP_STATS_ENV]: "" }, (write) => registered.push(write)),
    ).toBeNull();
    expect(registered).toEqual([]);
  });

  it("writes the worst stall and the percentiles, in ms late, at exit", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rlvm-eld-"));
    dirs.push(dir);
    const file = join(dir, "stats.json");
    let atExit: (() => void) | undefined;
    const write = recordEventLoopStats({ [EVENT_LOOP_STATS_ENV]: file }, (w) => (atExit = w));
    expect(write).not.toBeNull();
    expect(atExit).toBe(write);
    await sleep(50);
    const blockedUntil = Date.now() + 120;
    while (Date.now() < blockedUntil) {
      // Block the event loop, as a long synchronous step of the controller would.
    }
    await sleep(50);
    expect(existsSync(file)).toBe(false);
    atExit?.();
    const stats = JSON.parse(readFileSync(file, "utf8")) as EventLoopStats;
    expect(stats.max_ms).toBeGreaterThanOrEqual(80);
    expect(stats.max_ms).toBeLessThan(2000);
    expect(stats.p50_ms).toBeLessThan(stats.max_ms);
    expect(stats.p99_ms).toBeLessThanOrEqual(stats.max_ms);
    expect(stats.samples).toBeGreaterThan(2);
    expect(stats.resolution_ms).toBe(10);
  });
});
