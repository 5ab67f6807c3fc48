// The run report (DESIGN §8): one zod schema, the source of the exported JSON Schema.
import { z } from "zod";
import { checkEvent, factsSchema, RESTIC_REPOSITORY_ID, resticFailureCode } from "../agent/protocol.js";
import { HOST_ERROR_CODES, type HostErrorCode } from "../errors.js";
import { reportOptionsSchema } from "./report-options.js";

export const REPORT_SCHEMA = "rlvm-fleet/report@1";

export const HOST_STATUSES = ["ok", "partial", "failed", "unreachable", "skipped"] as const;
export type HostStatus = (typeof HOST_STATUSES)[number];

export const hostErrorSchema = z.object({
  code: z.enum(Object.keys(HOST_ERROR_CODES) as [HostErrorCode, ...HostErrorCode[]]),
  message: z.string(),
  hint: z.string(),
});

/** A check as the agent reports it (the controller may fill in its hint). */
export const checkSchema = checkEvent.pick({ name: true, ok: true, detail: true, hint: true, code: true });

const RUN_STATUSES = ["ok", "partial", "failed", "skipped", "planned"] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export const repoResultSchema = z.object({
  repo: z.string(),
  status: z.enum(RUN_STATUSES),
  snapshot_id: z.string().nullable(),
  files_new: z.number().int().nullable(),
  files_changed: z.number().int().nullable(),
  files_unmodified: z.number().int().nullable(),
  data_added: z.number().int().nullable(),
  /** What the repository grew by, after compression: restic 0.16 and later; null on older restic. */
  data_added_packed: z.number().int().nullable(),
  duration_ms: z.number().int().nullable(),
  error: z.string().nullable(),
  /** Why restic failed, when it said so precisely (repo_missing, repo_locked, repo_wrong_password). */
  error_code: resticFailureCode.nullable(),
});

export const copyResultSchema = z.object({
  from: z.string(),
  to: z.string(),
  status: z.enum(RUN_STATUSES),
  duration_ms: z.number().int().nullable(),
  error: z.string().nullable(),
  error_code: resticFailureCode.nullable(),
});

export const pruneResultSchema = z.object({
  repo: z.string(),
  status: z.enum(RUN_STATUSES),
  kept: z.number().int().nullable(),
  removed: z.number().int().nullable(),
  /** Short ids of the snapshots removed (or, in a dry run, that would be). */
  removed_ids: z.array(z.string()),
  dry_run: z.boolean(),
  error: z.string().nullable(),
  error_code: resticFailureCode.nullable(),
});

export const latestResultSchema = z.object({
  repo: z.string(),
  snapshot_id: z.string().nullable(),
  time: z.string().nullable(),
  age_s: z.number().int().nullable(),
  stale: z.boolean(),
  error: z.string().nullable(),
  error_code: resticFailureCode.nullable(),
});

/**
 * verify: a job's restore drill. Sampled files of its latest snapshot in its first repository, restored
 * on the host and compared with the live files: matched (same size, mtime and bytes), changed since the
 * backup (size or mtime differ: not compared, information), mismatched (same size and mtime, other
 * bytes) or missing (not restored). Sampling is deterministic: evenly spaced through the snapshot's
 * regular files, the start moved by the UTC day.
 * backup --verify-sample: the same for the snapshot just written into the job's first repository that
 * took it; an LV job's files are compared byte for byte with the LVM snapshot restic read, still mounted
 * (compared_with "lvm_snapshot": nothing there can have changed, so any difference is a mismatch).
 */
export const restoreResultSchema = z.strictObject({
  repo: z.string(),
  status: z.enum(RUN_STATUSES),
  /** --restore-sample (--verify-sample): the files asked for. */
  requested: z.number().int().min(0),
  /** What the restored files were compared with: the live files, or the LVM snapshot restic read. */
  compared_with: z.enum(["live", "lvm_snapshot"]),
  snapshot_id: z.string().nullable(),
  /** The snapshot's regular files the sample was taken from. */
  candidates: z.number().int().nullable(),
  sampled: z.number().int().nullable(),
  matched: z.number().int().nullable(),
  changed_since_backup: z.number().int().nullable(),
  mismatched: z.number().int().nullable(),
  missing: z.number().int().nullable(),
  mismatch_paths: z.array(z.string()),
  changed_paths: z.array(z.string()),
  missing_paths: z.array(z.string()),
  /** The files read: every file sampled. */
  sampled_paths: z.array(z.string()),
  duration_ms: z.number().int().nullable(),
  /**
   * backup, an LV job: how long the sample kept the LVM snapshot mounted (its whole duration); part of
   * the job's snapshot.lifetime_ms. null otherwise.
   */
  snapshot_held_ms: z.number().int().nullable(),
  error: z.string().nullable(),
});

