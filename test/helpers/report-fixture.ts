// Reports for unit tests: a host's result, the options a command records, and a report built from
// them as the CLI builds it. One fixture, so that a change to the report's shape is made here once.
import { buildReport } from "../../src/report/build-report.js";
import type { ReportOptions } from "../../src/report/report-options.js";
import {
  reportSchema,
  type HostResult,
  type JobResult,
  type RepoResult,
  type Report,
} from "../../src/report/report-schema.js";

/** The options a command records when given none but --inventory (their order is the JSON's). */
export const DEFAULT_OPTIONS: ReportOptions = {
  inventory: "inventory.toml",
  limit: null,
  forks: 10,
  category: [],
  name: [],
  dry_run: false,
  max_age_s: null,
  serial: null,
  max_fail_percent: null,
  splay_s: null,
  shard: null,
};

/** A host with this status and nothing else to report (no facts, checks, warnings or jobs). */
export const hostResult = (
  name: string,
  status: HostResult["status"],
  extra: Partial<HostResult> = {},
): HostResult => ({
  name,
  address: `${name}.example`,
  status,
  error: null,
  duration_ms: 12,
  facts: null,
  checks: [],
  warnings: [],
  jobs: [],
  ...extra,
});

/** A job's result with nothing in it yet (an lv_nonroot job "data" unless `extra` says otherwise). */
export const jobResult = (extra: Partial<JobResult> = {}): JobResult => ({
  name: "data",
  category: "lv_nonroot",
  status: "ok",
  snapshot: null,
  repos: [],
  copies: [],
  prunes: [],
  latest: [],
  ...extra,
});

/** A successful backup into the repository at `path`, with small made-up numbers. */
export const repoResult = (path: string, extra: Partial<RepoResult> = {}): RepoResult => ({
  repo: path,
  status: "ok",
  snapshot_id: "1a2b3c4d",
  files_new: 3,
  files_changed: 1,
  files_unmodified: 10,
  data_added: 2048,
  data_added_packed: null,
  duration_ms: 900,
  error: null,
  error_code: null,
  ...extra,
});

export interface ReportRun {
  dryRun?: boolean;
  interrupted?: boolean;
}

/** What buildReport is given for a run of `command` over `hosts` that took 1.5 s. */
export function reportInput(
  command: string,
  hosts: HostResult[],
  run: ReportRun = {},
): Parameters<typeof buildReport>[0] {
  return {
    runId: "20260101T000000Z-abc123",
    command,
    options: { ...DEFAULT_OPTIONS, dry_run: run.dryRun ?? false },
    startedAt: new Date(0),
    finishedAt: new Date(1500),
    hosts,
    repositories: [],
    interrupted: run.interrupted ?? false,
  };
}

/** A report as the CLI builds it, read back through the report schema so that drift fails the test. */
export function report(command: string, hosts: HostResult[], run: ReportRun = {}): Report {
  return reportSchema.parse(buildReport(reportInput(command, hosts, run)));
}
