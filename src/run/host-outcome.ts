// The one place that decides job and host status. The agent reports what happened (restic's exit
// codes and summaries, snapshot facts, warnings, the failure it stopped on); this pure module turns
// those facts into each job's status, the host's status and error, and the warnings they imply.
// DESIGN §2: ok; partial (restic exit 3, a copy failed while every backup succeeded, COW use above the
// warning level, a leftover removed, a warning from the host); failed (anything after SSH answered).
import type { AgentCommand } from "../agent/plan-lines.js";
import { AGENT_ERROR_CODES, type ResultEvent } from "../agent/protocol.js";
import { HostError } from "../errors.js";
import type { Check, HostResult, JobResult, PruneResult, RunStatus } from "../report/report-schema.js";
import { hintForAgentFailure, hintForResticFailures } from "./hints.js";

export type Warning = HostResult["warnings"][number];

/** Warnings that are advice, not a problem of the run: they do not make a host partial. */
export const ADVISORY_WARNINGS = new Set([
  "host_key_added",
  "known_hosts_line_ignored",
  "agent_noise",
  "connection_destroyed",
  "restic_untested",
  "sudo_broad",
]);

export interface JobsInput {
  command: AgentCommand;
  /** The jobs as the events filled them in; their own status is still the initial one. */
  jobs: readonly JobResult[];
  /** The status a job has before the agent reports on it ("planned" in a dry run). */
  initial: RunStatus;
  /** COW use (percent) from which a snapshot gets a warning. */
  cowWarnPercent: number;
  /** The agent reported a result without a failure code: it got to the end of its command. */
  finished: boolean;
}

export interface HostOutcomeInput extends Omit<JobsInput, "finished"> {
  agentResult: ResultEvent;
  checks: readonly Check[];
  /** What the host warned about (warning and orphan_removed events): each makes a finished run partial. */
  hostWarnings: readonly Warning[];
  /** verify: the repository checks this host ran that failed (restic's reasons); they fail the host. */
  failedChecks?: readonly string[];
}

export interface JobsOutcome {
  /** Each job's status, in the order of `jobs`. */
  jobStatuses: RunStatus[];
  /** Warnings the facts imply (high COW use, an overflow, a job's reason for failing). */
  warnings: Warning[];
}

export interface HostOutcome extends JobsOutcome {
  status: "ok" | "partial" | "failed";
  error: HostError | null;
}

/** Each job's status from its repositories, copies, prunes or reads; also for a run cut short. */
export function decideJobs(input: JobsInput): JobsOutcome {
  const warnings: Warning[] = [];
  const jobStatuses = input.jobs.map((job) => decideJob(job, input, warnings));
  return { jobStatuses, warnings };
}

export interface CutShortOutcome extends JobsOutcome {
  error: HostError;
  status: HostError["status"];
}

/**
 * A run cut short (run_timeout, an interrupt, a lost connection, a protocol error): the jobs are still
 * decided from what arrived, and the host has the error that cut it short, with that error's status.
 */
export function decideCutShort(input: Omit<JobsInput, "finished">, error: HostError): CutShortOutcome {
  return { ...decideJobs({ ...input, finished: false }), error, status: error.status };
}