export type RestoreResult = z.infer<typeof restoreResultSchema>;
export type PruneResult = z.infer<typeof pruneResultSchema>;
export type LatestResult = z.infer<typeof latestResultSchema>;

export const jobResultSchema = z.object({
  name: z.string(),
  category: z.string(),
  status: z.enum(RUN_STATUSES),
  snapshot: z
    .object({
      name: z.string(),
      lifetime_ms: z.number().int(),
      cow_peak_percent: z.number().nullable(),
      /** LVM invalidated the snapshot (it overflowed). */
      overflowed: z.boolean(),
    })
    .nullable(),
  repos: z.array(repoResultSchema),
  copies: z.array(copyResultSchema),
  prunes: z.array(pruneResultSchema),
  latest: z.array(latestResultSchema),
  /**
   * verify: the job's restore drill; backup: its verify sample (absent in other commands, and with
   * --restore-sample 0 or no verify sample).
   */
  restore: restoreResultSchema.optional(),
});

export type JobResult = z.infer<typeof jobResultSchema>;
export type RepoResult = z.infer<typeof repoResultSchema>;
export type CopyResult = z.infer<typeof copyResultSchema>;

export const hostResultSchema = z.object({
  name: z.string(),
  address: z.string(),
  status: z.enum(HOST_STATUSES),
  error: hostErrorSchema.nullable(),
  duration_ms: z.number().int().nonnegative(),
  facts: factsSchema.nullable(),
  checks: z.array(checkSchema),
  warnings: z.array(z.object({ code: z.string(), message: z.string() })),
  jobs: z.array(jobResultSchema),
  /** --splay: how long the host waited before it started, in ms. */
  splay_ms: z.number().int().nonnegative().optional(),
});

/** A host that uses a repository, and the jobs of it that do (as repository or copy destination). */
export const repositoryHostSchema = z.strictObject({ host: z.string(), jobs: z.array(z.string()) });

/** One maintenance step on a repository (filled by the fleet-wide prune, status and verify). */
export const repositoryActionSchema = z.strictObject({
  action: z.enum(["forget", "prune", "snapshots", "check"]),
  /** The host that ran it. */
  host: z.string(),
  /** Whose snapshots it concerned (a forget run on another host's behalf), or null. */
  for_host: z.string().nullable(),
  status: z.enum(RUN_STATUSES),
  duration_ms: z.number().int().nullable(),
  error: z.string().nullable(),
  /** check: the --read-data-subset restic check read (n/t, P% or a size). */
  subset: z.string().optional(),
  /** check, once it ran: the errors restic 0.18's check --json counted (null on older restic). */
  errors: z.number().int().nullable().optional(),
  /** check, once it ran: the damaged pack files restic 0.18 named ([] on older restic). */
  broken_packs: z.array(z.string()).optional(),
});

/**
 * One repository of the fleet. Entries with the same restic repository id are one repository, whatever
 * their URLs; `id` is null when no host could read it.
 */
export const repositorySchema = z.strictObject({
  id: z.string().regex(RESTIC_REPOSITORY_ID).nullable(),
  /** Masked, as the plan's labels. */
  url: z.string(),
  hosts: z.array(repositoryHostSchema),
  actions: z.array(repositoryActionSchema),
  /** prune: the hosts using it whose forget (phase 1) did not happen; their snapshots were kept. */
  missing_forgets: z.array(z.string()),
});

export type Repository = z.infer<typeof repositorySchema>;
export type RepositoryHost = z.infer<typeof repositoryHostSchema>;
export type RepositoryAction = z.infer<typeof repositoryActionSchema>;

export const reportSchema = z.object({
  schema: z.literal(REPORT_SCHEMA),
  run_id: z.string(),
  command: z.string(),
  options: reportOptionsSchema,
  started_at: z.string(),
  finished_at: z.string(),
  controller_version: z.string(),
  exit_code: z.number().int(),
  summary: z.object({
    hosts: z.number().int(),
    ok: z.number().int(),
    partial: z.number().int(),
    failed: z.number().int(),
    unreachable: z.number().int(),
    skipped: z.number().int(),
  }),
  hosts: z.array(hostResultSchema),
  repositories: z.array(repositorySchema),
  /** Why the run is not what it seems, such as an empty shard: no host ran, and that is not a failure. */
  warnings: z.array(z.strictObject({ code: z.string(), message: z.string() })),
});

export type HostResult = z.infer<typeof hostResultSchema>;
export type ReportWarning = Report["warnings"][number];
export type Report = z.infer<typeof reportSchema>;
export type Check = z.infer<typeof checkSchema>;
