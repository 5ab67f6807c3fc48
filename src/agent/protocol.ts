// The controller–agent contract, both directions, defined once: the plan records and the limits the
// agent enforces on them, every event, the host facts, and every code the agent may fail with (with
// its host status and hint). The config rules, the report schema and the hints reuse what is here.
//
// Controller → agent (stdin, after the agent itself): plan lines, one record per line, fields separated
// by single spaces. Every value is encoded by `encodeValue`: bytes outside [A-Za-z0-9/._,:@+=] become
// `\xHH`, and the empty string is `-`. The agent decodes with bash's `printf -v var '%b'`, so no value
// is ever seen by a shell parser, and no line can carry a space or a newline of its own.
//
//   plan 2                                   first line: format version
//   run_id RUNID
//   host NAME                                the inventory name
//   command ping|preflight|backup|prune|status|verify|install
//   restic_env_file PATH                     optional
//   vg VG SNAPSHOT_BYTES MARGIN_BYTES MARGIN_BASIS_POINTS
//                                            per VG with snapshots: the sum of the run's snapshot sizes
//                                            (the controller adds them up), and the free space to keep
//                                            after them, in bytes or in 1/100 % of the VG's size
//   job NAME CATEGORY SOURCE VG LV SIZE_BYTES          VG/LV/SIZE are `-` for standard_path
//   remount_readonly JOB                     standard_path: remount the source read-only meanwhile
//   dry_run                                  prune: forget --dry-run only
//   exclude JOB PATH
//   repo JOB ID REPO PASSWORD_FILE LABEL     ID is unique per host; LABEL has credentials masked
//   copy JOB ID FROM_ID REPO PASSWORD_FILE LABEL
//   retention ID LAST DAILY WEEKLY MONTHLY YEARLY       prune: the keep values of a repo or copy
//   read ID JOB[,JOB...]                     status: read the repository of this repo or copy whole here
//                                            (`restic snapshots --json --no-lock --tag job:JOB ...`, every
//                                            host's snapshots of these jobs), once per URL; the controller
//                                            splits it per host and job. An entry without a read record is
//                                            only identified, unless its identity cannot be read: then the
//                                            agent reads this host's own snapshots of it (restic says why)
//   maintained ID REPO PASSWORD_FILE LABEL REPO_ID
//                                            prune on the one host that maintains a repository, in a
//                                            plan of its own (no job, no maintain): a repository the
//                                            inventory declares, or one the controller found shared, as
//                                            this host reaches it; it must have restic's repository id
//                                            REPO_ID there
//   forget_for ID HOST JOB LAST DAILY WEEKLY MONTHLY YEARLY
//                                            a forget in maintained ID scoped to HOST's JOB, with that
//                                            job's keep values; the records of one ID, JOB and keep
//                                            values are one restic forget (one --host per record)
//   prune ID REPO_ID                         `restic prune` maintained ID, after its forgets, if
//                                            restic's repository id there is REPO_ID (none in a dry run)
//   read_data_subset SUBSET                  verify: restic check --read-data-subset (n/t, P%, or a size
//                                            such as 100M)
//   restore_sample N                         verify: files per job the restore drill restores (0: none);
//                                            backup: files per job restored from the snapshot just
//                                            written and compared with what restic read
//                                            (--verify-sample; absent: none)
//   maintain                                 verify, phase 2: no restore drill; check what the check
//                                            records name
//   check ID REPO_ID                         maintain: `restic check` the repository of this repo or copy,
//                                            if restic's repository id there is REPO_ID
//   dry_run                                  verify: read the repositories' ids only
//   install USER nopasswd|passwd             install: the login user the sudoers rule names, and
//                                            whether sudo asks for its password
//   allow_repository SHA256 LABEL            install: one repository of the host's allow-list
//   allow_any_repository                     install: the allow-list allows any repository
//   dry_run                                  install: check and say, change nothing
//   end
//
// The agent refuses (result code agent_protocol) a plan that breaks PLAN_LIMITS or these rules:
// exclude/repo/copy follow their job, a copy's FROM_ID is a repo of the same job, ids are unique,
// single-value records appear once, read records are status's and name distinct job names. Whatever the config rules accept stays within PLAN_LIMITS, so a
// plan the controller sends is never refused (test/unit/agent/plan-limits.test.ts walks the limits
// through the real agent).
//
// After `end` the controller keeps stdin open for the whole run: EOF means the controller is gone.
//
// Agent → controller (stdout): JSON lines, each with "v" (protocol version) and "event". Anything
// else on stdout is noise and is ignored; human text goes to stderr. The agent reports what happened
// (restic's exit codes and summaries, snapshot facts, its own failures); src/run/host-outcome.ts
// decides every job's and host's status from that. While restic backup runs, the agent also sends
// `progress` (restic's latest --json status, at most every 2 s): for the live view only.
import { z } from "zod";
import { HOST_ERROR_CODES, type HostErrorCode } from "../errors.js";

