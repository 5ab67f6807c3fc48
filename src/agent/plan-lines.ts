// A host's plan as the agent reads it (the format is described in protocol.ts), and the ids that
// the agent's events use for its repositories and copies.
import { createHash } from "node:crypto";
import { lvmSizeBytes, marginBasisPoints, maskRepository, repositoryIdentity } from "../config/rules.js";
import { repositoriesOf, type Job, type Retention } from "../config/model.js";
import type { HostPlan } from "../plan/build-plan.js";
import { PLAN_FORMAT, planLine } from "./protocol.js";

export type AgentCommand = "ping" | "preflight" | "backup" | "prune" | "status" | "verify" | "install";

/** install: whom the sudoers rule names, and the repositories the host's allow-list holds (null: none). */
export interface InstallRequest {
  user: string;
  sudo: "nopasswd" | "passwd";
  anyRepository: boolean;
}

export interface AgentPlan {
  lines: string[];
  /**
   * Repository id → job, masked repository, the repository as the config names it (never shown), and
   * whether the config gives it retention (prune forgets only then).
   */
  repos: Map<string, { job: string; label: string; url: string; retention: boolean }>;
  /** Copy id → job, masked source and destination, the destination as the config names it, retention. */
  copies: Map<string, { job: string; from: string; to: string; url: string; retention: boolean }>;
  /** status: the entries whose repositories this host reads whole (plan id → the jobs read). */
  reads: ReadonlyMap<string, readonly string[]>;
}

export function agentPlan(
  hostPlan: HostPlan,
  command: AgentCommand,
  runId: string,
  options: {
    dryRun?: boolean;
    install?: InstallRequest;
    /** verify, phase 2 (plan id → restic repository id): no restore drill, `restic check` of these entries. */
    maintain?: ReadonlyMap<string, string>;
    /** verify: restic check's --read-data-subset, and the restore drill's files per job (0: none). */
    verify?: { subset: string; restoreSample: number };
    /** backup --verify-sample: files per job restored from the snapshot just written and compared (0: none). */
    verifySample?: number;
    /** status: read these entries' repositories whole, for these jobs (plan id → job names). */
    reads?: ReadonlyMap<string, readonly string[]>;
    /** prune: repositories (repositoryIdentity) whose forgets run on their maintenance host, not here. */
    maintainedElsewhere?: ReadonlySet<string>;
  } = {},
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
  if ((command === "prune" || command === "verify" || command === "install") && options.dryRun === true)
    lines.push("dry_run");
  const maintain = command === "verify" ? options.maintain : undefined;
  const reads: AgentPlan["reads"] = command === "status" ? (options.reads ?? new Map()) : new Map();
  if (maintain !== undefined) lines.push("maintain");
  if (command === "verify") {
    if (options.verify === undefined) throw new Error("a verify plan needs its subset and sample");
    lines.push(planLine("read_data_subset", options.verify.subset));
    lines.push(planLine("restore_sample", maintain === undefined ? options.verify.restoreSample : 0));
  }
  if (command === "backup" && (options.verifySample ?? 0) > 0)
    lines.push(planLine("restore_sample", options.verifySample ?? 0));
  // prune's records of a repo or copy: its keep values; verify's: that it is checked here (phase 2).
  const pruneRecords = (id: string, url: string, keep: Retention | null) => {
    const repositoryId = maintain?.get(id);
    if (repositoryId !== undefined) lines.push(planLine("check", id, repositoryId));
    const elsewhere = options.maintainedElsewhere?.has(repositoryIdentity(url)) === true;
    if (command === "prune" && keep !== null && !elsewhere) {
      lines.push(planLine("retention", id, keep.last, keep.daily, keep.weekly, keep.monthly, keep.yearly));
    }
  };
  // status's read record of a repo or copy, when this host reads its repository for the fleet.
  const readRecord = (id: string) => {
    const jobs = reads.get(id);
    if (jobs !== undefined) lines.push(planLine("read", id, jobs.join(",")));
  };
  if (command === "ping") return { lines: [...lines, "end"], repos, copies, reads };
  if (command === "install")
    return { lines: [...lines, ...installLines(hostPlan, options.install), "end"], repos, copies, reads };
  const margin = config?.snapshot_settings.min_vg_free_after_snapshots ?? null;
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
  const entries = planEntries(hostPlan);
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
    for (const entry of entries.filter((e) => e.job === job.name)) {
      const { id, url, password_file: passwordFile, keep } = entry;
      const label = maskRepository(url);
      if (entry.from === null) {
        repos.set(id, { job: job.name, label, url, retention: keep !== null });
        lines.push(planLine("repo", job.name, id, url, passwordFile, label));
      } else {
        const from = maskRepository(entries.find((e) => e.id === entry.from)?.url ?? "");
        copies.set(id, { job: job.name, from, to: label, url, retention: keep !== null });
        lines.push(planLine("copy", job.name, id, entry.from, url, passwordFile, label));
      }
      pruneRecords(id, url, keep);
      readRecord(id);
    }
  }
  return { lines: [...lines, "end"], repos, copies, reads };
}

