// Which repository each of a host's plan entries is: the ids its agent read (repo_identity events).
import type { AgentPlan } from "../agent/plan-lines.js";
import type { AgentEvent } from "../agent/protocol.js";
import { repositoryIdentity } from "../config/rules.js";
import type { RepositoryUse, SnapshotRead, StepOutcome } from "../report/repositories.js";

/** What the job tracker learned of one plan entry (job-tracker.ts `outcome`). */
export interface EntryOutcome {
  forget: StepOutcome | null;
  prune: StepOutcome | null;
  read: Omit<SnapshotRead, "whole"> | null;
  /** verify: the entry's repository's check (phase 2), when this host ran it. */
  check?: StepOutcome | null;
}

export interface RepositoryIds {
  /** Record a repo_identity event; true when the event was one. */
  apply(event: AgentEvent): boolean;
  /** Every repository and copy destination of the plan, with its id when the agent read one. */
  uses(outcomeOf?: (entry: string) => EntryOutcome): RepositoryUse[];
}

export function trackRepositoryIds(host: string, plan: AgentPlan): RepositoryIds {
  const ids = new Map<string, string>();
  const entries = [
    ...[...plan.repos].map(([id, r]) => ({
      id,
      job: r.job,
      label: r.label,
      url: r.url,
      retention: r.retention,
    })),
    ...[...plan.copies].map(([id, c]) => ({
      id,
      job: c.job,
      label: c.to,
      url: c.url,
      retention: c.retention,
    })),
  ];
  return {
    apply(event) {
      if (event.event !== "repo_identity") return false;
      // An id the plan does not have names nothing of this host.
      if (plan.repos.has(event.repo) || plan.copies.has(event.repo)) ids.set(event.repo, event.repo_id);
      return true;
    },
    uses: (outcomeOf = () => ({ forget: null, prune: null, read: null })) =>
      entries.map((entry) => {
        const location = repositoryIdentity(entry.url);
        const { forget, prune, read, check = null } = outcomeOf(entry.id);
        return {
          host,
          job: entry.job,
          label: entry.label,
          local: location.startsWith("/"),
          location,
          id: ids.get(entry.id) ?? null,
          entry: entry.id,
          retention: entry.retention,
          forget,
          prune,
          read: read === null ? null : { ...read, whole: plan.reads.has(entry.id) },
          check,
        };
      }),
  };
}