export const PROTOCOL_VERSION = 2;
export const PLAN_FORMAT = 2;

/**
 * The limits the agent enforces on plan values (agents/src/prelude.sh holds the same numbers, and
 * test/unit/agent/plan-limits.test.ts shows that the agent takes each limit and refuses one past it).
 * The config rules refuse anything outside them, with a message.
 */
export const PLAN_LIMITS = {
  /** Host names, job names, ids, run ids; "." and ".." never (they would be path components). */
  name: /^[A-Za-z0-9._-]+$/,
  /** VG and LV names as LVM accepts them (lvm(8) "VALID NAMES"). */
  lvmName: /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$/,
  /** Byte counts: bash arithmetic is signed 64-bit, and LVM's largest LV is 8 EiB. */
  maxBytes: 2n ** 63n - 1n,
  /** A VG margin as a share of the VG, in 1/100 %: below 100 %. */
  maxBasisPoints: 9999,
  /** restic's --keep-* values (an int on every platform restic runs on). */
  maxKeep: 2 ** 31 - 1,
  /** verify --restore-sample and backup --verify-sample: files per job. */
  maxRestoreSample: 1000,
} as const;

/** A name as the plan carries it: PLAN_LIMITS.name, and not "." or "..". */
export function isPlanName(value: string): boolean {
  return PLAN_LIMITS.name.test(value) && value !== "." && value !== "..";
}

const SAFE_BYTE = /[A-Za-z0-9/._,:@+=]/;

/** Encode a value for a plan line: safe bytes as they are, every other byte as `\xHH`. */
export function encodeValue(value: string): string {
  if (value === "") return "-";
  let out = "";
  for (const byte of Buffer.from(value, "utf8")) {
    const char = String.fromCharCode(byte);
    out += byte < 0x80 && SAFE_BYTE.test(char) ? char : `\\x${byte.toString(16).padStart(2, "0")}`;
  }
  return out;
}

export function planLine(key: string, ...values: (string | number | bigint)[]): string {
  return [key, ...values.map((v) => encodeValue(String(v)))].join(" ");
}

const base = { v: z.literal(PROTOCOL_VERSION) };

export const factsSchema = z.object({
  hostname: z.string(),
  kernel: z.string(),
  /** PRETTY_NAME of /etc/os-release; null when the host has none. */
  os: z.string().nullable(),
  bash: z.string(),
  restic: z.string().nullable(),
  lvm: z.string().nullable(),
  user: z.string(),
});

export type Facts = z.infer<typeof factsSchema>;

export const agentStartEvent = z.object({
  ...base,
  event: z.literal("agent_start"),
  agent_version: z.string(),
  run_id: z.string(),
  facts: factsSchema,
});

/**
 * Why a restic call failed, where the report names it precisely (restic_failure_code in
 * agents/src/restic-version.sh): the repository does not exist, another restic holds its lock, or the
 * password opens no key. From restic's exit status (10, 11, 12) on restic 0.17 and later, from its
 * stderr on older ones; null for any other failure. Hints: src/run/hints.ts.
 */
export const RESTIC_FAILURE_CODES = ["repo_missing", "repo_locked", "repo_wrong_password"] as const;
export const resticFailureCode = z.enum(RESTIC_FAILURE_CODES);
export type ResticFailureCode = z.infer<typeof resticFailureCode>;

export const checkEvent = z.object({
  ...base,
  event: z.literal("check"),
  name: z.string(),
  ok: z.boolean(),
  detail: z.string(),
  hint: z.string(),
  /** A repository check that failed: why, when restic said so precisely. */
  code: resticFailureCode.nullable(),
});

export const warningEvent = z.object({
  ...base,
  event: z.literal("warning"),
  code: z.string(),
  message: z.string(),
});

