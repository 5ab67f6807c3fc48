// A host's plan as the agent reads it (the format is described in protocol.ts), and the ids that
// the agent's events use for its repositories and copies.
import { lvmSizeBytes, maskRepository } from "../config/rules.js";
import type { Job, Retention } from "../config/model.js";
import type { HostPlan } from "../plan/build-plan.js";
import { planLine } from "./protocol.js";

export type AgentCommand = "ping" | "preflight" | "backup" | "prune" | "status";

export interface AgentPlan {
  lines: string[];
  /** Repository id → job and masked repository. */
  repos: Map<string, { job: string; label: string }>;
  /** Copy id → job, masked source and destination. */
  copies: Map<string, { job: string; from: string; to: string }>;
}

export function agentPlan(
  hostPlan: HostPlan,
  command: AgentCommand,
  runId: string,
  options: { dryRun?: boolean } = {},
): AgentPlan {
  const { host, config, jobs } = hostPlan;
  const repos: AgentPlan["repos"] = new Map();
  const copies: AgentPlan["copies"] = new Map();
  const lines = [
    "plan 1",
    planLine("run_id", runId),
    planLine("host", host.name),
    planLine("command", command),
    planLine("cow_warn_percent", config.snapshot_settings.snapshot_cow_warn_percent),
  ];
  if (host.restic_env_file !== null) lines.push(planLine("restic_env_file", host.restic_env_file));
  if (command === "prune" && options.dryRun === true) lines.push("dry_run");
  const retention = (id: string, keep: Retention | null) => {
    if (command === "prune" && keep !== null) {
      lines.push(planLine("retention", id, keep.last, keep.daily, keep.weekly, keep.monthly, keep.yearly));
    }
  };
  if (command === "ping") return { lines: [...lines, "end"], repos, copies };
  const margin = config.snapshot_settings.min_vg_free_after_snapshots;
  if (margin !== null) {
    for (const vg of volumeGroups(jobs)) {
      lines.push(
        margin.endsWith("%")
          ? planLine("vg_margin_percent", vg, Math.floor(parseFloat(margin)))
          : planLine("vg_margin_bytes", vg, lvmSizeBytes(margin)),
      );
    }
  }
  for (const job of jobs) {
    const volume = job.volume;
    lines.push(
      planLine(
        "job",
        job.name,
        job.category,
        job.source_path,
        volume?.vg_name ?? "",
        volume?.lv_name ?? "",
        volume === null ? "" : lvmSizeBytes(volume.snapshot_size),
      ),
    );
    if (job.remount_readonly) lines.push(planLine("remount_readonly", job.name));
    for (const exclude of job.exclude_paths) lines.push(planLine("exclude", job.name, exclude));
    for (const repo of job.repositories) {
      const id = `r${repos.size + 1}`;
      const label = maskRepository(repo.repo);
      repos.set(id, { job: job.name, label });
      lines.push(planLine("repo", job.name, id, repo.repo, repo.password_file, label));
      retention(id, repo.retention);
      for (const copy of repo.copy_to) {
        const copyId = `c${copies.size + 1}`;
        const to = maskRepository(copy.repo);
        copies.set(copyId, { job: job.name, from: label, to });
        lines.push(planLine("copy", job.name, copyId, id, copy.repo, copy.password_file, to));
        retention(copyId, copy.retention);
      }
    }
  }
  return { lines: [...lines, "end"], repos, copies };
}

function volumeGroups(jobs: Job[]): Set<string> {
  return new Set(jobs.flatMap((job) => (job.volume === null ? [] : [job.volume.vg_name])));
}
