// The agent protocol, both directions, defined once.
//
// Controller → agent (stdin, after the agent itself): plan lines, one record per line, fields separated
// by single spaces. Every value is encoded by `encodeValue`: bytes outside [A-Za-z0-9/._,:@+=] become
// `\xHH`, and the empty string is `-`. The agent decodes with bash's `printf -v var '%b'`, so no value
// is ever seen by a shell parser, and no line can carry a space or a newline of its own.
//
//   plan 1                                   first line: format version
//   run_id RUNID
//   host NAME                                the inventory name
//   command ping|preflight
//   restic_env_file PATH                     optional
//   cow_warn_percent N
//   vg_margin_bytes VG BYTES                 optional, per VG: free space to keep after snapshots
//   vg_margin_percent VG PERCENT             or that, as a percentage of the VG's size
//   job NAME CATEGORY SOURCE VG LV SIZE_BYTES          VG/LV/SIZE are `-` for standard_path
//   remount_readonly JOB                     standard_path: remount the source read-only meanwhile
//   dry_run                                  prune: forget --dry-run only
//   exclude JOB PATH
//   repo JOB ID REPO PASSWORD_FILE LABEL     ID is unique per host; LABEL has credentials masked
//   copy JOB ID FROM_ID REPO PASSWORD_FILE LABEL
//   retention ID LAST DAILY WEEKLY MONTHLY YEARLY       prune: the keep values of a repo or copy
//   end
//
// The agent refuses (result code agent_protocol) a plan that breaks these rules: run_id, host, job
// names and ids match [A-Za-z0-9._-]+; VG/LV names use LVM's characters; sizes are whole numbers;
// SOURCE, PASSWORD_FILE and restic_env_file are absolute; exclude/repo/copy follow their job, and a
// copy's FROM_ID is a repo of the same job; ids are unique; single-value records appear once.
//
// After `end` the controller keeps stdin open for the whole run: EOF means the controller is gone.
//
// Agent → controller (stdout): JSON lines, each with "v" (protocol version) and "event". Anything
// else on stdout is noise and is ignored; human text goes to stderr.
import { z } from "zod";

export const PROTOCOL_VERSION = 1;

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

export function planLine(key: string, ...values: (string | number)[]): string {
  return [key, ...values.map((v) => encodeValue(String(v)))].join(" ");
}

const base = { v: z.literal(PROTOCOL_VERSION) };

export const factsSchema = z.object({
  hostname: z.string(),
  kernel: z.string(),
  bash: z.string(),
  restic: z.string().nullable(),
  lvm: z.string().nullable(),
  user: z.string(),
  uid: z.number().int(),
});

export type Facts = z.infer<typeof factsSchema>;

export const agentStartEvent = z.object({
  ...base,
  event: z.literal("agent_start"),
  agent_version: z.string(),
  run_id: z.string(),
  facts: factsSchema,
});

export const checkEvent = z.object({
  ...base,
  event: z.literal("check"),
  name: z.string(),
  ok: z.boolean(),
  detail: z.string(),
  hint: z.string(),
});

export const warningEvent = z.object({
  ...base,
  event: z.literal("warning"),
  code: z.string(),
  message: z.string(),
});

export const resultEvent = z.object({
  ...base,
  event: z.literal("result"),
  status: z.enum(["ok", "partial", "failed"]),
  code: z.string().nullable(),
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

/** restic's own summary line, passed through; restic 0.14 and later write these fields. */
export const resticSummary = z
  .object({
    snapshot_id: z.string().optional(),
    files_new: z.number().int(),
    files_changed: z.number().int(),
    files_unmodified: z.number().int(),
    data_added: z.number().int(),
    total_duration: z.number(),
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

export const repoFailedEvent = z.object({
  ...base,
  event: z.literal("repo_failed"),
  ...jobRef,
  repo: z.string(),
  exit_code: z.number().int(),
  duration_ms: z.number().int(),
  message: z.string(),
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
});

export const orphanRemovedEvent = z.object({
  ...base,
  event: z.literal("orphan_removed"),
  kind: z.enum(["snapshot", "run_dir"]),
  name: z.string(),
});

export const jobEndEvent = z.object({
  ...base,
  event: z.literal("job_end"),
  ...jobRef,
  status: z.enum(["ok", "partial", "failed"]),
  message: z.string(),
});

const forgetGroup = z
  .object({
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
});

export const pruneFailedEvent = z.object({
  ...base,
  event: z.literal("prune_failed"),
  ...jobRef,
  repo: z.string(),
  dry_run: z.boolean(),
  message: z.string(),
});

export const repoPrunedEvent = z.object({
  ...base,
  event: z.literal("repo_pruned"),
  repo: z.string(),
  ok: z.boolean(),
  message: z.string(),
});

export const latestEvent = z.object({
  ...base,
  event: z.literal("latest"),
  ...jobRef,
  repo: z.string(),
  /** restic snapshots --json for this host and job, passed through. */
  snapshots: z.array(z.object({ time: z.string(), short_id: z.string().optional(), id: z.string() }).loose()),
});

export const latestFailedEvent = z.object({
  ...base,
  event: z.literal("latest_failed"),
  ...jobRef,
  repo: z.string(),
  message: z.string(),
});

export const agentEvent = z.discriminatedUnion("event", [
  pruneDoneEvent,
  pruneFailedEvent,
  repoPrunedEvent,
  latestEvent,
  latestFailedEvent,
  agentStartEvent,
  checkEvent,
  warningEvent,
  jobStartEvent,
  snapshotCreatedEvent,
  repoDoneEvent,
  repoFailedEvent,
  snapshotRemovedEvent,
  copyDoneEvent,
  copyFailedEvent,
  orphanRemovedEvent,
  jobEndEvent,
  resultEvent,
]);

export type AgentEvent = z.infer<typeof agentEvent>;
export type CheckEvent = z.infer<typeof checkEvent>;
export type ResultEvent = z.infer<typeof resultEvent>;