/**
 * The codes the agent may end with, each with the host status it gives and its hint. The agent fails
 * only when it cannot go on; what a finished run means (ok, partial, failed) is decided by the
 * controller from the events.
 */
export const AGENT_ERROR_CODES = {
  locked: {
    status: "failed",
    hint: "another run holds this host's lock; wait for it, or check for a stuck run",
  },
  preflight: { status: "failed", hint: "fix the failed checks" },
  snapshot_failed: {
    status: "failed",
    hint: "check the VG's free space and the LV (lvs, vgs); nothing was backed up, and every snapshot taken was removed",
  },
  agent_protocol: {
    status: "failed",
    hint: "the agent and the controller disagree about the protocol; this is a bug in rlvm-fleet",
  },
  agent_error: { status: "failed", hint: "the agent stopped on an unexpected error; its message says where" },
  agent_unsupported: {
    status: "failed",
    hint: "the host's bash is older than 4.4, or the agent does not know this command",
  },
  agent_interrupted: {
    status: "failed",
    hint: "the agent was stopped by a signal on the host; it cleaned up before it exited",
  },
  install_failed: { status: "failed", hint: "fix the failed install step, then run install-agent again" },
  repository_not_allowed: {
    status: "failed",
    hint: "the installed agent keeps to the host's allow-list (/etc/rlvm-fleet/HOST.repositories), written by install-agent from the host's config: after changing the config, run rlvm-fleet install-agent for the host again",
  },
} as const satisfies Partial<Record<HostErrorCode, { status: "failed"; hint: string }>>;

export type AgentErrorCode = keyof typeof AGENT_ERROR_CODES;
// Every agent code is a host error code with the same status (a compile-time check).
AGENT_ERROR_CODES satisfies { [K in AgentErrorCode]: { status: (typeof HOST_ERROR_CODES)[K] } };
const agentErrorCode = z.enum(Object.keys(AGENT_ERROR_CODES) as [AgentErrorCode, ...AgentErrorCode[]]);

/** The last event. `code` null: the command ran to its end; otherwise the agent stopped with it. */
export const resultEvent = z.object({
  ...base,
  event: z.literal("result"),
  code: agentErrorCode.nullable(),
  message: z.string(),
});

const jobRef = { job: z.string() };

export const jobStartEvent = z.object({ ...base, event: z.literal("job_start"), ...jobRef });

export const snapshotCreatedEvent = z.object({
  ...base,
  event: z.literal("snapshot_created"),
  ...jobRef,
  snapshot: z.string(),
});

/**
 * restic's own summary line, passed through; restic 0.14 and later write these fields, and 0.16 and
 * later data_added_packed (what the repository grew by, after compression).
 */
export const resticSummary = z
  .object({
    snapshot_id: z.string().optional(),
    files_new: z.number().int(),
    files_changed: z.number().int(),
    files_unmodified: z.number().int(),
    data_added: z.number().int(),
    data_added_packed: z.number().int().optional(),
  })
  .loose();

export const repoDoneEvent = z.object({
  ...base,
  event: z.literal("repo_done"),
  ...jobRef,
  repo: z.string(),
  /** 0, or 3 when restic could not read some files (the snapshot exists but is incomplete). */
  exit_code: z.number().int(),
  duration_ms: z.number().int(),
  summary: resticSummary,
});

/** A count restic reports while it runs: null until restic knows it. */
const runningCount = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable();

/**
 * restic backup's latest `--json` status while it runs, at most one every 2 s per host (the agent
 * reads restic's output as it grows and keeps only its newest status line). `fraction` is restic's
 * percent_done (0 to 1; restic may pass 1 briefly when files grow as it reads them), `eta_s` its
 * seconds_remaining. Shown by the live view; the report does not keep it.
 */
export const progressEvent = z.strictObject({
  ...base,
  event: z.literal("progress"),
  ...jobRef,
  repo: z.string(),
  fraction: z.number().min(0).max(10).nullable(),
  bytes_done: runningCount,
  bytes_total: runningCount,
  files_done: runningCount,
  files_total: runningCount,
  eta_s: runningCount,
});

export const repoFailedEvent = z.object({
  ...base,
  event: z.literal("repo_failed"),
  ...jobRef,
  repo: z.string(),
  exit_code: z.number().int(),
  duration_ms: z.number().int(),
  message: z.string(),
  code: resticFailureCode.nullable(),
});

