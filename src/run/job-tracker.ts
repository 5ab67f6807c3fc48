// A host's jobs in the report, filled in from the agent's events as they arrive.
import type { ResticSnapshot, TrackedEvent } from "../agent/protocol.js";
import type { AgentPlan } from "../agent/plan-lines.js";
import type { HostPlan } from "../plan/build-plan.js";
import type {
  CopyResult,
  JobResult,
  LatestResult,
  PruneResult,
  RepoResult,
  RestoreResult,
  RunStatus,
} from "../report/report-schema.js";
import type { SnapshotRead, StepOutcome } from "../report/repositories.js";

/** How far in the future a snapshot's time may be (the host's clock ahead of ours) and still count. */
export const CLOCK_SKEW_S = 300;

export type TrackedCommand = "backup" | "prune" | "status" | "verify";

export interface JobTracker {
  jobs: JobResult[];
  /** Apply one event; returns a warning for the host when the event is one. */
  apply(event: TrackedEvent): { code: string; message: string } | null;
  /**
   * prune: what a plan entry's forget (phase 1) and its repository's prune (phase 2) came to, if they
   * ran; status: the agent's read of the entry's repository, if it read it; verify: its repository's
   * check (phase 2).
   */
  outcome(id: string): {
    forget: StepOutcome | null;
    prune: StepOutcome | null;
    read: Omit<SnapshotRead, "whole"> | null;
    check: StepOutcome | null;
  };
  /** verify: restic's reasons of the checks that failed on this host. */
  failedChecks(): string[];
  /** After the run (status): each latest snapshot's age, and whether it is older than maxAgeS. */
  finish(now: Date, maxAgeS: number | null): void;
}

