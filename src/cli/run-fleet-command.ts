// What every command that connects shares: plan, run with progress and Ctrl-C, write the report,
// render, and return the report's exit code.
import { randomBytes } from "node:crypto";
import {
  closeSync,
  fchmodSync,
  lstatSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, resolve } from "node:path";
import { EXIT_CODES, UsageError } from "../errors.js";
import { parsePingUrl, startPing } from "../notify/healthchecks-ping.js";
import { buildPlan, type FleetPlan } from "../plan/build-plan.js";
import type { ReportOptions } from "../report/report-options.js";
import type { Report } from "../report/report-schema.js";
import { runFleet, type FleetRunRequest } from "../run/run-fleet.js";
import { forksWithinOpenFiles } from "../run/schedule-hosts.js";
import type { CliIo } from "./io.js";
import { LiveScreen } from "./live-screen.js";
import type { FleetOptions } from "./options.js";
import { renderReportJunit } from "./render/junit.js";
import { renderReportMarkdown } from "./render/markdown.js";
import { renderReportMetrics } from "./render/metrics.js";
import { renderProblems } from "./render/problems.js";
import { plainProgressDue } from "./render/live-view.js";
import { renderProgress } from "./render/progress.js";
import { renderReportTable } from "./render/report-table.js";
import { makeStyle, type Style } from "./render/style.js";

export interface FleetStyles {
  out: Style;
  err: Style;
}

/**
 * Runs `command` as `options` say: the report records them as they are, and the run reads its
 * inventory, selection, forks, dry run and max age from the same fields.
 */
type FleetOutput = Pick<
  FleetOptions,
  | "format"
  | "report"
  | "junit"
  | "metrics"
  | "quiet"
  | "verbose"
  | "pingUrl"
  | "inventoryFormat"
  | "retryFile"
>;
interface FleetExtra {
  install?: FleetRunRequest["install"];
  verify?: FleetRunRequest["verify"];
  verifySample?: FleetRunRequest["verifySample"];
  /** Refuses a plan this command cannot run (throws a UsageError), before anything connects. */
  refuse?: (plan: FleetPlan) => void;
}

