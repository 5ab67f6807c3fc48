// The live fleet view on a terminal, as pure functions: state + event → state, state + size → lines.
// src/cli/live-screen.ts draws the lines in place; nothing here touches a stream or a clock.
import type { ProgressEvent, ResticProgress } from "../../report/progress-event.js";
import type { HostStatus } from "../../report/report-schema.js";
import { bytes } from "./backup-table.js";
import type { Style } from "./style.js";
import { terminalText } from "./terminal-text.js";

export interface LiveHost {
  name: string;
  startedMs: number;
  /** What the agent reported last ("connecting" until it starts). */
  step: string;
  /** restic backup's latest status, until the agent reports something else. */
  restic: ResticProgress | null;
}

export interface FinishedHost {
  name: string;
  status: HostStatus;
  durationMs: number;
  reason: string | null;
}

export interface LiveState {
  total: number;
  startedMs: number;
  /** In the order they started. */
  running: LiveHost[];
  finished: number;
  /** The finished hosts' names: a later step of theirs (prune's second phase) is a note, not a new running line. */
  finishedNames: string[];
  failed: number;
  unreachable: number;
}

export function initialLiveState(total: number, nowMs: number): LiveState {
  return { total, startedMs: nowMs, running: [], finished: 0, finishedNames: [], failed: 0, unreachable: 0 };
}

/**
 * The state after `event`, and the host that it finished (printed once, above the live lines).
 * "log" events change nothing here: the screen prints them above as they come.
 */
export function applyLiveEvent(
  state: LiveState,
  event: ProgressEvent,
  nowMs: number,
): { state: LiveState; finished: FinishedHost | null; note: string | null } {
  const current = state.running.find((host) => host.name === event.host);
  if (current === undefined && state.finishedNames.includes(event.host)) {
    const note = event.step === "running" ? `${event.host}  ${event.detail ?? "running"}` : null;
    return { state, finished: null, note };
  }
  const others = state.running.filter((host) => host.name !== event.host);
  const host: LiveHost = current ?? { name: event.host, startedMs: nowMs, step: "connecting", restic: null };
  switch (event.step) {
    case "connecting":
      return {
        state: { ...state, running: [...others, { ...host, step: "connecting", restic: null }] },
        finished: null,
        note: null,
      };
    case "running":
      return {
        state: {
          ...state,
          running: replace(state.running, { ...host, step: event.detail ?? "running", restic: null }),
        },
        finished: null,
        note: null,
      };
    case "progress":
      return {
        state: { ...state, running: replace(state.running, { ...host, restic: event.restic ?? null }) },
        finished: null,
        note: null,
      };
    case "log":
      return { state, finished: null, note: null };
    case "done": {
      const status = event.status ?? "failed";
      return {
        state: {
          ...state,
          running: others,
          finished: state.finished + 1,
          finishedNames: [...state.finishedNames, event.host],
          failed: state.failed + (status === "failed" ? 1 : 0),
          unreachable: state.unreachable + (status === "unreachable" ? 1 : 0),
        },
        finished: {
          name: event.host,
          status,
          durationMs: nowMs - host.startedMs,
          reason: event.detail ?? null,
        },
        note: null,
      };
    }
  }
}

/** `host` in place of the running host of its name, or added at the end. */
function replace(running: LiveHost[], host: LiveHost): LiveHost[] {
  return running.some((h) => h.name === host.name)
    ? running.map((h) => (h.name === host.name ? host : h))
    : [...running, host];
}

/** A finished host's permanent line: status, time, one-line reason; within `width` columns. */
export function finishedLine(host: FinishedHost, width: number, style: Style): string {
  const paint =
    host.status === "ok"
      ? style.ok
      : host.status === "partial" || host.status === "skipped"
        ? style.warn
        : style.bad;
  const name = terminalText(host.name);
  const head = `${name}  ${host.status}  ${duration(host.durationMs)}`;
  const reason = host.reason === null ? "" : `  ${terminalText(host.reason)}`;
  // Cut the plain text, then paint whole pieces: a cut never falls inside an escape sequence.
  if (textColumns(head) + 1 > width) return fit(head + reason, width);
  const rest = fit(reason, width - textColumns(head));
  return `${style.bold(name)}  ${paint(host.status)}  ${duration(host.durationMs)}${style.dim(rest)}`;
}

/**
 * The lines redrawn in place: one per running host (the busiest when they do not all fit in
 * `height` rows, with a count of the others), then the overall line. Every line fits `width`.
 */
