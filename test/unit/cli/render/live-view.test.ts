import { describe, expect, it } from "vitest";
import {
  applyLiveEvent,
  describeResticProgress,
  finishedLine,
  fit,
  initialLiveState,
  liveLines,
  plainProgressDue,
  textColumns,
  type LiveState,
} from "../../../../src/cli/render/live-view.js";
import { makeStyle } from "../../../../src/cli/render/style.js";
import type { ProgressEvent, ResticProgress } from "../../../../src/report/progress-event.js";

const plain = makeStyle(false);
const restic = (over: Partial<ResticProgress> = {}): ResticProgress => ({
  job: "data",
  repo: "/srv/repo",
  fraction: 0.421,
  bytesDone: 1024 * 1024,
  bytesTotal: 3 * 1024 * 1024,
  filesDone: 12,
  filesTotal: 40,
  etaS: 65,
  ...over,
});

function run(
  events: [number, ProgressEvent][],
  total = 3,
): { state: LiveState; finished: string[]; notes: string[] } {
  let state = initialLiveState(total, 0);
  const finished: string[] = [];
  const notes: string[] = [];
  for (const [now, event] of events) {
    const next = applyLiveEvent(state, event, now);
    state = next.state;
    if (next.finished !== null) finished.push(finishedLine(next.finished, 80, plain));
    if (next.note !== null) notes.push(next.note);
  }
  return { state, finished, notes };
}

