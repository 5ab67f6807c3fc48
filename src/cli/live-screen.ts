// The live fleet view drawn in place on stderr (a terminal): finished hosts and log lines are printed
// once above; the running hosts and the overall line below them are erased and redrawn on each
// event, every second (elapsed times), and on resize.
//
// No library: log-update (the usual choice) would need the raw stream, bypassing CliIo's writer and
// its broken-pipe guard, and brings five packages for what is three escape sequences here. It wraps
// long lines, where this view cuts every line to the width itself (render/live-view.ts fit), so the
// number of rows to erase is always known.
import type { ProgressEvent } from "../report/progress-event.js";
import {
  applyLiveEvent,
  finishedLine,
  fit,
  initialLiveState,
  liveLines,
  textColumns,
  type LiveState,
} from "./render/live-view.js";
import type { Style } from "./render/style.js";
import { terminalText } from "./render/terminal-text.js";

export interface LiveScreenIo {
  write: (text: string) => void;
  size: () => { columns: number; rows: number };
  /** Call `handler` when the terminal is resized, until the returned function removes it. */
  onResize: (handler: () => void) => () => void;
  now: () => number;
}

const HIDE_CURSOR = "\u001b[?25l";
const SHOW_CURSOR = "\u001b[?25h";
const CLEAR_LINE = "\u001b[2K";
// eslint-disable-next-line no-control-regex
const SGR = /\u001b\[[0-9;]*m/g;

export class LiveScreen {
  private state: LiveState;
  /** The columns of each line drawn last, to count the rows they take after a resize. */
  private drawn: number[] = [];
  private active = true;
  private readonly timer: ReturnType<typeof setInterval>;
  private readonly removeResize: () => void;

  constructor(
    total: number,
    private readonly io: LiveScreenIo,
    private readonly style: Style,
  ) {
    this.state = initialLiveState(total, io.now());
    this.io.write(HIDE_CURSOR);
    this.draw("");
    this.timer = setInterval(() => this.draw(""), 1000);
    this.timer.unref();
    this.removeResize = io.onResize(() => this.draw(""));
  }

  get running(): boolean {
    return this.active;
  }

  onEvent(event: ProgressEvent, verbose: boolean): void {
    if (!this.active) return;
    const width = this.io.size().columns;
    const next = applyLiveEvent(this.state, event, this.io.now());
    this.state = next.state;
    // restic's status is drawn by the next second's redraw: an agent sending more than it should
    // cannot make the terminal redraw faster than that.
    if (event.step === "progress") return;
    let above = "";
    if (next.finished !== null) above = `${finishedLine(next.finished, width, this.style)}\n`;
    else if (next.note !== null) above = `${this.style.dim(fit(terminalText(next.note), width))}\n`;
    else if (event.step === "log" && verbose)
      above = `${this.style.dim(fit(terminalText(`[${event.host}] ${event.detail ?? ""}`), width))}\n`;
    this.draw(above);
  }

  /** Erase the live lines and show the cursor: what follows prints on a clean screen. */
  stop(): void {
    if (!this.active) return;
    this.active = false;
    clearInterval(this.timer);
    this.removeResize();
    this.io.write(`${this.erase()}${SHOW_CURSOR}`);
  }

  /** One write: erase what was drawn, print `above` for good, draw the live lines again. */
  private draw(above: string): void {
    if (!this.active) return;
    const { columns, rows } = this.io.size();
    const lines = liveLines(this.state, { width: columns, height: rows }, this.io.now(), this.style);
    const erase = this.erase();
    this.drawn = lines.map((line) => textColumns(line.replace(SGR, "")));
    this.io.write(`${erase}${above}${lines.map((line) => `${line}\n`).join("")}`);
  }

  /**
   * Back to the first live line, its rows cleared one by one (a line wider than the terminal now, as
   * it shrank, takes more rows). Not "erase below": tmux (scroll-on-clear) and some terminals push a
   * screen erased from its top-left corner into the scrollback, which would keep every redraw there.
   */
  private erase(): string {
    const width = Math.max(this.io.size().columns, 1);
    const rows = this.drawn.reduce((sum, columns) => sum + Math.max(Math.ceil(columns / width), 1), 0);
    this.drawn = [];
    return rows === 0 ? "" : `\r\u001b[${rows}A${`${CLEAR_LINE}\u001b[1B`.repeat(rows)}\u001b[${rows}A`;
  }
}
