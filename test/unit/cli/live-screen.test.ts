import { afterEach, describe, expect, it, vi } from "vitest";
import { LiveScreen } from "../../../src/cli/live-screen.js";
import { makeStyle } from "../../../src/cli/render/style.js";

function screen(size = { columns: 80, rows: 24 }) {
  const writes: string[] = [];
  let resize: () => void = () => {};
  let removed = false;
  let now = 0;
  const live = new LiveScreen(
    2,
    {
      write: (text) => void writes.push(text),
      size: () => size,
      onResize: (handler) => {
        resize = handler;
        return () => void (removed = true);
      },
      now: () => now,
    },
    makeStyle(false),
  );
  return {
    live,
    writes,
    size,
    resize: () => resize(),
    removed: () => removed,
    at: (ms: number) => void (now = ms),
  };
}

/** Up `rows`, each cleared on the way down, and up again. */
const erased = (rows: number) => `\r\u001b[${rows}A${"\u001b[2K\u001b[1B".repeat(rows)}\u001b[${rows}A`;
const UP1 = erased(1);
const UP2 = erased(2);

afterEach(() => {
  vi.useRealTimers();
});

describe("LiveScreen", () => {
  it("hides the cursor, then erases exactly the lines it drew before drawing again", () => {
    const s = screen();
    expect(s.writes[0]).toBe("\u001b[?25l");
    // The overall line only: one row to go back over next time.
    expect(s.writes[1]).toBe("0/2 done · 0 running · 0 failed · 0 unreachable · elapsed 0s\n");
    s.at(1000);
    s.live.onEvent({ host: "web1", step: "connecting" }, false);
    expect(s.writes[2]).toBe(
      UP1 + "web1  0s  connecting\n0/2 done · 1 running · 0 failed · 0 unreachable · elapsed 1s\n",
    );
    s.at(3000);
    s.live.onEvent({ host: "web1", step: "done", status: "ok" }, false);
    // The finished host printed once, above the live lines, which are drawn again below it.
    expect(s.writes[3]).toBe(
      UP2 + "web1  ok  2s\n1/2 done · 0 running · 0 failed · 0 unreachable · elapsed 3s\n",
    );
  });

  it("draws restic's progress with the next second's redraw, however often it comes", () => {
    vi.useFakeTimers();
    const s = screen();
    s.live.onEvent({ host: "web1", step: "connecting" }, false);
    const before = s.writes.length;
    for (let n = 0; n < 100; n++)
      s.live.onEvent(
        {
          host: "web1",
          step: "progress",
          restic: {
            job: "data",
            repo: "/srv/repo",
            fraction: n / 100,
            bytesDone: n,
            bytesTotal: 100,
            filesDone: null,
            filesTotal: null,
            etaS: null,
          },
        },
        false,
      );
    expect(s.writes.length).toBe(before);
    vi.advanceTimersByTime(1000);
    expect(s.writes.length).toBe(before + 1);
    expect(s.writes.at(-1)).toContain("backup 99.0%  data → /srv/repo  99 B/100 B");
    s.live.stop();
  });

  it("prints log lines above only with --verbose", () => {
    const s = screen();
    s.live.onEvent({ host: "web1", step: "log", detail: "restic: hello\u001b[2J" }, false);
    expect(s.writes.at(-1)).not.toContain("hello");
    s.live.onEvent({ host: "web1", step: "log", detail: "restic: hello\u001b[2J" }, true);
    expect(s.writes.at(-1)).toContain("[web1] restic: hello\\x1b[2J\n");
  });

  it("on a shrunk terminal, erases the rows its wider lines wrapped into", () => {
    const s = screen({ columns: 100, rows: 24 });
    s.live.onEvent({ host: "web1", step: "running", detail: "x".repeat(90) }, false);
    s.size.columns = 40;
    s.resize();
    // web1's line took 98 columns: 3 rows at 40; the overall line (58 columns) 2.
    expect(s.writes.at(-1)?.startsWith(erased(5))).toBe(true);
    for (const line of (s.writes.at(-1) ?? "").slice(erased(5).length).split("\n"))
      expect(line.length).toBeLessThan(40);
  });

  it("redraws every second for the elapsed times, and stops for good with the cursor shown", () => {
    vi.useFakeTimers();
    const s = screen();
    const before = s.writes.length;
    s.at(1000);
    vi.advanceTimersByTime(1000);
    expect(s.writes.length).toBe(before + 1);
    expect(s.writes.at(-1)).toContain("elapsed 1s");
    s.live.stop();
    expect(s.writes.at(-1)).toBe(UP1 + "\u001b[?25h");
    expect(s.removed()).toBe(true);
    expect(s.live.running).toBe(false);
    const after = s.writes.length;
    vi.advanceTimersByTime(5000);
    s.live.onEvent({ host: "web1", step: "connecting" }, false);
    s.live.stop();
    expect(s.writes.length).toBe(after);
  });
});
