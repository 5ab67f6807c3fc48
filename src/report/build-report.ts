// Per-host results → one report, with its summary and exit code.
import { EXIT_CODES, worstExit, type ExitKind } from "../errors.js";
import { VERSION } from "../version.js";
import { groupRepositories, type RepositoryPrune, type RepositoryUse } from "./repositories.js";
import {
  REPORT_SCHEMA,
  type HostResult,
  type HostStatus,
  type Report,
  type ReportWarning,
} from "./report-schema.js";

const EXIT_OF_STATUS: Record<HostStatus, ExitKind> = {
  ok: "ok",
  partial: "partial",
  failed: "failed",
  unreachable: "unreachable",
  // A host that never started only counts through the interruption that caused it.
  skipped: "ok",
};

export function buildReport(input: {
  runId: string;
  command: string;
  options: Report["options"];
  startedAt: Date;
  finishedAt: Date;
  hosts: HostResult[];
  /** Every host's repositories and copy destinations, with the ids its agent read. */
  repositories: RepositoryUse[];
  /** prune: the repositories' prunes (phase 2); verify: their checks; run or, in a dry run, planned. */
  prunes?: readonly RepositoryPrune[];
  interrupted: boolean;
  /** Why the run is not what it seems (an empty shard); none by default. */
  warnings?: readonly ReportWarning[];
}): Report {
  return {
    schema: REPORT_SCHEMA,
    run_id: input.runId,
    command: input.command,
    options: input.options,
    started_at: input.startedAt.toISOString(),
    finished_at: input.finishedAt.toISOString(),
    controller_version: VERSION,
    exit_code: reportExitCode(input.hosts, input.interrupted),
    summary: reportSummary(input.hosts),
    hosts: input.hosts,
    repositories: groupRepositories(
      input.repositories,
      input.command === "prune"
        ? { prunes: input.prunes ?? [] }
        : input.command === "verify"
          ? { prunes: input.prunes ?? [], forgets: false }
          : null,
    ),
    warnings: [...(input.warnings ?? [])],
  };
}

/** The exit code of a run with these host results (`report merge` recomputes it the same way). */
export function reportExitCode(hosts: readonly HostResult[], interrupted: boolean): number {
  const kinds = hosts.map((h) => EXIT_OF_STATUS[h.status]);
  if (interrupted) kinds.push("interrupted");
  if (hosts.some((h) => h.error?.code === "max_fail")) kinds.push("stopped");
  return EXIT_CODES[worstExit(kinds)].code;
}

export function reportSummary(hosts: readonly HostResult[]): Report["summary"] {
  const count = (status: HostStatus) => hosts.filter((h) => h.status === status).length;
  return {
    hosts: hosts.length,
    ok: count("ok"),
    partial: count("partial"),
    failed: count("failed"),
    unreachable: count("unreachable"),
    skipped: count("skipped"),
  };
}