export function liveLines(
  state: LiveState,
  size: { width: number; height: number },
  nowMs: number,
  style: Style,
): string[] {
  const width = Math.max(size.width, 1);
  // One row stays free for the cursor, one is the overall line.
  const rows = Math.max(size.height - 2, 1);
  let shown = state.running;
  let more = 0;
  if (shown.length > rows) {
    shown = [...state.running].sort(busiest).slice(0, rows - 1);
    more = state.running.length - shown.length;
  }
  const lines = shown.map((host) => runningLine(host, width, nowMs, style));
  if (more > 0) lines.push(style.dim(fit(`+${more} more running`, width)));
  lines.push(overallLine(state, width, nowMs, style));
  return lines;
}

/** restic hosts with the most bytes still to read first, then the longest running. */
function busiest(a: LiveHost, b: LiveHost): number {
  const left = (host: LiveHost) =>
    host.restic === null ? -1 : Math.max((host.restic.bytesTotal ?? 0) - (host.restic.bytesDone ?? 0), 0);
  return left(b) - left(a) || a.startedMs - b.startedMs;
}

function runningLine(host: LiveHost, width: number, nowMs: number, style: Style): string {
  const head = `${host.name}  ${duration(nowMs - host.startedMs)}  `;
  const body = host.restic === null ? host.step : `backup ${describeResticProgress(host.restic)}`;
  const text = fit(terminalText(head + body), width);
  const name = terminalText(host.name);
  return text.length <= name.length ? style.bold(text) : `${style.bold(name)}${text.slice(name.length)}`;
}

function overallLine(state: LiveState, width: number, nowMs: number, style: Style): string {
  const parts = [
    `${state.finished}/${state.total} done`,
    `${state.running.length} running`,
    `${state.failed} failed`,
    `${state.unreachable} unreachable`,
    `elapsed ${duration(nowMs - state.startedMs)}`,
  ];
  return style.dim(fit(parts.join(" · "), width));
}

/**
 * `42.0%  data → /srv/repo  1.2 GiB/3.0 GiB  120/400 files  ETA 1m05s`: what restic knows so far,
 * the percent first, so that a narrow terminal still shows it.
 */
export function describeResticProgress(progress: ResticProgress): string {
  const parts: string[] = [];
  if (progress.fraction !== null) parts.push(`${(Math.min(progress.fraction, 1) * 100).toFixed(1)}%`);
  parts.push(`${progress.job} → ${progress.repo}`);
  if (progress.bytesDone !== null || progress.bytesTotal !== null)
    parts.push(
      `${bytes(progress.bytesDone ?? 0)}/${progress.bytesTotal === null ? "?" : bytes(progress.bytesTotal)}`,
    );
  if (progress.filesDone !== null || progress.filesTotal !== null)
    parts.push(`${progress.filesDone ?? 0}/${progress.filesTotal ?? "?"} files`);
  if (progress.etaS !== null) parts.push(`ETA ${duration(progress.etaS * 1000)}`);
  return parts.join("  ");
}

/**
 * Whether a plain (not live) progress line is due for a host that last had one at `lastMs`
 * (undefined: never): at most one per host every `intervalMs`.
 */
export function plainProgressDue(lastMs: number | undefined, nowMs: number, intervalMs: number): boolean {
  return lastMs === undefined || nowMs - lastMs >= intervalMs;
}

function duration(ms: number): string {
  const s = Math.max(Math.floor(ms / 1000), 0);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/**
 * `text` (already without controls) cut to `width` terminal columns, with "…" when cut. East Asian
 * wide characters and emoji count two columns, combining marks none; the last column stays free so
 * that no terminal wraps the line (which would make the in-place redraw miscount its lines).
 */
export function fit(text: string, width: number): string {
  const limit = width - 1;
  if (textColumns(text) <= limit) return text;
  if (limit < 1) return "";
  let used = 0;
  let out = "";
  for (const char of text) {
    const w = columns(char);
    if (used + w > limit - 1) break;
    out += char;
    used += w;
  }
  return `${out}…`;
}

export function textColumns(text: string): number {
  let sum = 0;
  for (const char of text) sum += columns(char);
  return sum;
}

function columns(char: string): number {
  const code = char.codePointAt(0) ?? 0;
  if (/\p{Mn}|\p{Me}|\u200b/u.test(char)) return 0;
  if (
    (code >= 0x1100 && code <= 0x115f) ||
    (code >= 0x2e80 && code <= 0xa4cf) ||
    (code >= 0xac00 && code <= 0xd7a3) ||
    (code >= 0xf900 && code <= 0xfaff) ||
    (code >= 0xfe30 && code <= 0xfe4f) ||
    (code >= 0xff00 && code <= 0xff60) ||
    (code >= 0xffe0 && code <= 0xffe6) ||
    (code >= 0x1f300 && code <= 0x1faff) ||
    (code >= 0x20000 && code <= 0x3fffd)
  )
    return 2;
  return 1;
}
