// Per-host results → one report, with its summary and exit code.
import { EXIT_CODES, worstExit, type ExitKind } from "../errors.js";
import { VERSION } from "../version.js";
import { groupRepositories, type RepositoryPrune, type RepositoryUse } from "./repositories.js";
import { REPORT_SCHEMA, type HostResult, type HostStatus, type Report } from "./report-schema.js";

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
  /** prune: the repositories' prunes (phase 2), run or, in a dry run, planned. */
  prunes?: readonly RepositoryPrune[];
  interrupted: boolean;
}): Report {
  const count = (status: HostStatus) => input.hosts.filter((h) => h.status === status).length;
  const kinds = input.hosts.map((h) => EXIT_OF_STATUS[h.status]);
  if (input.interrupted) kinds.push("interrupted");
  if (input.hosts.some((h) => h.error?.code === "max_fail")) kinds.push("stopped");
  return {
    schema: REPORT_SCHEMA,
    run_id: input.runId,
    command: input.command,
    options: input.options,
    started_at: input.startedAt.toISOString(),
    finished_at: input.finishedAt.toISOString(),
    controller_version: VERSION,
    exit_code: EXIT_CODES[worstExit(kinds)].code,
    summary: {
      hosts: input.hosts.length,
      ok: count("ok"),
      partial: count("partial"),
      failed: count("failed"),
      unreachable: count("unreachable"),
      skipped: count("skipped"),
    },
    hosts: input.hosts,
    repositories: groupRepositories(
      input.repositories,
      input.command === "prune" ? { prunes: input.prunes ?? [] } : null,
    ),
  };
}