/** One repository or copy destination of a host's jobs, with its plan id (r1, r2, … and c1, c2, …). */
export interface PlanEntry {
  id: string;
  job: string;
  url: string;
  password_file: string;
  keep: Retention | null;
  /** A copy destination: the plan id of the repository it copies from. */
  from: string | null;
}

/** The plan entries of a host's jobs, in plan order (each repository, then its copy destinations). */
export function planEntries(hostPlan: HostPlan): PlanEntry[] {
  const entries: PlanEntry[] = [];
  let repos = 0;
  let copies = 0;
  for (const job of hostPlan.jobs)
    for (const repo of job.repositories) {
      const id = `r${++repos}`;
      entries.push({
        id,
        job: job.name,
        url: repo.repo,
        password_file: repo.password_file,
        keep: repo.retention,
        from: null,
      });
      for (const copy of repo.copy_to)
        entries.push({
          id: `c${++copies}`,
          job: job.name,
          url: copy.repo,
          password_file: copy.password_file,
          keep: copy.retention,
          from: id,
        });
    }
  return entries;
}

/** A repository a maintenance host maintains: where it reaches it, and whose forgets it runs there. */
export interface MaintainedPlanEntry {
  /** The plan id (m1, m2, …). */
  id: string;
  url: string;
  password_file: string;
  /** restic's repository id, as the backed-up hosts read it: the agent touches nothing elsewhere. */
  repositoryId: string;
  forgets: { host: string; job: string; keep: Retention }[];
}

/**
 * A maintenance host's prune plan: no job of its own, the maintained repositories and their forgets,
 * then (unless a dry run) one prune of each.
 */
export function maintenancePlan(
  host: HostPlan["host"],
  runId: string,
  options: { dryRun: boolean; envFile: string | null; repositories: readonly MaintainedPlanEntry[] },
): AgentPlan {
  const lines = [
    `plan ${PLAN_FORMAT}`,
    planLine("run_id", runId),
    planLine("host", host.name),
    planLine("command", "prune"),
  ];
  if (options.envFile !== null) lines.push(planLine("restic_env_file", options.envFile));
  if (options.dryRun) lines.push("dry_run");
  for (const repository of options.repositories) {
    const { id, url, password_file, repositoryId } = repository;
    lines.push(planLine("maintained", id, url, password_file, maskRepository(url), repositoryId));
    for (const { host: forHost, job, keep } of repository.forgets)
      lines.push(
        planLine(
          "forget_for",
          id,
          forHost,
          job,
          keep.last,
          keep.daily,
          keep.weekly,
          keep.monthly,
          keep.yearly,
        ),
      );
  }
  if (!options.dryRun)
    for (const { id, repositoryId } of options.repositories) lines.push(planLine("prune", id, repositoryId));
  return { lines: [...lines, "end"], repos: new Map(), copies: new Map(), reads: new Map() };
}

/** The install records: the sudo rule's user, and the allow-list of every repository the config names. */
function installLines(hostPlan: HostPlan, install: InstallRequest | undefined): string[] {
  if (install === undefined) throw new Error("an install plan needs its InstallRequest");
  const lines = [planLine("install", install.user, install.sudo)];
  if (install.anyRepository) return [...lines, "allow_any_repository"];
  for (const url of repositoriesOf(hostPlan.config))
    lines.push(
      planLine(
        "allow_repository",
        createHash("sha256").update(url, "utf8").digest("hex"),
        maskRepository(url),
      ),
    );
  return lines;
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