export function decideHostOutcome(input: HostOutcomeInput): HostOutcome {
  const { jobStatuses, warnings } = decideJobs({ ...input, finished: input.agentResult.code === null });
  const failedJobs = input.jobs.filter((_, i) => jobStatuses[i] === "failed");
  const result = (status: HostOutcome["status"], error: HostError | null = null): HostOutcome => ({
    status,
    error,
    jobStatuses,
    warnings,
  });

  const { agentResult } = input;
  // The parser admits only the contract's codes; a lookup keyed by host data still checks own keys.
  if (agentResult.code !== null && !Object.hasOwn(AGENT_ERROR_CODES, agentResult.code)) {
    return result(
      "failed",
      new HostError(
        "agent_protocol",
        `the agent ended with an unknown code ${JSON.stringify(agentResult.code)}`,
        AGENT_ERROR_CODES.agent_protocol.hint,
      ),
    );
  }
  if (agentResult.code !== null) {
    return result(
      "failed",
      new HostError(
        agentResult.code,
        agentResult.message,
        hintForAgentFailure(agentResult.code, input.checks),
        false,
        AGENT_ERROR_CODES[agentResult.code].status,
      ),
    );
  }
  const failedChecks = input.checks.filter((c) => !c.ok);
  if (failedChecks.length > 0) {
    return result(
      "failed",
      new HostError(
        "preflight",
        `${failedChecks.length} of ${input.checks.length} checks failed: ${failedChecks.map((c) => c.name).join(", ")}`,
        hintForAgentFailure("preflight", input.checks),
      ),
    );
  }
  const checkFailures = input.failedChecks ?? [];
  if (checkFailures.length > 0 || (failedJobs.length > 0 && input.command === "verify")) {
    const drills = failedJobs.map((job) => `job ${job.name}: ${job.restore?.error ?? "failed"}`);
    return result(
      "failed",
      new HostError(
        "verify_failed",
        [
          ...checkFailures.map((reason) => `restic check of ${reason}`),
          ...drills.map((drill) => `restore drill of ${drill}`),
        ].join("; "),
        "a failed check means damaged data in the repository: see restic's reason, run `restic check --read-data` there and repair it (restic repair); a mismatch means restored bytes differ from an unchanged live file",
      ),
    );
  }
  if (failedJobs.length > 0) {
    return result("failed", jobFailure(input, failedJobs));
  }
  const copyFailed = input.jobs.some((job) => job.copies.some((c) => c.status === "failed"));
  const partial =
    jobStatuses.includes("partial") || copyFailed || input.hostWarnings.length > 0 || warnings.length > 0;
  return result(partial ? "partial" : "ok");
}

function decideJob(job: JobResult, input: JobsInput, warnings: Warning[]): RunStatus {
  const cow = job.snapshot?.cow_peak_percent ?? null;
  if (job.snapshot !== null && !job.snapshot.overflowed && cow !== null && cow >= input.cowWarnPercent) {
    warnings.push({
      code: "cow_high",
      message: `snapshot ${job.snapshot.name} reached ${cow}% of its COW space (warning level ${input.cowWarnPercent}%): raise snapshot_size for job ${job.name}`,
    });
  }
  switch (input.command) {
    case "backup":
      return decideBackupJob(job, input.initial, warnings);
    case "prune":
      return decideEntries(job.prunes, input.initial);
    case "verify":
      // The drill's status; a job without one (--restore-sample 0, phase 2) stays as it was.
      return job.restore === undefined || job.restore.status === input.initial
        ? input.initial
        : job.restore.status;
    case "status":
      for (const l of job.latest)
        if (l.time !== null && l.age_s === null)
          warnings.push({
            code: "snapshot_time_invalid",
            message: `job ${job.name} in ${l.repo}: the latest snapshot's time ${JSON.stringify(l.time)} is not a valid time in the past; it does not count as fresh`,
          });
      if (job.latest.some((l) => l.error !== null || l.stale)) return "failed";
      // An agent that stopped before reading leaves the job as it was.
      if (job.latest.length === 0 || (!input.finished && job.latest.every((l) => l.time === null)))
        return input.initial;
      return "ok";
    default:
      return input.initial;
  }
}

