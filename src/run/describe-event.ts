// Progress wording: one line for what the agent just reported, naming repositories by their labels.
import type { AgentPlan } from "../agent/plan-lines.js";
import type { AgentEvent } from "../agent/protocol.js";

export function describeEvent(event: AgentEvent, plan: AgentPlan): string {
  switch (event.event) {
    case "agent_start":
      return `agent ${event.agent_version} as ${event.facts.user}`;
    case "check":
      return `${event.ok ? "✓" : "✗"} ${event.name}`;
    case "snapshot_created":
      return `snapshot ${event.snapshot} created`;
    case "repo_done":
      return `${event.job} → ${plan.repos.get(event.repo)?.label ?? event.repo}: ${event.summary.snapshot_id ?? "done"}`;
    case "repo_failed":
      return `${event.job} → ${plan.repos.get(event.repo)?.label ?? event.repo}: FAILED ${event.message}`;
    case "snapshot_removed":
      return `snapshot ${event.snapshot} removed after ${(event.lifetime_ms / 1000).toFixed(1)}s`;
    case "copy_done":
      return `${event.job}: copied to ${plan.copies.get(event.copy)?.to ?? event.copy}`;
    case "copy_failed":
      return `${event.job}: copy to ${plan.copies.get(event.copy)?.to ?? event.copy} FAILED`;
    case "orphan_removed":
      return `removed leftover ${event.kind} ${event.name}`;
    case "job_start":
      return `job ${event.job}`;
    case "prune_done":
      return `${event.job} → ${label(plan, event.repo)}: ${event.skipped ? "no retention, skipped" : `forget${event.dry_run ? " --dry-run" : ""} done`}`;
    case "prune_failed":
      return `${event.job} → ${label(plan, event.repo)}: FAILED ${event.message}`;
    case "forget_for_done":
      return `forget ${event.for_hosts.join(", ")}'s job ${event.job}${event.dry_run ? " --dry-run" : ""}: ${event.ok ? "done" : `FAILED ${event.message}`}`;
    case "repo_pruned":
      return `${label(plan, event.repo)}: ${event.ok ? "pruned" : `prune FAILED ${event.message}`}`;
    case "repo_checked":
      return `${label(plan, event.repo)}: ${event.ok ? `checked (${event.subset})` : `check FAILED ${event.message}`}`;
    case "restore_sample":
      return `${event.job} → ${label(plan, event.repo)}: restore drill ${event.message !== "" ? `FAILED ${event.message}` : `${event.matched} matched, ${event.changed} changed, ${event.mismatched} mismatched`}`;
    case "repo_snapshots":
      return `${label(plan, event.repo)}: ${event.snapshots.length} snapshot(s) read`;
    case "repo_snapshots_failed":
      return `${label(plan, event.repo)}: read FAILED ${event.message}`;
    case "job_end":
      return `job ${event.job} done`;
    default:
      return event.event;
  }
}

function label(plan: AgentPlan, id: string): string {
  return plan.repos.get(id)?.label ?? plan.copies.get(id)?.to ?? id;
}
