// [repositories]: which maintenance host runs what, checked against the ids the hosts read, and how
// its outcome lands in the report.
import { afterEach, describe, expect, it } from "vitest";
import { buildPlan } from "../../../src/plan/build-plan.js";
import type { RepositoryUse } from "../../../src/report/repositories.js";
import { PROTOCOL_VERSION } from "../../../src/agent/protocol.js";
import {
  applyMaintenance,
  forgetPreviews,
  plannedPrunes,
  scheduleMaintenance,
  schedulePrunes,
  type MaintenanceEvents,
} from "../../../src/run/maintain-repositories.js";
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

describe("schedulePrunes: repositories no maintenance host maintains", () => {
  const SHARED = "sftp:backup@store:/fleet";
  const OTHER = "rest:https://store.example/other/";
  const keep = (last: number) => ({ last, daily: 0, weekly: 0, monthly: 0, yearly: 0 });
  const previewed = { ok: true, duration_ms: 5, error: null };
  const previewFailed = { ok: false, duration_ms: 5, error: "restic forget failed (exit 1): wrong password" };
  function sharedPlan() {
    const repo = (url: string, last: number) =>
      `[[standard_path.data.repositories]]\nrepo_path = "${url}"\npassword_file = "/etc/restic/pw"\nprune_keep_last = ${last}\n`;
    const tree = writeTree({
      "inventory.toml": `[defaults]\nconfig = "{host}.toml"\n[hosts.web1]\n[hosts.web2]\nrestic_env_file = "/etc/restic/env"\n[hosts.web3]\n`,
      "web1.toml": `[standard_path.data]\nbackup_source_path = "/data"\n${repo(SHARED, 2)}${repo(OTHER, 2)}`,
      "web2.toml": `[standard_path.data]\nbackup_source_path = "/data"\n${repo(SHARED, 1)}${repo(OTHER, 3)}`,
      "web3.toml": `[standard_path.data]\nbackup_source_path = "/data"\n${repo(SHARED, 2)}${repo(OTHER, 2)}`,
    });
    cleanup = tree.cleanup;
    return buildPlan(`${tree.dir}/inventory.toml`);
  }
  const shared = (host: string, entry: string, id: string | null, forget: RepositoryUse["forget"]) => ({
    ...use(host, id),
    label: entry === "r1" ? SHARED : OTHER,
    location: entry === "r1" ? SHARED : OTHER,
    entry,
    forget,
  });

  it("maintains each repository once, on a host whose preview worked, with the forget of every host whose preview worked", () => {
    const fleetPlan = sharedPlan();
    const uses = [
      shared("web1", "r1", ID_A, previewed),
      shared("web2", "r1", ID_A, previewed),
      shared("web3", "r1", ID_A, previewFailed),
      shared("web1", "r2", ID_B, previewed),
      shared("web2", "r2", ID_B, previewed),
      shared("web3", "r2", null, null),
    ];
    const schedule = schedulePrunes(fleetPlan.hosts, uses, new Set());
    expect(schedule.refused).toEqual([]);
    // The repositories are spread: web1 has one, so the next goes to web2 (with its own env file).
    expect(schedule.runs.map((r) => [r.hostPlan.host.name, r.hostPlan.jobs.length, r.envFile])).toEqual([
      ["web1", 0, null],
      ["web2", 0, "/etc/restic/env"],
    ]);
    expect(schedule.runs.map((r) => r.entries)).toEqual([
      [
        {
          id: "m1",
          url: SHARED,
          password_file: "/etc/restic/pw",
          repositoryId: ID_A,
          forgets: [
            { host: "web1", job: "data", keep: keep(2) },
            { host: "web2", job: "data", keep: keep(1) },
          ],
        },
      ],
      [
        {
          id: "m1",
          url: OTHER,
          password_file: "/etc/restic/pw",
          repositoryId: ID_B,
          forgets: [
            { host: "web1", job: "data", keep: keep(2) },
            { host: "web2", job: "data", keep: keep(3) },
          ],
        },
      ],
    ]);
    expect(plannedPrunes(schedule).map((p) => [p.repositoryId, p.host, p.status])).toEqual([
      [ID_A, "web1", "planned"],
      [ID_B, "web2", "planned"],
    ]);
    // A repository a maintenance host maintains is left to it.
    expect(schedulePrunes(fleetPlan.hosts, uses, new Set([ID_A, ID_B])).runs).toEqual([]);
  });

  it("maintains nothing where no preview worked", () => {
    const fleetPlan = sharedPlan();
    const uses = [shared("web1", "r1", ID_A, previewFailed), shared("web2", "r1", ID_A, null)];
    expect(schedulePrunes(fleetPlan.hosts, uses, new Set()).runs).toEqual([]);
  });

  it("splits one batched forget per host; a host not forgotten for keeps no preview as its forget", () => {
    const fleetPlan = sharedPlan();
    const uses = [
      shared("web1", "r1", ID_A, previewed),
      shared("web2", "r1", ID_A, previewed),
      shared("web3", "r1", null, previewed),
    ];
    const schedule = schedulePrunes(fleetPlan.hosts, uses, new Set());
    const entry = (status: "ok" | "skipped") => ({
      repo: SHARED,
      status,
      kept: status === "ok" ? 3 : null,
      removed: status === "ok" ? 1 : null,
      removed_ids: status === "ok" ? ["s0"] : [],
      dry_run: true,
      error: null,
      error_code: null,
    });
    const results = ["web1", "web2", "web3"].map((name) =>
      hostResult(name, "ok", { jobs: [jobResult({ prunes: [entry("ok")] })] }),
    );
    forgetPreviews(results, uses);
    expect(uses.map((u) => u.forget)).toEqual([null, null, null]);
    const snapshots = (...ids: string[]) => ids.map((short_id) => ({ short_id }));
    const events: MaintenanceEvents = {
      forgets: [
        {
          v: PROTOCOL_VERSION,
          event: "forget_for_done",
          repo: "m1",
          for_hosts: ["web1", "web2"],
          job: "data",
          ok: true,
          dry_run: false,
          forget: [
            { host: "web1", keep: snapshots("k1", "k2"), remove: snapshots("x1") },
            { host: "web2", keep: snapshots("k3"), remove: snapshots("x2", "x3") },
          ],
          duration_ms: 40,
          message: "",
        },
      ],
      prunes: [
        {
          v: PROTOCOL_VERSION,
          event: "repo_pruned",
          repo: "m1",
          ok: true,
          duration_ms: 90,
          message: "",
          code: null,
        },
      ],
    };
    const applied = applyMaintenance(
      schedule,
      { results: new Map([["web1", hostResult("web1", "ok")]]), events: new Map([["web1", events]]) },
      { results, uses, dryRun: false },
    );
    const prunesOf = (name: string) => applied.results.find((r) => r.name === name)?.jobs[0]?.prunes[0];
    expect(prunesOf("web1")).toMatchObject({
      status: "ok",
      kept: 2,
      removed: 1,
      removed_ids: ["x1"],
      dry_run: false,
    });
    expect(prunesOf("web2")).toMatchObject({
      status: "ok",
      kept: 1,
      removed: 2,
      removed_ids: ["x2", "x3"],
      dry_run: false,
    });
    // web3 read no id: nobody forgot for it, and its preview is not reported as a forget.
    expect(prunesOf("web3")).toMatchObject({ status: "skipped", removed: null, dry_run: false });
    expect(uses.map((u) => [u.host, u.forget?.ok ?? null, u.forgetHost ?? null])).toEqual([
      ["web1", true, null],
      ["web2", true, "web1"],
      ["web3", null, null],
    ]);
    expect(applied.prunes).toEqual([
      { action: "prune", repositoryId: ID_A, host: "web1", status: "ok", duration_ms: 90, error: null },
    ]);
  });
});