function decideBackupJob(job: JobResult, initial: RunStatus, warnings: Warning[]): RunStatus {
  if (job.repos.length === 0 || job.repos.every((r) => r.status === initial)) return initial;
  const failed = job.repos.filter((r) => r.status === "failed").length;
  if (job.snapshot?.overflowed === true) {
    if (failed > 0) {
      warnings.push({
        code: "job_failed",
        message: `job ${job.name}: the snapshot overflowed (LVM invalidated it) while restic read it: raise snapshot_size for this job`,
      });
      return "failed";
    }
    warnings.push({
      code: "snapshot_overflow",
      message: `job ${job.name}: the snapshot overflowed after restic had read it (the backups are complete): raise snapshot_size for this job`,
    });
    return "partial";
  }
  if (failed > 0) {
    warnings.push({
      code: "job_failed",
      message: `job ${job.name}: ${failed} of ${job.repos.length} repositories failed`,
    });
    return "failed";
  }
  if (job.repos.some((r) => r.status === initial)) return "failed"; // the agent stopped mid-job
  // --verify-sample: the backup is written, but what it restores is not what was read (or no sample ran).
  if (job.restore !== undefined && job.restore.status !== "ok") return "failed";
  return job.repos.some((r) => r.status === "partial") ? "partial" : "ok";
}

/**
 * prune: failed when an entry failed; ok once every entry was processed (forgotten, or reported as
 * having no retention, which says so in its error); otherwise the job stays as it was.
 */
function decideEntries(entries: readonly PruneResult[], initial: RunStatus): RunStatus {
  if (entries.some((e) => e.status === "failed")) return "failed";
  const processed = (e: PruneResult) => e.status !== initial || e.error !== null;
  return entries.length > 0 && entries.every(processed) ? "ok" : initial;
}

function jobFailure(input: HostOutcomeInput, failedJobs: readonly JobResult[]): HostError {
  const of = `${failedJobs.length} of ${input.jobs.length}`;
  switch (input.command) {
    case "prune": {
      const steps = failedJobs.flatMap((job) => job.prunes.filter((p) => p.status === "failed"));
      return new HostError(
        "prune_failed",
        `${steps.length} forget or prune step(s) failed`,
        hintForResticFailures(steps.map((p) => p.error_code)) ??
          "see the failed repositories below; restic's own message says why",
      );
    }
    case "status": {
      const unreadable = input.jobs.flatMap((job) => job.latest.filter((l) => l.error !== null));
      if (unreadable.length === 0) {
        const stale = failedJobs.flatMap((job) =>
          job.latest.filter((l) => l.stale).map((l) => `${job.name} in ${l.repo}`),
        );
        return new HostError(
          "stale",
          `no snapshot newer than --max-age for ${stale.join(", ")}`,
          "run backup for this host (and find out why the last ones did not happen)",
        );
      }
      const total = input.jobs.reduce((n, job) => n + job.latest.length, 0);
      return new HostError(
        "repo_unreadable",
        `${unreadable.length} of ${total} repositories could not be read`,
        hintForResticFailures(unreadable.map((l) => l.error_code)) ??
          "check the repository and its password file with `rlvm-fleet check`",
      );
    }
    default: {
      // Every failed job backed up fine and failed its sample only (decideBackupJob's last check).
      const sampleOnly = (job: JobResult) =>
        job.restore !== undefined &&
        job.restore.status !== "ok" &&
        job.repos.every((r) => r.status !== "failed");
      if (failedJobs.every(sampleOnly))
        return new HostError(
          "verify_sample_failed",
          `${of} jobs' backups were written, but their verify sample failed: ${failedJobs.map((job) => `job ${job.name}: ${job.restore?.error ?? "the agent sent no sample"}`).join("; ")}`,
          "a mismatch means restic restored other bytes than it read from the snapshot: run `restic check --read-data` on that repository, and keep the previous snapshots until it passes",
        );
      return new HostError(
        "backup_failed",
        `${of} jobs failed`,
        hintForResticFailures(
          failedJobs.flatMap((job) =>
            job.repos.filter((r) => r.status === "failed").map((r) => r.error_code),
          ),
        ) ?? "see the failed repositories below; the other repositories and hosts were backed up",
      );
    }
  }
}
