// What a command may touch of the outside world; tests pass their own.
import { readFileSync } from "node:fs";

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Record<string, string | undefined>;
  stdoutIsTty: boolean;
  stderrIsTty: boolean;
  cwd: string;
  /** stderr's terminal size, when it is a terminal (the live view fits it). */
  stderrSize?: () => { columns: number; rows: number };
  /** Call `handler` when stderr's terminal is resized (SIGWINCH), until the returned function removes it. */
  onStderrResize?: (handler: () => void) => () => void;
  /** Call `handler` on SIGINT/SIGTERM until the returned function removes it. */
  onInterrupt: (handler: () => void) => () => void;
  /** The process's open-files limit (soft, which Node raises to the hard one), when known; read when asked. */
  openFilesLimit?: () => number | undefined;
}

/** The soft "Max open files" of a /proc/PID/limits text, or undefined (unlimited, or not there). */
export function parseOpenFilesLimit(text: string): number | undefined {
  const soft = /^Max open files\s+(\d+)\s/m.exec(text)?.[1];
  return soft === undefined ? undefined : Number(soft);
}

function readOpenFilesLimit(): number | undefined {
  try {
    return parseOpenFilesLimit(readFileSync("/proc/self/limits", "utf8"));
  } catch {
    return undefined;
  }
}

/**
 * A write to a stream that failed (EPIPE: `rlvm-fleet status | head` after head exits) stops further
 * writes to it, instead of an uncaught error with a stack trace; the command itself goes on (a backup
 * must not stop because its reader left) and exits as it would have.
 */
function writerTo(stream: NodeJS.WriteStream): (text: string) => void {
  let broken = false;
  stream.on("error", () => {
    broken = true;
  });
  return (text) => {
    if (!broken) stream.write(text);
  };
}

export function processIo(): CliIo {
  return {
    stdout: writerTo(process.stdout),
    stderr: writerTo(process.stderr),
    env: process.env,
    stdoutIsTty: process.stdout.isTTY === true,
    stderrIsTty: process.stderr.isTTY === true,
    cwd: process.cwd(),
    openFilesLimit: readOpenFilesLimit,
    stderrSize: () => ({ columns: process.stderr.columns || 80, rows: process.stderr.rows || 24 }),
    onStderrResize: (handler) => {
      process.stderr.on("resize", handler);
      return () => process.stderr.off("resize", handler);
    },
    onInterrupt: (handler) => {
      process.on("SIGINT", handler);
      process.on("SIGTERM", handler);
      return () => {
        process.off("SIGINT", handler);
        process.off("SIGTERM", handler);
      };
    },
  };
}
