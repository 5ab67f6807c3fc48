// A host's plan as the agent reads it (the format is described in protocol.ts), and the ids that
// the agent's events use for its repositories and copies.
import { lvmSizeBytes, marginBasisPoints, maskRepository } from "../config/rules.js";
import type { Job, Retention } from "../config/model.js";
import type { HostPlan } from "../plan/build-plan.js";
import { PLAN_FORMAT, planLine } from "./protocol.js";

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
    `plan ${PLAN_FORMAT}`,
    planLine("run_id", runId),
    planLine("host", host.name),
    planLine("command", command),
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
  for (const [vg, snapshotBytes] of snapshotBytesPerVg(jobs)) {
    const percent = margin?.endsWith("%") === true;
    lines.push(
      planLine(
        "vg",
        vg,
        snapshotBytes,
        margin === null || percent ? 0n : sizeBytes(margin),
        margin !== null && percent ? marginBasisPoints(margin) : 0,
      ),
    );
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
        volume === null ? "" : sizeBytes(volume.snapshot_size),
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

/** The sum of the selected jobs' snapshot sizes per VG, exact (the agent compares it with vgs). */
function snapshotBytesPerVg(jobs: Job[]): Map<string, bigint> {
  const totals = new Map<string, bigint>();
  for (const job of jobs) {
    if (job.volume === null) continue;
    const vg = job.volume.vg_name;
    totals.set(vg, (totals.get(vg) ?? 0n) + sizeBytes(job.volume.snapshot_size));
  }
  return totals;
}

/** The config rules accepted this size already; a null here is a bug, not a user error. */
function sizeBytes(size: string): bigint {
  const bytes = lvmSizeBytes(size);
  if (bytes === null) throw new Error(`not an LVM size: ${size}`);
  return bytes;
}
