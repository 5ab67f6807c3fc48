// Phase 2 of verify: one `restic check` per repository (after every host read the ids, phase 1), on one
// of the hosts that use it: a fleet controller reads each repository once. (prune's phase 2 is
// maintain-repositories.ts.)
import type { HostPlan } from "../plan/build-plan.js";
import { compare, type RepositoryPrune, type RepositoryUse } from "../report/repositories.js";
import type { HostResult, HostStatus, JobResult } from "../report/report-schema.js";

/** Which host prunes (or checks) which repository, through which of its plan entries. */
export interface PruneAssignment {
  action: "prune" | "check";
  repositoryId: string;
  host: string;
  entry: string;
}

/**
 * verify: every repository some host opened (read its id) is checked once, on one of those hosts,
 * spread over them (the fewest checks first, then by name), so that one host is not every repository's
 * checker.
 */
export function assignRepositories(
  uses: readonly RepositoryUse[],
  action: PruneAssignment["action"],
): PruneAssignment[] {
  const candidates = new Map<string, RepositoryUse[]>();
  for (const use of uses) {
    if (use.id === null) continue;
    candidates.set(use.id, [...(candidates.get(use.id) ?? []), use]);
  }
  const load = new Map<string, number>();
  const assignments: PruneAssignment[] = [];
  for (const [repositoryId, forgot] of [...candidates].sort(([a], [b]) => compare(a, b))) {
    const chosen = [...forgot].sort(
      (a, b) => (load.get(a.host) ?? 0) - (load.get(b.host) ?? 0) || compare(a.host, b.host),
    )[0];
    if (chosen === undefined) continue;
    load.set(chosen.host, (load.get(chosen.host) ?? 0) + 1);
    assignments.push({ action, repositoryId, host: chosen.host, entry: chosen.entry });
  }
  return assignments;
}

/**
 * What each assigned prune or check came to, from the hosts' phase-2 runs (or "planned" in a dry run).
 * A check carries the --read-data-subset it read.
 */
export function pruneOutcomes(
  assignments: readonly PruneAssignment[],
  phase2: { uses: readonly RepositoryUse[]; results: ReadonlyMap<string, HostResult> } | "planned",
  subset?: string,
): RepositoryPrune[] {
  return assignments.map(({ action, repositoryId, host, entry }) => {
    const base = { action, repositoryId, host, ...(subset === undefined ? {} : { subset }) };
    if (phase2 === "planned") return { ...base, status: "planned", duration_ms: null, error: null };
    const use = phase2.uses.find((u) => u.host === host && u.entry === entry);
    const outcome = (action === "check" ? use?.check : use?.prune) ?? null;
    if (outcome !== null)
      return {
        ...base,
        status: outcome.ok ? "ok" : "failed",
        duration_ms: outcome.duration_ms,
        error: outcome.error,
        ...(outcome.figures === undefined ? {} : { figures: outcome.figures }),
      };
    const result = phase2.results.get(host);
    return {
      ...base,
      status: result?.status === "skipped" ? "skipped" : "failed",
      duration_ms: null,
      error: `the ${action} did not run on ${host}: ${result?.error?.message ?? "the run was stopped"}`,
    };
  });
}

/** The plans of phase 2: the pruning hosts, each with its entries to prune (plan id → repository id). */
export function maintenancePlans(
  hosts: readonly HostPlan[],
  assignments: readonly PruneAssignment[],
): { hosts: HostPlan[]; maintain: (host: HostPlan["host"]) => ReadonlyMap<string, string> | undefined } {
  const byHost = new Map<string, Map<string, string>>();
  for (const { host, entry, repositoryId } of assignments)
    byHost.set(host, (byHost.get(host) ?? new Map<string, string>()).set(entry, repositoryId));
  return {
    hosts: hosts.filter((plan) => byHost.has(plan.host.name)),
    maintain: (host) => byHost.get(host.name),
  };
}

const RANK: Record<HostStatus, number> = { ok: 0, skipped: 0, partial: 1, failed: 2, unreachable: 2 };

/**
 * One host's result of both phases: its forgets (phase 1) and the prunes it ran (phase 2). A prune that
 * failed fails the entries of its repository on this host, and the host; a host reached in phase 1 and
 * lost in phase 2 is failed, not unreachable (it was reached, and its forgets ran).
 */
export function mergePhases(
  first: HostResult,
  second: HostResult | undefined,
  doing = "pruning a repository",
): HostResult {
  if (second === undefined) return first;
  const jobs = first.jobs.map((job, i): JobResult => {
    const later = second.jobs[i];
    if (later === undefined) return job;
    return {
      ...job,
      status: later.status === "failed" ? "failed" : job.status,
      prunes: job.prunes.map((prune, j) => {
        const pruned = later.prunes[j];
        return pruned?.status === "failed" ? { ...prune, status: "failed", error: pruned.error } : prune;
      }),
    };
  });
  const worse = RANK[second.status] > RANK[first.status];
  return {
    ...first,
    status: worse ? (second.status === "unreachable" ? "failed" : second.status) : first.status,
    error:
      worse && second.error !== null
        ? { ...second.error, message: `${doing}: ${second.error.message}` }
        : first.error,
    duration_ms: first.duration_ms + second.duration_ms,
    warnings: [
      ...first.warnings,
      ...second.warnings.filter(
        (w) => !first.warnings.some((f) => f.code === w.code && f.message === w.message),
      ),
    ],
    jobs,
  };
}