describe("live view state", () => {
  it("keeps one line per running host, with restic's progress until its next step", () => {
    const { state } = run([
      [0, { host: "web1", step: "connecting" }],
      [100, { host: "db1", step: "connecting" }],
      [500, { host: "web1", step: "running", detail: "job data" }],
      [2500, { host: "web1", step: "progress", restic: restic() }],
    ]);
    expect(liveLines(state, { width: 120, height: 30 }, 4000, plain)).toEqual([
      "web1  4s  backup 42.1%  data → /srv/repo  1.0 MiB/3.0 MiB  12/40 files  ETA 1m05s",
      "db1  3s  connecting",
      "0/3 done · 2 running · 0 failed · 0 unreachable · elapsed 4s",
    ]);
    const after = applyLiveEvent(
      state,
      { host: "web1", step: "running", detail: "data → /srv/repo: 1a2b" },
      5000,
    );
    expect(liveLines(after.state, { width: 120, height: 30 }, 5000, plain)[0]).toBe(
      "web1  5s  data → /srv/repo: 1a2b",
    );
  });

  it("moves a finished host to a permanent line with status, time and reason, and counts it", () => {
    const { state, finished } = run([
      [0, { host: "web1", step: "connecting" }],
      [0, { host: "db1", step: "connecting" }],
      [0, { host: "old1", step: "connecting" }],
      [1500, { host: "db1", step: "done", status: "unreachable", detail: "connect ECONNREFUSED" }],
      [62_000, { host: "web1", step: "done", status: "ok" }],
    ]);
    expect(finished).toEqual(["db1  unreachable  1s  connect ECONNREFUSED", "web1  ok  1m02s"]);
    expect(liveLines(state, { width: 120, height: 30 }, 63_000, plain)).toEqual([
      "old1  1m03s  connecting",
      "2/3 done · 1 running · 0 failed · 1 unreachable · elapsed 1m03s",
    ]);
  });

  it("shows a finished host's later step (prune's second phase) as a note, not as running again", () => {
    const { state, notes } = run([
      [0, { host: "web1", step: "connecting" }],
      [10, { host: "web1", step: "done", status: "ok" }],
      [20, { host: "web1", step: "running", detail: "connecting to prune" }],
      [30, { host: "web1", step: "progress", restic: restic() }],
    ]);
    expect(state.running).toEqual([]);
    expect(notes).toEqual(["web1  connecting to prune"]);
  });

  it("with more running hosts than rows, shows the busiest and how many more", () => {
    const events: [number, ProgressEvent][] = [];
    for (let n = 1; n <= 10; n++) events.push([n, { host: `h${n}`, step: "connecting" }]);
    events.push([20, { host: "h7", step: "progress", restic: restic({ bytesDone: 0, bytesTotal: 10_000 }) }]);
    events.push([20, { host: "h3", step: "progress", restic: restic({ bytesDone: 0, bytesTotal: 90_000 }) }]);
    const lines = liveLines(run(events, 10).state, { width: 80, height: 6 }, 1000, plain);
    expect(lines).toHaveLength(5);
    expect(lines.slice(0, 3).map((line) => line.split(" ")[0])).toEqual(["h3", "h7", "h1"]);
    expect(lines[3]).toBe("+7 more running");
    expect(lines[4]).toMatch(/^0\/10 done · 10 running/);
  });

  it("cuts every line to the width without splitting an escape sequence, and makes host text harmless", () => {
    const color = makeStyle(true);
    const { state, finished } = run([
      [0, { host: "web1", step: "connecting" }],
      [0, { host: "web2", step: "connecting" }],
      [
        5,
        { host: "web1", step: "running", detail: "evil \u001b]52;c;aGk=\u0007 日本語のテキスト ".repeat(5) },
      ],
      [9, { host: "web2", step: "done", status: "failed", detail: "restic backup failed\nsecond line" }],
    ]);
    /* eslint-disable no-control-regex -- the escape sequences are what this test looks for */
    for (const width of [10, 20, 33, 80]) {
      const lines = liveLines(state, { width, height: 30 }, 1000, color);
      for (const line of lines) {
        const visible = line.replace(/\u001b\[\d+m/g, "");
        expect(visible).not.toMatch(/[\u0000-\u001f]/);
        expect(textColumns(visible)).toBeLessThanOrEqual(width - 1);
        // Every escape sequence complete: SGR on and off in pairs.
        expect(line.match(/\u001b\[(?!0m)\d+m/g)?.length ?? 0).toBe(line.match(/\u001b\[0m/g)?.length ?? 0);
      }
    }
    /* eslint-enable no-control-regex */
    expect(finished[0]).toContain("restic backup failed\\nsecond line");
    expect(
      finishedLine({ name: "web2", status: "failed", durationMs: 0, reason: "x".repeat(200) }, 30, color),
    ).toBe(`\u001b[1mweb2\u001b[0m  \u001b[31mfailed\u001b[0m  0s\u001b[2m  ${"x".repeat(10)}…\u001b[0m`);
  });
});

describe("fit", () => {
  it("keeps the last column free and counts wide characters as two", () => {
    expect(fit("abcdef", 7)).toBe("abcdef");
    expect(fit("abcdefg", 7)).toBe("abcde…");
    expect(fit("日本語", 7)).toBe("日本語");
    expect(fit("日本語テ", 7)).toBe("日本…");
    expect(textColumns(fit("日本語テキスト", 8))).toBeLessThanOrEqual(7);
    expect(fit("abc", 1)).toBe("");
  });
});

describe("restic progress text", () => {
  it("says only what restic knows so far", () => {
    expect(
      describeResticProgress(
        restic({
          fraction: null,
          bytesDone: null,
          bytesTotal: null,
          filesDone: null,
          filesTotal: null,
          etaS: null,
        }),
      ),
    ).toBe("data → /srv/repo");
    expect(describeResticProgress(restic({ fraction: 1.02, etaS: 7300 }))).toBe(
      "100.0%  data → /srv/repo  1.0 MiB/3.0 MiB  12/40 files  ETA 2h01m",
    );
  });
});

describe("plain progress lines", () => {
  it("are due at once, then once every interval per host", () => {
    expect(plainProgressDue(undefined, 0, 30_000)).toBe(true);
    expect(plainProgressDue(1000, 30_999, 30_000)).toBe(false);
    expect(plainProgressDue(1000, 31_000, 30_000)).toBe(true);
  });
});
