// DESIGN §2's status list, row by row, decided from facts built through the protocol's own schemas.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { agentPlan, type AgentCommand } from "../../../src/agent/plan-lines.js";
import { resultEvent, type ResticFailureCode, type ResultEvent } from "../../../src/agent/protocol.js";
import { buildPlan } from "../../../src/plan/build-plan.js";
import type { Check, RunStatus } from "../../../src/report/report-schema.js";
import { HostError } from "../../../src/errors.js";
import {
  decideCutShort,
  decideHostOutcome,
  decideJobs,
  type Warning,
} from "../../../src/run/host-outcome.js";
import { RESTIC_FAILURE_HINTS } from "../../../src/run/hints.js";
import { trackJobs, type TrackedCommand } from "../../../src/run/job-tracker.js";
import { agentEventOf, type AgentEventFields } from "../../helpers/agent-event.js";

const dir = mkdtempSync(join(tmpdir(), "rlvm-outcome-"));
writeFileSync(
  join(dir, "inventory.toml"),
  '[defaults]\nconfig = "db1.toml"\nknown_hosts = "known_hosts"\n[hosts.db1]\n',
);
writeFileSync(
  join(dir, "db1.toml"),
  `[logical_volume_nonroot.data]
vg_name = "vg0"
lv_name = "lv_data"
snapshot_size = "1G"
backup_source_path = "/data"
[[logical_volume_nonroot.data.repositories]]
repo_path = "/srv/backup/a"
password_file = "/etc/pw"
prune_keep_daily = 7
  [[logical_volume_nonroot.data.repositories.copy_to]]
  repo = "/srv/backup/copy"
  password_file = "/etc/pw"
[[logical_volume_nonroot.data.repositories]]
repo_path = "/srv/backup/b"
password_file = "/etc/pw"
[standard_path.etc]
backup_source_path = "/etc"
[[standard_path.etc.repositories]]
repo_path = "/srv/backup/a"
password_file = "/etc/pw"
prune_keep_daily = 7
`,
);
writeFileSync(join(dir, "known_hosts"), "");

const summary = {
  snapshot_id: "0123456789abcdef",
  files_new: 1,
  files_changed: 0,
  files_unmodified: 0,
  data_added: 10,
  total_duration: 1,
};
const repoDone = (job: string, repo: string, exit_code = 0): AgentEventFields => ({
  event: "repo_done",
  job,
  repo,
  exit_code,
  duration_ms: 5,
  summary,
});
const repoFailed = (job: string, repo: string, code: ResticFailureCode | null = null): AgentEventFields => ({
  event: "repo_failed",
  job,
  repo,
  exit_code: 1,
  duration_ms: 5,
  message: "restic backup failed (exit 1): boom",
  code,
});
const snapshotRemoved = (cow: number | null, invalid = false): AgentEventFields => ({
  event: "snapshot_removed",
  job: "data",
  snapshot: "vg0/lv_data_rlvm_x",
  lifetime_ms: 1000,
  cow_peak_percent: cow,
  invalid,
});
/** Every repository of both jobs backed up, the snapshot gone at 10 % COW. */
const allBackedUp: AgentEventFields[] = [
  { event: "job_start", job: "data" },
  { event: "snapshot_created", job: "data", snapshot: "vg0/lv_data_rlvm_x" },
  repoDone("data", "r1"),
  repoDone("data", "r2"),
  snapshotRemoved(10),
  { event: "job_end", job: "data" },
  { event: "job_start", job: "etc" },
  repoDone("etc", "r3"),
  { event: "job_end", job: "etc" },
  { event: "copy_done", job: "data", copy: "c1", duration_ms: 5 },
];

