// What every command that connects shares: plan, run with progress and Ctrl-C, write the report,
// render, and return the report's exit code.
import { renameSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseDuration } from "../duration.js";
import { UsageError } from "../errors.js";
import { buildPlan } from "../plan/build-plan.js";
import { runFleet, type FleetRunRequest } from "../run/run-fleet.js";
import type { CliIo } from "./io.js";
import { splitList, type CommonOptions } from "./main.js";
import { renderProgress } from "./render/progress.js";
import { renderReportMarkdown } from "./render/markdown.js";
import { renderReportTable } from "./render/report-table.js";
import type { Style } from "./render/style.js";

export interface FleetCommandOptions extends CommonOptions {
  forks: string;
  report?: string;
  quiet?: boolean;
  verbose?: boolean;
  dryRun?: boolean;
  maxAge?: string;
  category?: string[];
  name?: string[];
}

export async function runFleetCommand(
  command: FleetRunRequest["command"],
  options: FleetCommandOptions,
  io: CliIo,
  style: { out: Style; err: Style },
): Promise<number> {
  if (!/^[1-9]\d*$/.test(options.forks)) {
    throw new UsageError(`--forks must be a whole number of at least 1, got "${options.forks}"`);
  }
  const maxAgeS = options.maxAge === undefined ? null : parseDuration(options.maxAge);
  if (maxAgeS === undefined) {
    throw new UsageError(`--max-age must be a duration such as 26h, 7d or 90m, got "${options.maxAge}"`);
  }
  const plan = buildPlan(resolve(io.cwd, options.inventory), {
    limit: options.limit,
    categories: splitList(options.category),
    names: splitList(options.name),
  });
  const controller = new AbortController();
  const onSignal = () => {
    io.stderr("\nrlvm-fleet: interrupted; stopping every host's agent (they clean up) ...\n");
    controller.abort();
  };
  const removeSignalHandlers = io.onInterrupt(onSignal);
  try {
    const report = await runFleet({
      command,
      dryRun: options.dryRun === true,
      maxAgeS,
      plan,
      forks: Number(options.forks),
      options: {
        inventory: options.inventory,
        limit: options.limit ?? null,
        forks: Number(options.forks),
        category: splitList(options.category),
        name: splitList(options.name),
        dry_run: options.dryRun === true,
        max_age_s: maxAgeS,
      },
      agentSocket: io.env["SSH_AUTH_SOCK"] ?? null,
      signal: controller.signal,
      onProgress: (event) => {
        if (options.quiet === true || (event.step === "log" && options.verbose !== true)) return;
        io.stderr(renderProgress(event, { tty: io.stderrIsTty, now: new Date(), style: style.err }));
      },
    });
    if (options.report !== undefined)
      writeAtomically(resolve(io.cwd, options.report), `${JSON.stringify(report, null, 2)}\n`);
    io.stdout(
      options.format === "json"
        ? `${JSON.stringify(report, null, 2)}\n`
        : options.format === "markdown"
          ? renderReportMarkdown(report)
          : renderReportTable(report, style.out),
    );
    return report.exit_code;
  } finally {
    removeSignalHandlers();
  }
}

function writeAtomically(path: string, text: string): void {
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, text, { mode: 0o600 });
  renameSync(temporary, path);
}
