// The host scheduler with a fake run: batches, the failure threshold and the splay, counted exactly.
import { describe, expect, it } from "vitest";
import type { HostResult } from "../../../src/report/report-schema.js";
import {
  batchSize,
  forksWithinOpenFiles,
  scheduleHosts,
  type HostStart,
  type Schedule,
} from "../../../src/run/schedule-hosts.js";
import { hostResult } from "../../helpers/report-fixture.js";

const NAMES = ["h1", "h2", "h3", "h4", "h5", "h6"];

/** Runs each host for a tick of fake work; records starts, the most at once, and what each was told. */
async function simulate(
  schedule: Partial<Schedule>,
  outcome: (name: string) => HostResult["status"] = () => "ok",
  extra: { random?: () => number; sleeps?: number[] } = {},
) {
  let running = 0;
  let most = 0;
  const order: string[] = [];
  const starts = new Map<string, HostStart>();
  const results = await scheduleHosts(
    NAMES,
    { forks: 10, serial: null, maxFailPercent: null, splayMs: 0, ...schedule },
    {
      signal: new AbortController().signal,
      ...(extra.random === undefined ? {} : { random: extra.random }),
      sleep: async (ms) => {
        extra.sleeps?.push(ms);
        await new Promise((r) => setTimeout(r, 1));
      },
      run: async (name, start) => {
        starts.set(name, start);
        if (start.stopped !== null) return hostResult(name, "skipped");
        order.push(`start ${name}`);
        running++;
        most = Math.max(most, running);
        await new Promise((r) => setTimeout(r, 5));
        running--;
        order.push(`end ${name}`);
        return hostResult(name, outcome(name));
      },
    },
  );
  return { results, most, order, starts };
}

describe("scheduleHosts", () => {
  it("runs up to --forks at once, every host once, results in host order", async () => {
    const run = await simulate({ forks: 3 });
    expect(run.results.map((r) => r.name)).toEqual(NAMES);
    expect(run.most).toBe(3);
  });

  it("--serial: a batch starts only once the previous one has ended", async () => {
    const run = await simulate({ serial: 2 });
    expect(run.most).toBe(2);
    const index = (step: string) => run.order.indexOf(step);
    for (const [done, next] of [
      ["h1", "h3"],
      ["h2", "h3"],
      ["h3", "h5"],
      ["h4", "h5"],
    ] as const)
      expect(index(`end ${done}`)).toBeLessThan(index(`start ${next}`));
  });

  it("batch sizes as Ansible's serial: a number, or a share of the hosts rounded down, at least 1", () => {
    expect(batchSize("3", 10)).toBe(3);
    expect(batchSize("25%", 10)).toBe(2);
    expect(batchSize("1%", 10)).toBe(1);
    expect(batchSize("100%", 7)).toBe(7);
  });

  it("--max-fail-percent without --serial: over the hosts finished so far; unreachable counts", async () => {
    const failing = new Set(["h2", "h3"]);
    // One at a time: h1 ok (0 %), h2 unreachable (50 %, not more than 50), h3 failed (67 %): stop.
    const run = await simulate({ forks: 1, maxFailPercent: 50 }, (name) =>
      failing.has(name) ? (name === "h2" ? "unreachable" : "failed") : "ok",
    );
    expect(run.results.map((r) => r.status)).toEqual([
      "ok",
      "unreachable",
      "failed",
      "skipped",
      "skipped",
      "skipped",
    ]);
    expect(run.starts.get("h4")?.stopped).toMatch(/2 of 3 host\(s\) finished so far failed .*50%/);
    expect(run.order).not.toContain("start h4");
  });

  it("--max-fail-percent 0 stops at the first failure; none stops without one", async () => {
    const stopped = await simulate({ forks: 1, maxFailPercent: 0 }, (name) =>
      name === "h1" ? "failed" : "ok",
    );
    expect(stopped.results.filter((r) => r.status === "skipped")).toHaveLength(5);
    const clean = await simulate({ forks: 1, maxFailPercent: 0 }, () => "partial");
    expect(clean.results.every((r) => r.status === "partial")).toBe(true);
  });

  it("--max-fail-percent with --serial: per batch, at its end; later batches never start", async () => {
    // Batch 1: h1 failed, h2 ok (50 %, not more); batch 2: h3, h4 failed (100 %): batch 3 is skipped.
    const run = await simulate({ serial: 2, maxFailPercent: 50 }, (name) =>
      ["h1", "h3", "h4"].includes(name) ? "failed" : "ok",
    );
    expect(run.results.map((r) => r.status)).toEqual([
      "failed",
      "ok",
      "failed",
      "failed",
      "skipped",
      "skipped",
    ]);
    expect(run.starts.get("h5")?.stopped).toMatch(/2 of 2 host\(s\) in the previous batch failed/);
  });

  it("--splay: each host waits a random time below the splay, and is told how long", async () => {
    const sleeps: number[] = [];
    const values = [0.5, 0.999, 0.25, 0, 0.1, 0.75];
    let i = 0;
    const run = await simulate({ splayMs: 2000 }, () => "ok", { random: () => values[i++] ?? 0, sleeps });
    expect(NAMES.map((name) => run.starts.get(name)?.splayMs)).toEqual([1000, 1998, 500, 0, 200, 1500]);
    // A host drawn 0 does not wait at all.
    expect([...sleeps].sort((a, b) => a - b)).toEqual([200, 500, 1000, 1500, 1998]);
    const none = await simulate({});
    expect(none.starts.get("h1")?.splayMs).toBeNull();
  });
});

describe("forksWithinOpenFiles", () => {
  it("keeps --forks while the open-files limit has room: 32 for the controller, 2 per running host", () => {
    expect(forksWithinOpenFiles(10, undefined)).toBe(10);
    expect(forksWithinOpenFiles(100, 1_048_576)).toBe(100);
    expect(forksWithinOpenFiles(2032, 4096)).toBe(2032);
  });

  it("runs fewer hosts at once where the limit would fail the rest with EMFILE, never none", () => {
    expect(forksWithinOpenFiles(100, 100)).toBe(34);
    expect(forksWithinOpenFiles(2033, 4096)).toBe(2032);
    expect(forksWithinOpenFiles(10, 20)).toBe(1);
  });
});