type SampleFields = Partial<AgentEventFields & { event: "restore_sample" }>;
/** A restore_sample event of job data (from r1) or etc (from r3): 5 of 9 files sampled, all matched. */
const restoreSample = (job: string, extra: SampleFields = {}): AgentEventFields =>
  ({
    event: "restore_sample",
    job,
    repo: job === "data" ? "r1" : "r3",
    snapshot: "1a2b3c4d",
    candidates: 9,
    sampled: 5,
    matched: 5,
    changed: 0,
    mismatched: 0,
    missing: 0,
    mismatch_paths: [],
    changed_paths: [],
    missing_paths: [],
    sampled_paths: ["/a", "/b", "/c", "/d", "/e"],
    duration_ms: 9,
    message: "",
    ...extra,
  }) as AgentEventFields;

/** The outcome of a run the agent finished, from what TRACKER collected (verify: its failed checks too). */
function finished(command: "backup" | "verify", tracker: ReturnType<typeof trackJobs>) {
  const outcome = decideHostOutcome({
    command,
    agentResult: resultEvent.parse({ v: 2, event: "result", code: null, message: "m" }),
    jobs: tracker.jobs,
    initial: "skipped",
    checks: [],
    hostWarnings: [],
    cowWarnPercent: 70,
    ...(command === "verify" ? { failedChecks: tracker.failedChecks() } : {}),
  });
  return { outcome, jobs: tracker.jobs };
}

interface Scenario {
  command?: AgentCommand;
  tracked?: TrackedCommand | null;
  initial?: RunStatus;
  events?: AgentEventFields[];
  code?: string | null;
  checks?: Check[];
  maxAgeS?: number | null;
}

function decide(scenario: Scenario) {
  const command = scenario.command ?? "backup";
  const initial = scenario.initial ?? "skipped";
  const [hostPlan] = buildPlan(join(dir, "inventory.toml")).hosts;
  if (hostPlan === undefined) throw new Error("no host");
  const plan = agentPlan(hostPlan, command, "run1");
  const untracked = command === "preflight" || command === "ping" || command === "install";
  const tracked = scenario.tracked !== undefined ? scenario.tracked : untracked ? null : command;
  const tracker = tracked === null ? null : trackJobs(hostPlan, plan, tracked, initial);
  const hostWarnings: Warning[] = [];
  for (const input of scenario.events ?? allBackedUp) {
    const warning = tracker?.apply(agentEventOf(input)) ?? null;
    if (warning !== null) hostWarnings.push(warning);
    const event = agentEventOf(input);
    if (event.event === "warning") hostWarnings.push({ code: event.code, message: event.message });
  }
  tracker?.finish(new Date("2026-12-01T12:00:00Z"), scenario.maxAgeS ?? null);
  const jobs = tracker?.jobs ?? [];
  const outcome = decideHostOutcome({
    command,
    agentResult: resultEvent.parse({ v: 2, event: "result", code: scenario.code ?? null, message: "m" }),
    jobs,
    initial,
    checks: scenario.checks ?? [],
    hostWarnings,
    cowWarnPercent: 70,
  });
  return {
    status: outcome.status,
    code: outcome.error?.code ?? null,
    message: outcome.error?.message ?? null,
    hint: outcome.error?.hint ?? null,
    jobs: outcome.jobStatuses,
    warnings: outcome.warnings.map((w) => w.code),
  };
}

const check = (name: string, ok: boolean): Check => ({
  name,
  ok,
  detail: "d",
  hint: ok ? "" : "h",
  code: null,
});