export const snapshotRemovedEvent = z.object({
  ...base,
  event: z.literal("snapshot_removed"),
  ...jobRef,
  snapshot: z.string(),
  lifetime_ms: z.number().int(),
  cow_peak_percent: z.number().nullable(),
  /** LVM invalidated the snapshot (it overflowed): whatever was read from it is unreliable. */
  invalid: z.boolean(),
});

export const copyDoneEvent = z.object({
  ...base,
  event: z.literal("copy_done"),
  ...jobRef,
  copy: z.string(),
  duration_ms: z.number().int(),
});

export const copyFailedEvent = z.object({
  ...base,
  event: z.literal("copy_failed"),
  ...jobRef,
  copy: z.string(),
  duration_ms: z.number().int(),
  message: z.string(),
  code: resticFailureCode.nullable(),
});

export const orphanRemovedEvent = z.object({
  ...base,
  event: z.literal("orphan_removed"),
  kind: z.enum(["snapshot", "run_dir"]),
  name: z.string(),
});

/** Every repository of the job is done and its snapshot removed. */
export const jobEndEvent = z.object({ ...base, event: z.literal("job_end"), ...jobRef });

const forgetGroup = z
  .object({
    /** The group's host (forget --group-by host,paths). */
    host: z.string().nullish(),
    keep: z.array(z.object({ short_id: z.string() }).loose()).nullable(),
    remove: z.array(z.object({ short_id: z.string() }).loose()).nullable(),
  })
  .loose();

export const pruneDoneEvent = z.object({
  ...base,
  event: z.literal("prune_done"),
  ...jobRef,
  repo: z.string(),
  dry_run: z.boolean(),
  /** No retention configured for this repository: nothing was forgotten. */
  skipped: z.boolean(),
  /** restic forget --json, passed through. */
  forget: z.array(forgetGroup),
  duration_ms: z.number().int(),
});

export const pruneFailedEvent = z.object({
  ...base,
  event: z.literal("prune_failed"),
  ...jobRef,
  repo: z.string(),
  dry_run: z.boolean(),
  message: z.string(),
  duration_ms: z.number().int(),
  code: resticFailureCode.nullable(),
});

/** A maintenance host's forget of other hosts' job (forget_for records) in a maintained repository. */
export const forgetForDoneEvent = z.object({
  ...base,
  event: z.literal("forget_for_done"),
  repo: z.string(),
  /** The hosts whose snapshots of the job this one forget was for (each group's host is one of them). */
  for_hosts: z.array(z.string()).min(1),
  ...jobRef,
  ok: z.boolean(),
  dry_run: z.boolean(),
  /** restic forget --json, passed through ([] when it failed). */
  forget: z.array(forgetGroup),
  duration_ms: z.number().int(),
  message: z.string(),
});

export const repoPrunedEvent = z.object({
  ...base,
  event: z.literal("repo_pruned"),
  repo: z.string(),
  ok: z.boolean(),
  duration_ms: z.number().int(),
  message: z.string(),
  code: resticFailureCode.nullable(),
});

/** verify, phase 2: the one `restic check --read-data-subset SUBSET` of a repository. */
export const repoCheckedEvent = z.strictObject({
  ...base,
  event: z.literal("repo_checked"),
  repo: z.string(),
  ok: z.boolean(),
  duration_ms: z.number().int(),
  subset: z.string(),
  /** restic's reason (the tail of its stderr, masked) when not ok. */
  message: z.string(),
  /** restic 0.18's check --json summary: the errors it found (null on older restic, or no summary). */
  errors: z.number().int().min(0).nullable(),
  /** ...and the damaged pack files it named ([] on older restic). */
  broken_packs: z.array(z.string().regex(/^[0-9a-f]{64}$/)).max(100),
});

/** A path of a sampled file, as the snapshot has it (the live file has the same path). */
const samplePaths = z.array(z.string()).max(PLAN_LIMITS.maxRestoreSample);

/**
 * verify: the restore drill of a job: sampled files of its latest snapshot in its first repository
 * (`repo`), restored and compared with the live files; backup --verify-sample: the same for the
 * snapshot just written into the job's first repository that took it, compared with what restic read
 * (the still mounted LVM snapshot, byte for byte; a standard_path job's live files as verify does).
 * `message` says why the sample could not run.
 */
