// `promtool check metrics` for the metrics renderer's tests: a missing promtool skips locally, fails in CI.
import { spawnSync } from "node:child_process";
import { skipOrFail, type SkippableContext } from "./skip-or-fail.js";

/** `promtool check metrics` on `text`: its exit code and what it said (lint problems included). */
export function promtool(ctx: SkippableContext, text: string): { code: number | null; output: string } {
  const run = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  const missing = (run.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT";
  skipOrFail(
    ctx,
    "unit",
    missing ? "promtool is not installed (Debian: apt-get install prometheus)" : undefined,
  );
  return { code: run.status, output: `${run.stdout}${run.stderr}` };
}
