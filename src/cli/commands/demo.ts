// `demo`: a local fleet of loopback hosts, and the CLI's own commands run against it.
import { resolve } from "node:path";
import { runDemo } from "../../demo/run-demo.js";
import type { CliIo } from "../io.js";

export interface DemoOptions {
  dir: string;
  color: boolean;
}

/** `run` is the CLI itself, passed in so that this module need not import main.ts. */
export function demoCommand(
  options: DemoOptions,
  io: CliIo,
  run: (args: string[]) => Promise<number>,
): Promise<number> {
  return runDemo({
    dir: resolve(io.cwd, options.dir),
    cwd: io.cwd,
    env: io.env,
    run: (args) => run(options.color ? args : [...args, "--no-color"]),
    say: io.stdout,
    onInterrupt: io.onInterrupt,
  });
}