export const restoreSampleEvent = z.strictObject({
  ...base,
  event: z.literal("restore_sample"),
  ...jobRef,
  repo: z.string(),
  /** restic's short id of the snapshot sampled; "" when there was none. */
  snapshot: z.string(),
  /** Regular files of the snapshot the sample was taken from. */
  candidates: z.number().int().min(0),
  sampled: z.number().int().min(0),
  matched: z.number().int().min(0),
  /** Size or mtime differ from the snapshot's: changed since the backup, not compared. */
  changed: z.number().int().min(0),
  /** Same size and mtime, different bytes. */
  mismatched: z.number().int().min(0),
  /** Sampled, but restic restore did not produce the file. */
  missing: z.number().int().min(0),
  mismatch_paths: samplePaths,
  changed_paths: samplePaths,
  missing_paths: samplePaths,
  /** Every file sampled, in the snapshot's order. */
  sampled_paths: samplePaths,
  duration_ms: z.number().int(),
  message: z.string(),
});

/** A snapshot as `restic snapshots --json` lists it: what the controller splits a repository's read by. */
const resticSnapshot = z
  .object({
    time: z.string(),
    short_id: z.string().optional(),
    id: z.string(),
    hostname: z.string(),
    tags: z.array(z.string()).nullable().optional(),
  })
  .loose();

/** status: one read of a plan entry's repository (whole, or this host's job alone), passed through. */
export const repoSnapshotsEvent = z.strictObject({
  ...base,
  event: z.literal("repo_snapshots"),
  repo: z.string(),
  snapshots: z.array(resticSnapshot),
  duration_ms: z.number().int(),
});

export const repoSnapshotsFailedEvent = z.strictObject({
  ...base,
  event: z.literal("repo_snapshots_failed"),
  repo: z.string(),
  duration_ms: z.number().int(),
  message: z.string(),
  code: resticFailureCode.nullable(),
});

/**
 * status, controller side: one host's and job's part of a repository's read (the controller's split
 * of repo_snapshots, or why there is none). The agent never sends these; the job tracker reads them.
 */
export const latestEvent = z.object({
  ...base,
  event: z.literal("latest"),
  ...jobRef,
  repo: z.string(),
  /** The snapshots of this host and job, from restic snapshots --json. */
  snapshots: z.array(z.object({ time: z.string(), short_id: z.string().optional(), id: z.string() }).loose()),
});

export const latestFailedEvent = z.object({
  ...base,
  event: z.literal("latest_failed"),
  ...jobRef,
  repo: z.string(),
  message: z.string(),
  code: resticFailureCode.nullable(),
});

/** restic's repository id (the `id` of `restic cat config`): what makes two URLs one repository. */
export const RESTIC_REPOSITORY_ID = /^[0-9a-f]{64}$/;

/** The repository of a plan entry (`repo`: a repo or copy id of the plan) opened, and has this id. */
export const repoIdentityEvent = z.strictObject({
  ...base,
  event: z.literal("repo_identity"),
  repo: z.string(),
  repo_id: z.string().regex(RESTIC_REPOSITORY_ID),
});

export const agentEvent = z.discriminatedUnion("event", [
  repoIdentityEvent,
  pruneDoneEvent,
  pruneFailedEvent,
  forgetForDoneEvent,
  repoPrunedEvent,
  repoCheckedEvent,
  restoreSampleEvent,
  repoSnapshotsEvent,
  repoSnapshotsFailedEvent,
  agentStartEvent,
  checkEvent,
  warningEvent,
  jobStartEvent,
  snapshotCreatedEvent,
  repoDoneEvent,
  repoFailedEvent,
  progressEvent,
  snapshotRemovedEvent,
  copyDoneEvent,
  copyFailedEvent,
  orphanRemovedEvent,
  jobEndEvent,
  resultEvent,
]);

export type AgentEvent = z.infer<typeof agentEvent>;
/** What the job tracker reads: the agent's events, and the controller's split of status reads. */
export const trackedEvent = z.discriminatedUnion("event", [
  ...agentEvent.options,
  latestEvent,
  latestFailedEvent,
]);
export type TrackedEvent = z.infer<typeof trackedEvent>;
export type ResticSnapshot = z.infer<typeof resticSnapshot>;
export type CheckEvent = z.infer<typeof checkEvent>;
export type ResultEvent = z.infer<typeof resultEvent>;
export type ProgressAgentEvent = z.infer<typeof progressEvent>;
