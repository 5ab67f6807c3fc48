import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { agentPlan } from "../../../src/agent/plan-lines.js";
import { buildPlan } from "../../../src/plan/build-plan.js";
import { trackJobs } from "../../../src/run/job-tracker.js";
import { agentEventOf as event } from "../../helpers/agent-event.js";

const INVENTORY = join(import.meta.dirname, "../../../examples/single-host/inventory.toml");

function tracker() {
  const [hostPlan] = buildPlan(INVENTORY).hosts;
  if (hostPlan === undefined) throw new Error("the example has no host");
  const plan = agentPlan(hostPlan, "backup", "run1");
  const [repoId] = [...plan.repos.keys()];
  if (repoId === undefined) throw new Error("the example's plan has no repository");
  return { tracker: trackJobs(hostPlan, plan, "backup", "failed"), repoId };
}

const summary = {
  snapshot_id: "0123456789abcdef",
  files_new: 3,
  files_changed: 0,
  files_unmodified: 0,
  data_added: 100,
  total_duration: 1,
};

describe("trackJobs (backup)", () => {
  it("fills a repository from repo_done", () => {
    const { tracker: t, repoId } = tracker();
    t.apply(event({ event: "repo_done", job: "data", repo: repoId, exit_code: 0, duration_ms: 40, summary }));
    expect(t.jobs[0]?.repos[0]).toMatchObject({
      status: "ok",
      snapshot_id: "0123456789abcdef",
      files_new: 3,
    });
  });

  it("a repo_failed after repo_done (a backup of an overflowed snapshot, discarded) leaves no snapshot id", () => {
    const { tracker: t, repoId } = tracker();
    t.apply(event({ event: "repo_done", job: "data", repo: repoId, exit_code: 3, duration_ms: 40, summary }));
    t.apply(
      event({
        event: "repo_failed",
        job: "data",
        repo: repoId,
        exit_code: -1,
        duration_ms: 40,
        message:
          "the LVM snapshot overflowed while restic read it; its restic snapshot 01234567 was forgotten",
        code: null,
      }),
    );
    expect(t.jobs[0]?.repos[0]).toMatchObject({
      status: "failed",
      snapshot_id: null,
      duration_ms: 40,
      error: expect.stringMatching(/overflowed.*forgotten/),
    });
  });

  it("records that LVM invalidated the job's snapshot (the outcome decides what it means)", () => {
    const { tracker: t } = tracker();
    const removed = t.apply(
      event({
        event: "snapshot_removed",
        job: "data",
        snapshot: "vg0/lv_data_rlvm_run1",
        lifetime_ms: 900,
        cow_peak_percent: 100,
        invalid: true,
      }),
    );
    expect(removed).toBeNull();
    expect(t.jobs[0]?.snapshot).toEqual({
      name: "vg0/lv_data_rlvm_run1",
      lifetime_ms: 900,
      cow_peak_percent: 100,
      overflowed: true,
    });
    expect(t.apply(event({ event: "job_end", job: "data" }))).toBeNull();
    expect(t.jobs[0]?.status).toBe("failed"); // the initial status: only host-outcome.ts decides
  });
});

describe("trackJobs and ids from the host", () => {
  it("ids and job names such as __proto__ or constructor match nothing and change nothing", () => {
    const { tracker: t } = tracker();
    const before = JSON.stringify(t.jobs);
    for (const id of ["__proto__", "constructor", "toString"]) {
      expect(
        t.apply(event({ event: "repo_done", job: id, repo: id, exit_code: 0, duration_ms: 1, summary })),
      ).toBeNull();
      expect(
        t.apply(
          event({
            event: "repo_failed",
            job: id,
            repo: id,
            exit_code: 1,
            duration_ms: 1,
            message: "m",
            code: null,
          }),
        ),
      ).toBeNull();
      expect(t.apply(event({ event: "snapshot_created", job: id, snapshot: "s" }))).toBeNull();
      expect(t.apply(event({ event: "copy_done", job: id, copy: id, duration_ms: 1 }))).toBeNull();
      expect(t.apply(event({ event: "latest", job: id, repo: id, snapshots: [] }))).toBeNull();
    }
    expect(JSON.stringify(t.jobs)).toBe(before);
    expect(({} as Record<string, unknown>)["status"]).toBeUndefined();
  });
});