describe("backup", () => {
  it("ok: every repository and copy done", () => {
    expect(decide({})).toMatchObject({ status: "ok", code: null, jobs: ["ok", "ok"], warnings: [] });
  });

  it("partial: restic exit 3 (some files unreadable)", () => {
    const events = allBackedUp.map((e) =>
      e.event === "repo_done" && e.repo === "r2" ? repoDone("data", "r2", 3) : e,
    );
    expect(decide({ events })).toMatchObject({ status: "partial", code: null, jobs: ["partial", "ok"] });
  });

  it("failed: one repository failed (the others were backed up), with the job's reason", () => {
    const events = allBackedUp.map((e) =>
      e.event === "repo_done" && e.repo === "r2" ? repoFailed("data", "r2") : e,
    );
    expect(decide({ events })).toMatchObject({
      status: "failed",
      code: "backup_failed",
      message: "1 of 2 jobs failed",
      jobs: ["failed", "ok"],
      warnings: ["job_failed"],
    });
  });

  it("failed repositories that share restic's precise code: the host's hint is that code's", () => {
    const failed = (repo: string, code: ResticFailureCode | null) =>
      allBackedUp.map((e) =>
        e.event === "repo_done" && e.repo === repo ? repoFailed("data", repo, code) : e,
      );
    const locked = decide({ events: failed("r2", "repo_locked") });
    expect(locked).toMatchObject({
      status: "failed",
      code: "backup_failed",
      hint: RESTIC_FAILURE_HINTS.repo_locked,
    });
    expect(decide({ events: failed("r2", null) }).hint).toMatch(/see the failed repositories below/);
  });

  it("partial: a copy failed while every backup succeeded", () => {
    const events = allBackedUp.map((e) =>
      e.event === "copy_done"
        ? ({
            event: "copy_failed",
            job: "data",
            copy: "c1",
            duration_ms: 5,
            message: "x",
            code: null,
          } as const)
        : e,
    );
    expect(decide({ events })).toMatchObject({ status: "partial", code: null, jobs: ["ok", "ok"] });
  });

  it("partial: COW use at or above snapshot_cow_warn_percent; ok below it", () => {
    const at = (cow: number) =>
      decide({ events: allBackedUp.map((e) => (e.event === "snapshot_removed" ? snapshotRemoved(cow) : e)) });
    expect(at(70)).toMatchObject({ status: "partial", warnings: ["cow_high"], jobs: ["ok", "ok"] });
    expect(at(69.9)).toMatchObject({ status: "ok", warnings: [] });
  });

  it("an overflowed snapshot: failed when a backup read from it was discarded, partial when all were complete", () => {
    const overflowed = allBackedUp.map((e) =>
      e.event === "snapshot_removed" ? snapshotRemoved(100, true) : e,
    );
    expect(decide({ events: overflowed })).toMatchObject({
      status: "partial",
      jobs: ["partial", "ok"],
      warnings: ["snapshot_overflow"],
    });
    const discarded = [
      ...overflowed.slice(0, 4),
      repoFailed("data", "r2"), // restic was still reading when LVM invalidated the snapshot
      ...overflowed.slice(4),
    ];
    expect(decide({ events: discarded })).toMatchObject({
      status: "failed",
      code: "backup_failed",
      jobs: ["failed", "ok"],
      warnings: ["job_failed"],
    });
  });

  it("partial: a leftover of an earlier run removed, or any warning from the host", () => {
    const orphan: AgentEventFields = { event: "orphan_removed", kind: "snapshot", name: "vg0/old" };
    expect(decide({ events: [orphan, ...allBackedUp] })).toMatchObject({ status: "partial" });
    const warning: AgentEventFields = { event: "warning", code: "remount_failed", message: "x" };
    expect(decide({ events: [...allBackedUp, warning] })).toMatchObject({ status: "partial" });
  });

  it("failed: the agent stopped with a code of the contract, with that code's hint", () => {
    expect(decide({ events: [], code: "locked" })).toMatchObject({
      status: "failed",
      code: "locked",
      hint: expect.stringMatching(/another run holds this host's lock/),
      jobs: ["skipped", "skipped"],
    });
    expect(decide({ events: [], code: "preflight", checks: [check("lv:data", false)] })).toMatchObject({
      status: "failed",
      code: "preflight",
      hint: "fix the failed checks: lv:data",
    });
  });

  it("a run cut short: a job half done is failed, a job never started stays skipped", () => {
    const [hostPlan] = buildPlan(join(dir, "inventory.toml")).hosts;
    if (hostPlan === undefined) throw new Error("no host");
    const tracker = trackJobs(hostPlan, agentPlan(hostPlan, "backup", "run1"), "backup", "skipped");
    tracker.apply(agentEventOf(repoDone("data", "r1")));
    const decided = decideJobs({
      command: "backup",
      jobs: tracker.jobs,
      initial: "skipped",
      cowWarnPercent: 70,
      finished: false,
    });
    expect(decided.jobStatuses).toEqual(["failed", "skipped"]);
  });

  it("a run cut short: the host has the error that cut it short, with that error's status, and the jobs' warnings", () => {
    const [hostPlan] = buildPlan(join(dir, "inventory.toml")).hosts;
    if (hostPlan === undefined) throw new Error("no host");
    const tracker = trackJobs(hostPlan, agentPlan(hostPlan, "backup", "run1"), "backup", "skipped");
    for (const event of allBackedUp.slice(0, 3)) tracker.apply(agentEventOf(event));
    tracker.apply(agentEventOf(snapshotRemoved(90)));
    const facts = { command: "backup", jobs: tracker.jobs, initial: "skipped", cowWarnPercent: 70 } as const;
    // run_timeout: the code is timeout, whose own status is unreachable; the error says failed.
    const expired = new HostError("timeout", "the run did not finish", "raise run_timeout", false, "failed");
    const decided = decideCutShort(facts, expired);
    expect(decided.error).toBe(expired);
    expect(decided).toMatchObject({
      status: "failed",
      jobStatuses: ["failed", "skipped"],
      warnings: [{ code: "cow_high" }],
    });
    expect(decideCutShort(facts, new HostError("timeout", "m", "h")).status).toBe("unreachable");
  });

  it("backup --dry-run: the jobs stay planned; a failed check fails the host", () => {
    expect(decide({ command: "preflight", tracked: "backup", initial: "planned", events: [] })).toMatchObject(
      {
        status: "ok",
        jobs: ["planned", "planned"],
      },
    );
  });
});

describe("check", () => {
  it("ok when every check passed; failed (preflight) naming each failed check", () => {
    expect(decide({ command: "preflight", events: [], checks: [check("bash", true)] })).toMatchObject({
      status: "ok",
    });
    expect(
      decide({ command: "preflight", events: [], checks: [check("bash", true), check("repo:x", false)] }),
    ).toMatchObject({
      status: "failed",
      code: "preflight",
      message: "1 of 2 checks failed: repo:x",
      hint: "fix the failed checks: repo:x",
    });
  });
});

describe("prune", () => {
  const forget = (job: string, repo: string): AgentEventFields => ({
    event: "prune_done",
    job,
    repo,
    dry_run: false,
    skipped: false,
    forget: [{ keep: [{ short_id: "aaaa" }], remove: [{ short_id: "bbbb" }] }],
    duration_ms: 10,
  });
  const noRetention = (job: string, repo: string): AgentEventFields => ({
    event: "prune_done",
    job,
    repo,
    dry_run: false,
    skipped: true,
    forget: [],
    duration_ms: 0,
  });
  const pruned = [
    forget("data", "r1"),
    noRetention("data", "c1"),
    noRetention("data", "r2"),
    forget("etc", "r3"),
  ];

  it("ok: every forget done, entries without retention skipped", () => {
    expect(decide({ command: "prune", events: pruned })).toMatchObject({ status: "ok", jobs: ["ok", "ok"] });
  });

  it("failed (prune_failed): a forget failed, or the repository's prune", () => {
    const failedForget: AgentEventFields = {
      event: "prune_failed",
      job: "etc",
      repo: "r3",
      dry_run: false,
      message: "restic forget failed (exit 1): locked",
      duration_ms: 10,
      code: null,
    };
    expect(decide({ command: "prune", events: [...pruned.slice(0, 3), failedForget] })).toMatchObject({
      status: "failed",
      code: "prune_failed",
      jobs: ["ok", "failed"],
    });
    const failedPrune: AgentEventFields = {
      event: "repo_pruned",
      repo: "r1",
      ok: false,
      duration_ms: 10,
      message: "x",
      code: null,
    };
    // r1 and r3 are one repository: its prune failing fails both jobs' entries.
    expect(decide({ command: "prune", events: [...pruned, failedPrune] })).toMatchObject({
      status: "failed",
      code: "prune_failed",
      jobs: ["failed", "failed"],
    });
  });

  it("a new host with no snapshot in a repository yet: nothing to forget is success", () => {
    const empty = pruned.map((e) => (e.event === "prune_done" && !e.skipped ? { ...e, forget: [] } : e));
    expect(decide({ command: "prune", events: empty })).toMatchObject({ status: "ok" });
  });
});

describe("status", () => {
  const snapshots = (job: string, repo: string, time: string): AgentEventFields => ({
    event: "latest",
    job,
    repo,
    snapshots: [{ time, short_id: "abcd1234", id: "abcd1234ef" }],
  });
  const fresh = "2026-12-01T11:00:00Z";
  const read = [
    snapshots("data", "r1", fresh),
    snapshots("data", "c1", fresh),
    snapshots("data", "r2", fresh),
    snapshots("etc", "r3", fresh),
  ];

  it("ok: every repository read", () => {
    expect(decide({ command: "status", events: read, maxAgeS: 7200 })).toMatchObject({
      status: "ok",
      jobs: ["ok", "ok"],
    });
  });

  it("failed (stale): no snapshot newer than --max-age", () => {
    expect(decide({ command: "status", events: read, maxAgeS: 60 })).toMatchObject({
      status: "failed",
      code: "stale",
      jobs: ["failed", "failed"],
    });
  });

  it("failed (stale) with a warning: a snapshot time that does not parse, or lies in the future", () => {
    for (const time of ["not a time", "2099-01-01T00:00:00Z"]) {
      const events = [...read.slice(0, 3), snapshots("etc", "r3", time)];
      expect(decide({ command: "status", events, maxAgeS: 7200 })).toMatchObject({
        status: "failed",
        code: "stale",
        message: "no snapshot newer than --max-age for etc in /srv/backup/a",
        jobs: ["ok", "failed"],
        warnings: ["snapshot_time_invalid"],
      });
    }
  });

  it("a forged future snapshot next to a real one is the newest, and stale", () => {
    const events: AgentEventFields[] = [
      ...read.slice(0, 3),
      {
        event: "latest",
        job: "etc",
        repo: "r3",
        snapshots: [
          { time: fresh, short_id: "aaaa1111", id: "aaaa1111ff" },
          { time: "2099-01-01T00:00:00Z", short_id: "bbbb2222", id: "bbbb2222ff" },
        ],
      },
    ];
    expect(decide({ command: "status", events, maxAgeS: 7200 })).toMatchObject({
      status: "failed",
      code: "stale",
      warnings: ["snapshot_time_invalid"],
    });
  });

  it("a host clock a little ahead of ours (within CLOCK_SKEW_S) is not a future snapshot", () => {
    const events = [...read.slice(0, 3), snapshots("etc", "r3", "2026-12-01T12:01:00Z")];
    expect(decide({ command: "status", events, maxAgeS: 7200 })).toMatchObject({
      status: "ok",
      jobs: ["ok", "ok"],
      warnings: [],
    });
  });

  it("failed (repo_unreadable): a repository could not be read", () => {
    const unreadable: AgentEventFields = {
      event: "latest_failed",
      job: "etc",
      repo: "r3",
      message: "x",
      code: null,
    };
    expect(decide({ command: "status", events: [...read.slice(0, 3), unreadable] })).toMatchObject({
      status: "failed",
      code: "repo_unreadable",
      message: "1 of 4 repositories could not be read",
      jobs: ["ok", "failed"],
    });
  });
});

describe("the contract's codes", () => {
  it("an unknown agent code is a protocol error, not a cast", () => {
    expect(resultEvent.safeParse({ v: 2, event: "result", code: "made_up", message: "m" }).success).toBe(
      false,
    );
  });

  it("codes named like Object.prototype's keys are unknown codes, to the parser and to the outcome", () => {
    for (const code of ["__proto__", "constructor", "toString", "hasOwnProperty"]) {
      expect(resultEvent.safeParse({ v: 2, event: "result", code, message: "m" }).success).toBe(false);
      const outcome = decideHostOutcome({
        command: "preflight",
        agentResult: { v: 2, event: "result", code, message: "m" } as unknown as ResultEvent,
        jobs: [],
        initial: "skipped",
        checks: [],
        hostWarnings: [],
        cowWarnPercent: 70,
      });
      expect(outcome).toMatchObject({
        status: "failed",
        error: { code: "agent_protocol", status: "failed" },
      });
    }
  });
});

describe("verify: the restore drill per job, the checks this host ran", () => {
  const [hostPlan] = buildPlan(join(dir, "inventory.toml")).hosts;
  if (hostPlan === undefined) throw new Error("no host");
  const plan = agentPlan(hostPlan, "verify", "run1", { verify: { subset: "1/7", restoreSample: 5 } });
  const drill = (job: string, extra: SampleFields = {}) => agentEventOf(restoreSample(job, extra));
  const run = (events: ReturnType<typeof agentEventOf>[], failedChecks: string[] = []) => {
    const tracker = trackJobs(hostPlan, plan, "verify", "skipped", 5);
    for (const event of events) tracker.apply(event);
    for (const [id, ok] of [
      ["r1", !failedChecks.includes("r1")],
      ["r3", true],
    ] as const)
      tracker.apply(
        agentEventOf({
          event: "repo_checked",
          repo: id,
          ok,
          duration_ms: 3,
          subset: "1/7",
          message: ok ? "" : "restic check failed (exit 1): Fatal: repository contains errors",
          errors: null,
          broken_packs: [],
        }),
      );
    return finished("verify", tracker);
  };

  it("a drill restores from the job's first repository; changed files leave the job ok", () => {
    const { outcome, jobs } = run([
      drill("data", { matched: 4, changed: 1, changed_paths: ["/c"] }),
      drill("etc"),
    ]);
    expect(outcome).toMatchObject({ status: "ok", error: null, jobStatuses: ["ok", "ok"] });
    expect(jobs[0]?.restore).toMatchObject({ repo: "/srv/backup/a", changed_since_backup: 1, status: "ok" });
  });

  it("a mismatch or a file not restored fails the job and the host (verify_failed), naming the files", () => {
    const { outcome } = run([
      drill("data", { matched: 4, mismatched: 1, mismatch_paths: ["/d"] }),
      drill("etc", { matched: 4, missing: 1, missing_paths: ["/e"] }),
    ]);
    expect(outcome).toMatchObject({ status: "failed", jobStatuses: ["failed", "failed"] });
    expect(outcome.error?.code).toBe("verify_failed");
    expect(outcome.error?.message).toContain(
      "restore drill of job data: 1 file(s) differ from the snapshot with the same size and mtime: /d",
    );
    expect(outcome.error?.message).toContain(
      "restore drill of job etc: 1 sampled file(s) were not restored: /e",
    );
  });

  it("a failed check fails the host that ran it, with restic's reason, even when every drill matched", () => {
    const { outcome } = run([drill("data"), drill("etc")], ["r1"]);
    expect(outcome).toMatchObject({ status: "failed", jobStatuses: ["ok", "ok"] });
    expect(outcome.error?.message).toBe(
      "restic check of /srv/backup/a: restic check failed (exit 1): Fatal: repository contains errors",
    );
  });
});

describe("backup --verify-sample: the sample of each job's new snapshot", () => {
  const [hostPlan] = buildPlan(join(dir, "inventory.toml")).hosts;
  if (hostPlan === undefined) throw new Error("no host");
  const plan = agentPlan(hostPlan, "backup", "run1", { verifySample: 5 });
  const sample = (job: string, extra: SampleFields = {}) =>
    restoreSample(job, { duration_ms: 400, ...extra });
  const run = (events: AgentEventFields[]) => {
    const tracker = trackJobs(hostPlan, plan, "backup", "skipped", 5);
    for (const event of events) tracker.apply(agentEventOf(event));
    return finished("backup", tracker);
  };
  const withSamples = (data: AgentEventFields, etc: AgentEventFields) => [
    ...allBackedUp.slice(0, 4),
    data,
    ...allBackedUp.slice(4, 8),
    etc,
    ...allBackedUp.slice(8),
  ];

  it("is asked for in the plan only when set, with its number of files", () => {
    expect(plan.lines).toContain("restore_sample 5");
    expect(agentPlan(hostPlan, "backup", "run1").lines.some((l) => l.startsWith("restore_sample"))).toBe(
      false,
    );
    expect(agentPlan(hostPlan, "backup", "run1", { verifySample: 0 }).lines.join("\n")).not.toContain(
      "restore_sample",
    );
  });

  it("matched: the jobs stay ok; an LV job's sample is against its LVM snapshot, which it kept mounted", () => {
    const { outcome, jobs } = run(withSamples(sample("data"), sample("etc")));
    expect(outcome).toMatchObject({ status: "ok", error: null, jobStatuses: ["ok", "ok"] });
    expect(jobs[0]?.restore).toMatchObject({
      repo: "/srv/backup/a",
      compared_with: "lvm_snapshot",
      matched: 5,
      snapshot_held_ms: 400,
      status: "ok",
    });
    expect(jobs[1]?.restore).toMatchObject({ compared_with: "live", snapshot_held_ms: null, status: "ok" });
  });

  it("a mismatch fails the job and the host (verify_sample_failed), naming the files, the backups written", () => {
    const { outcome, jobs } = run(
      withSamples(sample("data", { matched: 4, mismatched: 1, mismatch_paths: ["/data/d"] }), sample("etc")),
    );
    expect(outcome).toMatchObject({ status: "failed", jobStatuses: ["failed", "ok"] });
    expect(outcome.error?.code).toBe("verify_sample_failed");
    expect(outcome.error?.message).toBe(
      "1 of 2 jobs' backups were written, but their verify sample failed: job data: 1 file(s) differ from the LVM snapshot restic read them from: /data/d",
    );
    expect(jobs[0]?.repos.map((r) => r.status)).toEqual(["ok", "ok"]);
  });

  it("a backup that failed is the host's error; its sample, not run, is skipped", () => {
    const events = withSamples(
      sample("data"),
      sample("etc", { sampled: 0, matched: 0, message: "not run: no backup of this job was written" }),
    ).map((e) => (e.event === "repo_done" && e.repo === "r3" ? repoFailed("etc", "r3") : e));
    const { outcome, jobs } = run(events);
    expect(outcome.error?.code).toBe("backup_failed");
    expect(jobs[1]?.restore?.status).toBe("skipped");
  });

  it("a job whose repositories all succeeded but whose sample never came is failed", () => {
    const { outcome } = run(withSamples(sample("data"), { event: "job_end", job: "etc" }));
    expect(outcome).toMatchObject({ status: "failed", jobStatuses: ["ok", "failed"] });
    expect(outcome.error?.code).toBe("verify_sample_failed");
    expect(outcome.error?.message).toContain("job etc: the agent sent no sample");
  });
});
