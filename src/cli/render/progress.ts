// Live progress on stderr: one line per host and step; timestamped when stderr is not a terminal.
import type { ProgressEvent } from "../../report/progress-event.js";
import { describeResticProgress } from "./live-view.js";
import type { Style } from "./style.js";
import { terminalSafe } from "./terminal-text.js";

/** The host's name and the event's detail (a host's own log line with --verbose) via terminalSafe. */
export function renderProgress(
  hostEvent: ProgressEvent,
  options: { tty: boolean; now: Date; style: Style },
): string {
  const { style } = options;
  const event = terminalSafe(hostEvent);
  const prefix = options.tty ? "" : `${options.now.toISOString()} `;
  let text: string;
  switch (event.step) {
    case "connecting":
      text = "connecting";
      break;
    case "running":
      text = event.detail ?? "running";
      break;
    case "progress":
      text = event.restic === undefined ? "backup" : `backup ${describeResticProgress(event.restic)}`;
      break;
    case "log":
      text = style.dim(event.detail ?? "");
      break;
    case "done": {
      const status = event.status ?? "failed";
      const painted =
        status === "ok"
          ? style.ok(status)
          : status === "partial" || status === "skipped"
            ? style.warn(status)
            : style.bad(status);
      text = `${painted}${event.detail === undefined ? "" : `: ${event.detail}`}`;
      break;
    }
  }
  return `${prefix}${style.dim(`[${event.host}]`)} ${text}\n`;
}
