import { spawn } from "node:child_process";

export interface CommandResult {
  /** Exit code; null when the process was killed by a signal (including the timeout). */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

export interface RunCommandOptions {
  /** Written to stdin, which is then closed. Without it stdin is /dev/null. */
  readonly input?: string;
  readonly timeoutMs?: number;
  readonly env?: NodeJS.ProcessEnv;
}

/** Runs a program without a shell and collects its output. Never rejects because of the exit status. */
export function runCommand(file: string, args: readonly string[], options: RunCommandOptions = {}) {
  return new Promise<CommandResult>((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      env: options.env ?? process.env,
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill("SIGKILL");
          }, options.timeoutMs);
    child.stdout?.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk));
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(stdout).toString("utf8"),
        stderr: Buffer.concat(stderr).toString("utf8"),
        timedOut,
      });
    });
    if (options.input !== undefined) {
      // The child may exit without reading its input (e.g. ssh failing to connect).
      child.stdin?.on("error", () => {});
      child.stdin?.end(options.input);
    }
  });
}

export async function runCommandOrThrow(
  file: string,
  args: readonly string[],
  options: RunCommandOptions = {},
): Promise<CommandResult> {
  const result = await runCommand(file, args, options);
  if (result.code !== 0) {
    const status = result.timedOut ? "timed out" : `exited with ${result.code ?? result.signal}`;
    throw new Error(`${file} ${args.join(" ")} ${status}: ${result.stderr.trim() || result.stdout.trim()}`);
  }
  return result;
}
