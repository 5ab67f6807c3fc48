// Run the CLI in-process with captured output: the same main() the binary runs.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { main } from "../../src/cli/main.js";
import type { HostResult, Report } from "../../src/report/report-schema.js";

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runCli(
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  const code = await main(args, {
    stdout: (text) => void (stdout += text),
    stderr: (text) => void (stderr += text),
    env: { NO_COLOR: "1", ...options.env },
    stdoutIsTty: false,
    stderrIsTty: false,
    cwd: options.cwd ?? process.cwd(),
    onInterrupt: () => () => {},
  });
  return { code, stdout, stderr };
}

export interface JsonRun extends CliRun {
  report: Report;
  host: (name: string) => HostResult | undefined;
}

/** A fleet command with `--format json --quiet`, its report parsed (stdout must be the document). */
export async function runJson(command: string, inventory: string, ...args: string[]): Promise<JsonRun> {
  const result = await runCli([command, "--inventory", inventory, "--format", "json", "--quiet", ...args]);
  let report: Report;
  try {
    report = JSON.parse(result.stdout) as Report;
  } catch {
    throw new Error(`${command}: no JSON report (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
  }
  return { ...result, report, host: (name) => report.hosts.find((h) => h.name === name) };
}

/** A temp directory holding the given files (paths relative to it); removed by the returned cleanup. */
export function writeTree(files: Record<string, string>): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "rlvm-fleet-test-"));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
