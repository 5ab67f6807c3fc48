// [repositories]: which maintenance host runs what, checked against the ids the hosts read, and how
// its outcome lands in the report.
import { afterEach, describe, expect, it } from "vitest";
import { buildPlan } from "../../../src/plan/build-plan.js";
import type { RepositoryUse } from "../../../src/report/repositories.js";
import { applyMaintenance, scheduleMaintenance } from "../../../src/run/maintain-repositories.js";
import { hostResult, jobResult } from "../../helpers/report-fixture.js";
import { writeTree } from "../../helpers/run-cli.js";

const URL = "rest:https://vault.example/fleet/";
const ID_A = "a".repeat(64);
const ID_B = "b".repeat(64);
let cleanup = () => {};
afterEach(() => cleanup());

function plan() {
  const tree = writeTree({
    "inventory.toml": `[hosts.web1]\nconfig = "host.toml"\n[hosts.web2]\nconfig = "host.toml"\n[hosts.vault]\n
[repositories.fleet]\nurl = "${URL}"\nmaintenance_host = "vault"\npassword_file = "/etc/pw"\n`,
    "host.toml": `[standard_path.data]\nbackup_source_path = "/data"\n
[[standard_path.data.repositories]]\nrepo_path = "${URL}"\npassword_file = "/etc/restic/pw"\nprune_keep_last = 2\n`,
  });
  cleanup = tree.cleanup;
  return buildPlan(`${tree.dir}/inventory.toml`);
}

const use = (host: string, id: string | null): RepositoryUse => ({
  host,
  job: "data",
  label: URL,
  local: false,
  location: URL.replace(/\/$/, ""),
  id,
  entry: "r1",
  retention: true,
  forget: null,
  prune: null,
  read: null,
});

const withJob = (name: string) =>
  hostResult(name, "ok", {
    jobs: [
      jobResult({
        prunes: [
          {
            repo: URL,
            status: "skipped",
            kept: null,
            removed: null,
            removed_ids: [],
            dry_run: false,
            error: "no retention configured: never pruned",
            error_code: null,
          },
        ],
      }),
    ],
  });

describe("scheduleMaintenance", () => {
  it("gives the maintenance host one forget per host and job, with the id the hosts read", () => {
    const schedule = scheduleMaintenance(plan(), [use("web1", ID_A), use("web2", null)]);
    expect(schedule.refused).toEqual([]);
    expect(schedule.runs.map((r) => [r.hostPlan.host.name, r.hostPlan.jobs.length])).toEqual([["vault", 0]]);
    expect(schedule.runs[0]?.entries).toEqual([
      {
        id: "m1",
        url: URL,
        password_file: "/etc/pw",
        repositoryId: ID_A,
        forgets: [
          { host: "web1", job: "data", keep: { last: 2, daily: 0, weekly: 0, monthly: 0, yearly: 0 } },
          { host: "web2", job: "data", keep: { last: 2, daily: 0, weekly: 0, monthly: 0, yearly: 0 } },
        ],
      },
    ]);
  });

  it("refuses a repository no host read, or whose url opens two repositories, and fails the hosts using it", () => {
    for (const [uses, reason] of [
      [[use("web1", null), use("web2", null)], /no selected host opened \[?repositories\.fleet/],
      [[use("web1", ID_A), use("web2", ID_B)], /opens 2 different repositories/],
    ] as const) {
      const fleetPlan = plan();
      const schedule = scheduleMaintenance(fleetPlan, [...uses]);
      expect(schedule.runs).toEqual([]);
      expect(schedule.refused).toHaveLength(1);
      const results = [withJob("web1"), hostResult("web2", "unreachable")];
      const applied = applyMaintenance(
        schedule,
        { results: new Map(), events: new Map() },
        { results, uses: [...uses], dryRun: false },
      );
      expect(applied.prunes).toEqual([]);
      const web1 = applied.results.find((r) => r.name === "web1");
      expect(web1?.status).toBe("failed");
      expect(web1?.error?.message).toMatch(reason);
      expect(web1?.jobs[0]?.prunes[0]).toMatchObject({ status: "failed" });
      // An unreachable host stays unreachable.
      expect(applied.results.find((r) => r.name === "web2")?.status).toBe("unreachable");
      expect(uses.every((u) => u.forget?.ok === false && u.forgetHost === "vault")).toBe(true);
    }
  });
});
