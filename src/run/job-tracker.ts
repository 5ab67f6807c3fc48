// A host's jobs in the report, filled in from the agent's events as they arrive.
import type { AgentEvent } from "../agent/protocol.js";
import type { AgentPlan } from "../agent/plan-lines.js";
import type { HostPlan } from "../plan/build-plan.js";
import type { CopyResult, JobResult, RepoResult, RunStatus } from "../report/report-schema.js";

export interface JobTracker {
  jobs: JobResult[];
  /** Apply one event; returns a warning for the host when the event is one. */
  apply(event: AgentEvent): { code: string; message: string } | null;
}

export function trackJobs(hostPlan: HostPlan, plan: AgentPlan, initial: RunStatus): JobTracker {
  const repoById = new Map<string, RepoResult>();
  const copyById = new Map<string, CopyResult>();
  const jobs: JobResult[] = hostPlan.jobs.map((job) => ({
    name: job.name,
    category: job.category,
    status: initial,
    snapshot: null,
    repos: [],
    copies: [],
  }));
  const jobByName = new Map(jobs.map((job) => [job.name, job]));
  for (const [id, repo] of plan.repos) {
    const result: RepoResult = {
      repo: repo.label,
      status: initial,
      snapshot_id: null,
      files_new: null,
      files_changed: null,
      files_unmodified: null,
      data_added: null,
      duration_ms: null,
      error: null,
    };
    repoById.set(id, result);
    jobByName.get(repo.job)?.repos.push(result);
  }
  for (const [id, copy] of plan.copies) {
    const result: CopyResult = {
      from: copy.from,
      to: copy.to,
      status: initial,
      duration_ms: null,
      error: null,
    };
    copyById.set(id, result);
    jobByName.get(copy.job)?.copies.push(result);
  }

  return {
    jobs,
    apply(event) {
      switch (event.event) {
        case "repo_done": {
          const repo = repoById.get(event.repo);
          if (repo === undefined) return null;
          Object.assign(repo, {
            status: event.exit_code === 0 ? "ok" : "partial",
            snapshot_id: event.summary.snapshot_id ?? null,
            files_new: event.summary.files_new,
            files_changed: event.summary.files_changed,
            files_unmodified: event.summary.files_unmodified,
            data_added: event.summary.data_added,
            duration_ms: event.duration_ms,
            error:
              event.exit_code === 0
                ? null
                : "restic could not read some files (exit 3); the snapshot is incomplete",
          });
          return null;
        }
        case "repo_failed": {
          const repo = repoById.get(event.repo);
          if (repo !== undefined) {
            Object.assign(repo, { status: "failed", duration_ms: event.duration_ms, error: event.message });
          }
          return null;
        }
        case "snapshot_created": {
          const job = jobByName.get(event.job);
          if (job !== undefined)
            job.snapshot = { name: event.snapshot, lifetime_ms: 0, cow_peak_percent: null };
          return null;
        }
        case "snapshot_removed": {
          const job = jobByName.get(event.job);
          if (job !== undefined) {
            job.snapshot = {
              name: event.snapshot,
              lifetime_ms: event.lifetime_ms,
              cow_peak_percent: event.cow_peak_percent,
            };
          }
          return null;
        }
        case "copy_done":
        case "copy_failed": {
          const copy = copyById.get(event.copy);
          if (copy !== undefined) {
            copy.status = event.event === "copy_done" ? "ok" : "failed";
            copy.duration_ms = event.duration_ms;
            copy.error = event.event === "copy_failed" ? event.message : null;
          }
          return null;
        }
        case "job_end": {
          const job = jobByName.get(event.job);
          if (job !== undefined) job.status = event.status;
          return null;
        }
        case "orphan_removed":
          return {
            code: "orphan_removed",
            message: `removed a leftover ${event.kind === "snapshot" ? "snapshot" : "run directory"} of an earlier run: ${event.name}`,
          };
        default:
          return null;
      }
    },
  };
}