export function trackJobs(
  hostPlan: HostPlan,
  plan: AgentPlan,
  command: TrackedCommand,
  initial: RunStatus,
  /** verify: the restore drill's files per job; backup: the verify sample's (0: none). */
  restoreSample = 0,
): JobTracker {
  const repoById = new Map<string, RepoResult>();
  const copyById = new Map<string, CopyResult>();
  const pruneById = new Map<string, PruneResult>();
  const latestById = new Map<string, LatestResult>();
  const idsByRepo = new Map<string, string[]>();
  const forgets = new Map<string, StepOutcome>();
  const prunes = new Map<string, StepOutcome>();
  const checks = new Map<string, StepOutcome>();
  const reads = new Map<string, Omit<SnapshotRead, "whole">>();
  const jobs: JobResult[] = hostPlan.jobs.map((job) => ({
    name: job.name,
    category: job.category,
    status: initial,
    snapshot: null,
    repos: [],
    copies: [],
    prunes: [],
    latest: [],
  }));
  const jobByName = new Map(jobs.map((job) => [job.name, job]));
  if ((command === "verify" || command === "backup") && restoreSample > 0) {
    // The drill reads the job's first repository; backup's sample, its first that took the backup.
    for (const repo of [...plan.repos.values()].reverse()) {
      const job = jobByName.get(repo.job);
      if (job === undefined) continue;
      const frozen = command === "backup" && job.category !== "standard_path";
      job.restore = emptyRestore(repo.label, initial, restoreSample, frozen ? "lvm_snapshot" : "live");
    }
  }
  // Targets in plan order: each repository, then its copy destinations.
  const targets = [
    ...[...plan.repos].map(([id, r]) => ({ id, job: r.job, label: r.label })),
    ...[...plan.copies].map(([id, c]) => ({ id, job: c.job, label: c.to })),
  ];
  for (const target of targets) {
    const job = jobByName.get(target.job);
    if (job === undefined) continue;
    if (command === "prune") {
      const entry: PruneResult = {
        repo: target.label,
        status: initial,
        kept: null,
        removed: null,
        removed_ids: [],
        dry_run: false,
        error: null,
        error_code: null,
      };
      pruneById.set(target.id, entry);
      job.prunes.push(entry);
    } else if (command === "status") {
      const entry: LatestResult = {
        repo: target.label,
        snapshot_id: null,
        time: null,
        age_s: null,
        stale: false,
        error: null,
        error_code: null,
      };
      latestById.set(target.id, entry);
      job.latest.push(entry);
    }
  }
  for (const [id, repo] of plan.repos) {
    idsByRepo.set(repo.label, [...(idsByRepo.get(repo.label) ?? []), id]);
    if (command !== "backup") continue;
    const result: RepoResult = {
      repo: repo.label,
      status: initial,
      snapshot_id: null,
      files_new: null,
      files_changed: null,
      files_unmodified: null,
      data_added: null,
      data_added_packed: null,
      duration_ms: null,
      error: null,
      error_code: null,
    };
    repoById.set(id, result);
    jobByName.get(repo.job)?.repos.push(result);
  }
  for (const [id, copy] of plan.copies) {
    idsByRepo.set(copy.to, [...(idsByRepo.get(copy.to) ?? []), id]);
    if (command !== "backup") continue;
    const result: CopyResult = {
      from: copy.from,
      to: copy.to,
      status: initial,
      duration_ms: null,
      error: null,
      error_code: null,
    };
    copyById.set(id, result);
    jobByName.get(copy.job)?.copies.push(result);
  }
  const labelOf = (id: string) => plan.repos.get(id)?.label ?? plan.copies.get(id)?.to ?? id;

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
            data_added_packed: event.summary.data_added_packed ?? null,
            duration_ms: event.duration_ms,
            error:
              event.exit_code === 0
                ? null
                : "restic could not read some files (exit 3); the snapshot is incomplete",
            error_code: null,
          });
          return null;
        }
        case "repo_failed": {
          const repo = repoById.get(event.repo);
          if (repo !== undefined)
            // also after repo_done: a backup of an overflowed snapshot is discarded (forgotten).
            Object.assign(repo, {
              status: "failed",
              snapshot_id: null,
              duration_ms: event.duration_ms,
              error: event.message,
              error_code: event.code,
            });
          return null;
        }
        case "snapshot_created": {
          const job = jobByName.get(event.job);
          if (job !== undefined)
            job.snapshot = {
              name: event.snapshot,
              lifetime_ms: 0,
              cow_peak_percent: null,
              overflowed: false,
            };
          return null;
        }
        case "snapshot_removed": {
          const job = jobByName.get(event.job);
          if (job !== undefined) {
            job.snapshot = {
              name: event.snapshot,
              lifetime_ms: event.lifetime_ms,
              cow_peak_percent: event.cow_peak_percent,
              overflowed: event.invalid,
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
            copy.error_code = event.event === "copy_failed" ? event.code : null;
          }
          return null;
        }
        case "prune_done": {
          const entry = pruneById.get(event.repo);
          if (entry === undefined) return null;
          if (!event.skipped)
            forgets.set(event.repo, { ok: true, duration_ms: event.duration_ms, error: null });
          const kept = event.forget.flatMap((group) => group.keep ?? []);
          const removed = event.forget.flatMap((group) => group.remove ?? []);
          Object.assign(entry, {
            status: event.skipped ? "skipped" : "ok",
            kept: event.skipped ? null : kept.length,
            removed: event.skipped ? null : removed.length,
            removed_ids: removed.map((snapshot) => snapshot.short_id),
            dry_run: event.dry_run,
            error: event.skipped ? "no retention configured: never pruned" : null,
            error_code: null,
          });
          return null;
        }
        case "prune_failed": {
          forgets.set(event.repo, { ok: false, duration_ms: event.duration_ms, error: event.message });
          const entry = pruneById.get(event.repo);
          if (entry !== undefined)
            Object.assign(entry, {
              status: "failed",
              dry_run: event.dry_run,
              error: event.message,
              error_code: event.code,
            });
          return null;
        }
        case "repo_pruned": {
          prunes.set(event.repo, {
            ok: event.ok,
            duration_ms: event.duration_ms,
            error: event.ok ? null : event.message,
          });
          if (event.ok) return null;
          // `restic prune` runs once per repository: its failure belongs to every entry of that repository.
          for (const id of idsByRepo.get(labelOf(event.repo)) ?? []) {
            const entry = pruneById.get(id);
            if (entry !== undefined)
              Object.assign(entry, { status: "failed", error: event.message, error_code: event.code });
          }
          return null;
        }
        case "repo_checked":
          checks.set(event.repo, {
            ok: event.ok,
            duration_ms: event.duration_ms,
            error: event.ok ? null : event.message,
            figures: { errors: event.errors, broken_packs: event.broken_packs },
          });
          return null;
        case "restore_sample": {
          const job = jobByName.get(event.job);
          if (job?.restore === undefined) return null;
          const failed = event.message !== "" || event.mismatched > 0 || event.missing > 0;
          // backup: no sample of a job whose backups all failed, or whose LVM snapshot overflowed.
          const notRun = event.message.startsWith("not run: ");
          const frozen = job.restore.compared_with === "lvm_snapshot";
          const problems = [
            event.message,
            event.mismatched > 0
              ? `${event.mismatched} file(s) differ from ${frozen ? "the LVM snapshot restic read them from" : "the snapshot with the same size and mtime"}: ${event.mismatch_paths.join(", ")}`
              : "",
            event.missing > 0
              ? `${event.missing} sampled file(s) were not restored: ${event.missing_paths.join(", ")}`
              : "",
          ].filter((text) => text !== "");
          Object.assign(job.restore, {
            repo: labelOf(event.repo),
            status: notRun ? "skipped" : failed ? "failed" : "ok",
            snapshot_id: event.snapshot === "" ? null : event.snapshot,
            candidates: event.candidates,
            sampled: event.sampled,
            matched: event.matched,
            changed_since_backup: event.changed,
            mismatched: event.mismatched,
            missing: event.missing,
            mismatch_paths: event.mismatch_paths,
            changed_paths: event.changed_paths,
            missing_paths: event.missing_paths,
            sampled_paths: event.sampled_paths,
            duration_ms: event.duration_ms,
            // backup: the LVM snapshot stayed mounted for the sample.
            snapshot_held_ms: frozen ? event.duration_ms : null,
            error: problems.length === 0 ? null : problems.join("; "),
          } satisfies Partial<RestoreResult>);
          return null;
        }
        case "repo_snapshots":
        case "repo_snapshots_failed": {
          // The fleet splits it per host and job once every host is done (src/run/status-reads.ts).
          if (!plan.repos.has(event.repo) && !plan.copies.has(event.repo)) return null;
          reads.set(
            event.repo,
            event.event === "repo_snapshots"
              ? { ok: true, duration_ms: event.duration_ms, error: null, snapshots: event.snapshots }
              : {
                  ok: false,
                  duration_ms: event.duration_ms,
                  error: event.message,
                  code: event.code,
                  snapshots: [],
                },
          );
          return null;
        }
        case "latest": {
          const entry = latestById.get(event.repo);
          if (entry === undefined) return null;
          const newest = newestSnapshot(event.snapshots);
          entry.snapshot_id = newest === undefined ? null : (newest.short_id ?? newest.id.slice(0, 8));
          entry.time = newest?.time ?? null;
          return null;
        }
        case "latest_failed": {
          const entry = latestById.get(event.repo);
          if (entry !== undefined) Object.assign(entry, { error: event.message, error_code: event.code });
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
    outcome: (id) => ({
      forget: forgets.get(id) ?? null,
      prune: prunes.get(id) ?? null,
      read: reads.get(id) ?? null,
      check: checks.get(id) ?? null,
    }),
    failedChecks: () =>
      [...checks].filter(([, c]) => !c.ok).map(([id, c]) => `${labelOf(id)}: ${c.error ?? "failed"}`),
    finish(now, maxAgeS) {
      for (const entry of jobs.flatMap((job) => job.latest)) {
        // A time that does not parse, or lies in the future (another host writing to the same
        // repository can set any time), has no age: it is stale with --max-age, and a warning.
        const ageS = entry.time === null ? NaN : Math.floor((now.getTime() - Date.parse(entry.time)) / 1000);
        entry.age_s = Number.isNaN(ageS) || ageS < -CLOCK_SKEW_S ? null : Math.max(0, ageS);
        entry.stale =
          maxAgeS !== null && entry.error === null && (entry.age_s === null || entry.age_s > maxAgeS);
      }
    },
  };
}

/** A job's restore drill before the agent reports it (planned in a dry run). */
function emptyRestore(
  repo: string,
  status: RunStatus,
  requested: number,
  comparedWith: RestoreResult["compared_with"],
): RestoreResult {
  return {
    repo,
    status,
    requested,
    compared_with: comparedWith,
    snapshot_id: null,
    candidates: null,
    sampled: null,
    matched: null,
    changed_since_backup: null,
    mismatched: null,
    missing: null,
    mismatch_paths: [],
    changed_paths: [],
    missing_paths: [],
    sampled_paths: [],
    duration_ms: null,
    snapshot_held_ms: null,
    error: null,
  };
}

/** The newest snapshot; a time that does not parse counts as the newest: it is then reported, and stale. */
export function newestSnapshot<S extends Pick<ResticSnapshot, "time">>(
  snapshots: readonly S[],
): S | undefined {
  const timeOf = (time: string) => {
    const ms = Date.parse(time);
    return Number.isNaN(ms) ? Infinity : ms;
  };
  return [...snapshots].sort((a, b) => timeOf(b.time) - timeOf(a.time))[0];
}
