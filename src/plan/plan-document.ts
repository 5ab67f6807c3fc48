// The plan as a document: the `hosts[].jobs[]` shape that the run report extends with results.
import type { Job, Retention } from "../config/model.js";
import { maskRepository } from "../config/rules.js";
import type { BackupPlan, FleetPlan } from "./build-plan.js";

export const PLAN_SCHEMA = "rlvm-fleet/plan@1";

export interface PlannedStep {
  action: "snapshot" | "backup" | "remove_snapshot" | "copy";
  job: string;
  detail: string;
}

export interface PlannedJob {
  name: string;
  category: Job["category"];
  source_path: string;
  exclude_paths: string[];
  remount_readonly: boolean;
  volume: { vg_name: string; lv_name: string; snapshot_size: string } | null;
  repos: { repo: string; password_file: string; retention: Retention | null }[];
  copies: { from: string; to: string; password_file: string; retention: Retention | null }[];
}

export interface PlannedHost {
  name: string;
  address: string;
  port: number;
  user: string;
  become: "sudo" | "none";
  /** The bastions on the way (proxy_jump), outermost first; [] for a direct connection. */
  jump: { name: string; user: string; address: string; port: number }[];
  config: string;
  jobs: PlannedJob[];
  steps: PlannedStep[];
}

/** A repository the inventory declares ([repositories.NAME]) that planned jobs write to. */
export interface PlannedRepository {
  name: string;
  /** Masked, as every repository in the plan. */
  url: string;
  maintenance_host: string;
  maintenance_url: string;
  /** The planned jobs that write to it (copy: as a copy_to destination). */
  uses: { host: string; job: string; copy: boolean }[];
}

export interface PlanDocument {
  schema: typeof PLAN_SCHEMA;
  inventory: string;
  hosts: PlannedHost[];
  repositories: PlannedRepository[];
}

export function planDocument(plan: FleetPlan): PlanDocument {
  return {
    schema: PLAN_SCHEMA,
    inventory: plan.inventory.file,
    hosts: plan.hosts.map(plannedHost),
    repositories: (plan.repositories ?? []).map(({ declaration, uses }) => ({
      name: declaration.name,
      url: maskRepository(declaration.url),
      maintenance_host: declaration.maintenance_host,
      maintenance_url: maskRepository(declaration.maintenance_url),
      uses: uses.map(({ host, job, copy }) => ({ host, job, copy })),
    })),
  };
}

function plannedHost(hostPlan: BackupPlan): PlannedHost {
  const { host } = hostPlan;
  return {
    name: host.name,
    address: host.address,
    port: host.port,
    user: host.user,
    become: host.become,
    jump: host.jump.map(({ name, user, address, port }) => ({ name, user, address, port })),
    config: host.config,
    jobs: hostPlan.jobs.map(plannedJob),
    steps: planSteps(hostPlan.jobs),
  };
}

export function plannedJob(job: Job): PlannedJob {
  return {
    name: job.name,
    category: job.category,
    source_path: job.source_path,
    exclude_paths: job.exclude_paths,
    remount_readonly: job.remount_readonly,
    volume: job.volume,
    repos: job.repositories.map((r) => ({
      repo: maskRepository(r.repo),
      password_file: r.password_file,
      retention: r.retention,
    })),
    copies: job.repositories.flatMap((r) =>
      r.copy_to.map((c) => ({
        from: maskRepository(r.repo),
        to: maskRepository(c.repo),
        password_file: c.password_file,
        retention: c.retention,
      })),
    ),
  };
}

/**
 * The order a backup runs in (DESIGN §5): every snapshot first, one consistent set; then each job's
 * repositories, its snapshot removed as soon as its last repository is done; copies last.
 */
export function planSteps(jobs: Job[]): PlannedStep[] {
  const steps: PlannedStep[] = [];
  for (const job of jobs) {
    if (job.volume !== null) {
      const { vg_name, lv_name, snapshot_size } = job.volume;
      steps.push({
        action: "snapshot",
        job: job.name,
        detail: `${vg_name}/${lv_name} as ${lv_name}_rlvm_<runid> (${snapshot_size} COW), mounted read-only`,
      });
    }
  }
  for (const job of jobs) {
    for (const repo of job.repositories) {
      steps.push({
        action: "backup",
        job: job.name,
        detail: `${job.source_path} → ${maskRepository(repo.repo)}`,
      });
    }
    if (job.volume !== null) {
      steps.push({
        action: "remove_snapshot",
        job: job.name,
        detail: `${job.volume.vg_name}/${job.volume.lv_name}_rlvm_<runid>`,
      });
    }
  }
  for (const job of jobs) {
    for (const repo of job.repositories) {
      for (const copy of repo.copy_to) {
        steps.push({
          action: "copy",
          job: job.name,
          detail: `${maskRepository(repo.repo)} → ${maskRepository(copy.repo)}`,
        });
      }
    }
  }
  return steps;
}

export function formatRetention(retention: Retention | null): string {
  if (retention === null) return "never pruned";
  const parts = (["last", "daily", "weekly", "monthly", "yearly"] as const)
    .filter((k) => retention[k] > 0)
    .map((k) => `${k} ${retention[k]}`);
  return `keep ${parts.join(", ")}`;
}
