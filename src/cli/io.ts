// What a command may touch of the outside world; tests pass their own.

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