export async function runFleetCommand(
  command: FleetRunRequest["command"],
  options: ReportOptions,
  output: FleetOutput,
  io: CliIo,
  style: FleetStyles,
  extra: FleetExtra = {},
): Promise<number> {
  if (output.pingUrl === undefined)
    return (await runAndRender(command, options, output, io, style, extra)).exit_code;
  const ping = startPing(parsePingUrl(output.pingUrl), (message) =>
    io.stderr(`rlvm-fleet: warning: ${message} (the run and its exit code are not affected)\n`),
  );
  let report: Report;
  try {
    report = await runAndRender(command, options, output, io, style, extra);
  } catch (error) {
    // A run that could not start is a failed run for the monitor too (exit 2, or 1 for a bug).
    const plain = makeStyle(false);
    await ping.finish(
      error instanceof UsageError ? EXIT_CODES.usage.code : EXIT_CODES.failed.code,
      error instanceof UsageError
        ? renderProblems(error.message, error.problems, error.hint, plain, io.cwd)
        : `rlvm-fleet: internal error: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    throw error;
  }
  // The summary the table format prints, without colours: the report is already masked.
  await ping.finish(report.exit_code, renderReportTable(report, makeStyle(false)));
  return report.exit_code;
}

async function runAndRender(
  command: FleetRunRequest["command"],
  options: ReportOptions,
  output: FleetOutput,
  io: CliIo,
  style: FleetStyles,
  extra: FleetExtra,
): Promise<Report> {
  const plan = buildPlan(resolve(io.cwd, options.inventory), {
    inventoryFormat: output.inventoryFormat,
    env: io.env,
    limit: options.limit ?? undefined,
    categories: options.category,
    names: options.name,
    cwd: io.cwd,
    shard: options.shard,
  });
  extra.refuse?.(plan);
  for (const warning of plan.warnings ?? []) io.stderr(`rlvm-fleet: warning: ${warning.message}\n`);
  // A run of hours must not end in an output that cannot be written: its directory is checked first.
  checkOutputDirectories(output, io);
  const live = startLiveScreen(plan.hosts.length, output, io, style);
  const controller = new AbortController();
  const onSignal = () => {
    // A clean screen first; the hosts' ends that follow print as plain lines.
    live?.stop();
    io.stderr("\nrlvm-fleet: interrupted; stopping every host's agent (they clean up) ...\n");
    controller.abort();
  };
  const lastPlainProgress = new Map<string, number>();
  const openFiles = io.openFilesLimit?.();
  const forks = forksWithinOpenFiles(options.forks, openFiles);
  if (forks < Math.min(options.forks, plan.hosts.length)) {
    io.stderr(
      `rlvm-fleet: warning: the open-files limit (${openFiles}) leaves room for ${forks} hosts at once, not --forks ${options.forks}: running ${forks} at a time (raise it with \`ulimit -n\`, up to \`ulimit -Hn\`)\n`,
    );
  }
  const removeSignalHandlers = io.onInterrupt(onSignal);
  try {
    const report = await runFleet({
      command,
      dryRun: options.dry_run,
      maxAgeS: options.max_age_s,
      plan,
      forks,
      schedule: {
        serial: options.serial,
        maxFailPercent: options.max_fail_percent,
        splayMs: (options.splay_s ?? 0) * 1000,
      },
      ...(extra.install === undefined ? {} : { install: extra.install }),
      ...(extra.verify === undefined ? {} : { verify: extra.verify }),
      ...(extra.verifySample === undefined ? {} : { verifySample: extra.verifySample }),
      options,
      agentSocket: io.env["SSH_AUTH_SOCK"] ?? null,
      signal: controller.signal,
      onProgress: (event) => {
        if (output.quiet === true) return;
        if (live?.running === true) return live.onEvent(event, output.verbose === true);
        if (event.step === "log" && output.verbose !== true) return;
        const now = new Date();
        if (event.step === "progress") {
          if (!plainProgressDue(lastPlainProgress.get(event.host), now.getTime(), PLAIN_PROGRESS_INTERVAL_MS))
            return;
          lastPlainProgress.set(event.host, now.getTime());
        }
        io.stderr(renderProgress(event, { tty: io.stderrIsTty, now, style: style.err }));
      },
    });
    live?.stop();
    writeReportOutputs(report, output, io, style);
    return report;
  } finally {
    live?.stop();
    removeSignalHandlers();
  }
}

/** Plain progress (stderr not a terminal): restic's percent per running host at most this often. */
const PLAIN_PROGRESS_INTERVAL_MS = 30_000;

/**
 * The live view, when stderr is a terminal that can draw it (not TERM=dumb) and progress is wanted
 * (not --quiet); null otherwise, and the run prints plain lines.
 */
function startLiveScreen(
  total: number,
  output: FleetOutput,
  io: CliIo,
  style: FleetStyles,
): LiveScreen | null {
  if (output.quiet === true || !io.stderrIsTty || io.env["TERM"] === "dumb") return null;
  const size = io.stderrSize;
  const onResize = io.onStderrResize;
  if (size === undefined || onResize === undefined) return null;
  return new LiveScreen(total, { write: io.stderr, size, onResize, now: () => Date.now() }, style.err);
}

/** The hosts to run again, as `--limit @FILE` reads them: those that did not end ok or partial. */
function retryList(report: Report): string {
  return report.hosts
    .filter((host) => host.status !== "ok" && host.status !== "partial")
    .map((host) => `${host.name}\n`)
    .join("");
}

/** The report's files (--report, --junit, --metrics), then stdout in its --format. */
export function writeReportOutputs(
  report: Report,
  output: Pick<FleetOutput, "format" | "report" | "junit" | "metrics" | "retryFile">,
  io: CliIo,
  style: FleetStyles,
): void {
  if (output.report !== undefined)
    writeAtomically(resolve(io.cwd, output.report), `${JSON.stringify(report, null, 2)}\n`);
  // Names only, and read by whoever reruns (a CI step, cron): world-readable like the metrics.
  if (output.retryFile !== undefined)
    writeAtomically(resolve(io.cwd, output.retryFile), retryList(report), undefined, 0o644);
  if (output.junit !== undefined) writeAtomically(resolve(io.cwd, output.junit), renderReportJunit(report));
  if (output.metrics !== undefined) {
    const path = resolve(io.cwd, output.metrics);
    // World-readable: node_exporter reads it as its own user; it holds masked repository labels only.
    writeAtomically(path, renderReportMetrics(report, readPrevious(path)), undefined, 0o644);
  }
  io.stdout(
    output.format === "json"
      ? `${JSON.stringify(report, null, 2)}\n`
      : output.format === "markdown"
        ? renderReportMarkdown(report)
        : renderReportTable(report, style.out),
  );
}

/** Refuses (UsageError) a --report, --junit or --metrics file whose directory does not exist. */
export function checkOutputDirectories(
  output: Pick<FleetOutput, "report" | "junit" | "metrics" | "retryFile">,
  io: CliIo,
): void {
  for (const [option, file] of [
    ["--report", output.report],
    ["--junit", output.junit],
    ["--metrics", output.metrics],
    ["--retry-file", output.retryFile],
  ] as const) {
    if (file !== undefined && !isDirectory(dirname(resolve(io.cwd, file))))
      throw new UsageError(
        `${option} ${file}: the directory ${dirname(resolve(io.cwd, file))} does not exist`,
      );
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The file a new one replaces, or "" when there is none yet or it is not a regular file (a FIFO or
 * a symlink planted there is never read).
 */
function readPrevious(path: string): string {
  try {
    return lstatSync(path).isFile() ? readFileSync(path, "utf8") : "";
  } catch {
    return "";
  }
}

/**
 * Write `text` to `path` through a temporary file beside it, renamed over it. The temporary name is
 * unique and created exclusively (`wx`): a file or symlink already there (planted in a shared
 * directory) is never followed or overwritten; the write fails instead. `mode` is set exactly.
 */
export function writeAtomically(
  path: string,
  text: string,
  uniqueSuffix: () => string = () => `${process.pid}-${randomBytes(8).toString("hex")}`,
  mode = 0o600,
): void {
  const temporary = `${path}.tmp-${uniqueSuffix()}`;
  const fd = openSync(temporary, "wx", mode);
  try {
    try {
      fchmodSync(fd, mode); // the mode as asked, whatever the umask (node_exporter must read metrics)
      writeFileSync(fd, text);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}
