// status, fleet-wide (issue 14 point 4): which host reads which repository, what nobody read, and the
// split of one read to every host and job that uses the repository.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildPlan } from "../../../src/plan/build-plan.js";
import type { RepositoryUse, SnapshotRead } from "../../../src/report/repositories.js";
import type { HostResult } from "../../../src/report/report-schema.js";
import {
  assignMissingReads,
  assignReads,
  settleStatusHost,
  statusPlans,
  splitReads,
  withPhase2Reads,
  type LatestFill,
  type ReadAssignment,
} from "../../../src/run/status-reads.js";
import { buildReport } from "../../../src/report/build-report.js";

const dir = mkdtempSync(join(tmpdir(), "rlvm-status-reads-"));
const repo = (url: string) => `[[standard_path.data.repositories]]
repo_path = "${url}"
password_file = "/etc/pw"
`;
writeFileSync(
  join(dir, "inventory.toml"),
  '[defaults]\nconfig = "{host}.toml"\nknown_hosts = "known_hosts"\n[hosts.h1]\n[hosts.h2]\n[hosts.h3]\n[hosts.h4]\n',
);
writeFileSync(join(dir, "known_hosts"), "");
const REST = "rest:http://vault:8000/shared/";
const SFTP = "sftp:vault:/srv/s";
writeFileSync(
  join(dir, "h1.toml"),
  `[standard_path.data]\nbackup_source_path = "/data"\n${repo("/srv/local")}${repo(REST)}${repo(SFTP)}`,
);
// The REST URL without its trailing slash is the same place; the SFTP one is h2's etc job's.
writeFileSync(
  join(dir, "h2.toml"),
  `[standard_path.data]\nbackup_source_path = "/data"\n${repo("/srv/local")}${repo(REST.slice(0, -1))}
[standard_path.etc]
backup_source_path = "/etc"
[[standard_path.etc.repositories]]
repo_path = "${SFTP}"
password_file = "/etc/pw"
`,
);
writeFileSync(
  join(dir, "h3.toml"),
  `[standard_path.data]\nbackup_source_path = "/data"\n${repo("/srv/local")}${repo(REST)}`,
);
// Another spelling of the SFTP repository: the plan cannot know it is the same one.
writeFileSync(
  join(dir, "h4.toml"),
  `[standard_path.data]\nbackup_source_path = "/data"\n${repo("/srv/local")}${repo("sftp://vault//srv/s")}`,
);
const plan = buildPlan(join(dir, "inventory.toml"));
const planOf = (name: string) => {
  const found = plan.hosts.find((h) => h.host.name === name);
  if (found === undefined) throw new Error(name);
  return found;
};
/** A host's plan and its status plan, as settleStatusHost takes them. */
const plansOf = (name: string) => {
  const status = statusPlans([planOf(name)]).get(name);
  if (status === undefined) throw new Error(name);
  return [planOf(name), status] as const;
};

const asObject = (assignment: ReadAssignment) =>
  Object.fromEntries([...assignment].map(([host, reads]) => [host, Object.fromEntries(reads)]));

const ID_REST = "1".repeat(64);
const ID_SFTP = "2".repeat(64);
const idOfLocal = (host: string) => String(Number(host.slice(1)) + 2).repeat(64);

/** The uses of the fleet above as phase 1 would record them (ids as read), before any read. */
function uses(): RepositoryUse[] {
  const use = (host: string, entry: string, job: string, location: string, id: string | null) => ({
    host,
    job,
    label: location,
    local: location.startsWith("/"),
    location,
    id,
    entry,
    retention: false,
    forget: null,
    prune: null,
    read: null,
  });
  return [
    use("h1", "r1", "data", "/srv/local", idOfLocal("h1")),
    use("h1", "r2", "data", REST.slice(0, -1), ID_REST),
    use("h1", "r3", "data", SFTP, ID_SFTP),
    use("h2", "r1", "data", "/srv/local", idOfLocal("h2")),
    use("h2", "r2", "data", REST.slice(0, -1), ID_REST),
    use("h2", "r3", "etc", SFTP, ID_SFTP),
    use("h3", "r1", "data", "/srv/local", idOfLocal("h3")),
    use("h3", "r2", "data", REST.slice(0, -1), ID_REST),
    use("h4", "r1", "data", "/srv/local", idOfLocal("h4")),
    use("h4", "r2", "data", "sftp://vault//srv/s", ID_SFTP),
  ];
}

const snapshot = (host: string, job: string, time: string, id: string) => ({
  time,
  id: `${id}${"0".repeat(56)}`,
  short_id: id,
  hostname: host,
  tags: ["rlvm-fleet", `job:${job}`],
});
const ok = (snapshots: SnapshotRead["snapshots"], whole = true): SnapshotRead => ({
  ok: true,
  duration_ms: 7,
  error: null,
  snapshots,
  whole,
});
const failed = (error: string, whole = true): SnapshotRead => ({
  ok: false,
  duration_ms: 3,
  error,
  snapshots: [],
  whole,
});
const withRead = (all: RepositoryUse[], host: string, entry: string, read: SnapshotRead) =>
  all.map((u) => (u.host === host && u.entry === entry ? { ...u, read } : u));

function hostResult(name: string, status: HostResult["status"] = "ok", message?: string): HostResult {
  return {
    name,
    address: "127.0.0.1",
    status,
    error: message === undefined ? null : { code: "refused", message, hint: "h" },
    duration_ms: 10,
    facts: null,
    checks: [],
    warnings: [],
    jobs: [],
  };
}
const results = (...entries: HostResult[]) => new Map(entries.map((r) => [r.name, r]));

describe("assignReads (phase 1, from the plan)", () => {
  it("each host-local path on its host; each remote URL once, spread over the hosts that use it, with every job that uses it", () => {
    expect(asObject(assignReads(statusPlans(plan.hosts)))).toEqual({
      // REST: h1, h2 and h3 use it; h1 is first. SFTP: h1 has a read already, h2 has none.
      h1: { r1: ["data"], r2: ["data"] },
      h2: { r1: ["data"], r3: ["data", "etc"] },
      h3: { r1: ["data"] },
      // Another spelling is another URL to the plan: read on its own (the ids join it afterwards).
      h4: { r1: ["data"], r2: ["data"] },
    });
  });

  it("only the selected hosts: a URL whose first user is not selected goes to the next", () => {
    const selected = plan.hosts.filter((h) => h.host.name !== "h1");
    expect(asObject(assignReads(statusPlans(selected)))).toEqual({
      h2: { r1: ["data"], r2: ["data"], r3: ["etc"] },
      h3: { r1: ["data"] },
      h4: { r1: ["data"], r2: ["data"] },
    });
  });
});

describe("assignMissingReads (phase 2)", () => {
  it("nothing when every repository was read whole by someone", () => {
    let all = uses();
    for (const [host, entry] of [
      ["h1", "r1"],
      ["h1", "r2"],
      ["h2", "r1"],
      ["h2", "r3"],
      ["h3", "r1"],
      ["h4", "r1"],
    ] as const)
      all = withRead(all, host, entry, ok([]));
    expect(assignMissingReads(all, results(...["h1", "h2", "h3", "h4"].map((h) => hostResult(h))))).toEqual(
      new Map(),
    );
  });

  it("a repository whose reader was unreachable goes to a host that opened it and finished, the fewest reads first; a failed read is not repeated", () => {
    // h1 was unreachable: it opened nothing, and read neither its local repository nor REST.
    let all = uses().map((u) => (u.host === "h1" ? { ...u, id: null } : u));
    all = withRead(all, "h2", "r1", ok([]));
    all = withRead(all, "h2", "r3", failed("boom"));
    all = withRead(all, "h3", "r1", ok([]));
    all = withRead(all, "h4", "r1", ok([]));
    const reached = results(
      hostResult("h1", "unreachable", "refused"),
      hostResult("h2"),
      hostResult("h3"),
      hostResult("h4"),
    );
    expect(asObject(assignMissingReads(all, reached))).toEqual({ h2: { r2: ["data"] } });
    // h2 failed (its agent stopped): h3 reads it.
    const h2Failed = results(
      hostResult("h1", "unreachable", "refused"),
      hostResult("h2", "failed", "lost"),
      hostResult("h3"),
      hostResult("h4"),
    );
    expect(asObject(assignMissingReads(all, h2Failed))).toEqual({ h3: { r2: ["data"] } });
  });

  it("the other spelling's read counts for the repository: nothing to read again", () => {
    let all = uses();
    for (const [host, entry] of [
      ["h1", "r1"],
      ["h1", "r2"],
      ["h2", "r1"],
      ["h3", "r1"],
      ["h4", "r1"],
      ["h4", "r2"],
    ] as const)
      all = withRead(all, host, entry, ok([]));
    const reached = results(...["h1", "h2", "h3", "h4"].map((h) => hostResult(h)));
    expect(assignMissingReads(all, reached)).toEqual(new Map());
  });

  it("a repository nobody opened has no host to read it", () => {
    // Every local repository was read; REST opened nowhere; SFTP opened but its reader did not read it.
    let all = uses().map((u) => (u.location === REST.slice(0, -1) ? { ...u, id: null } : u));
    for (const host of ["h1", "h2", "h3", "h4"]) all = withRead(all, host, "r1", ok([]));
    const reached = results(...["h1", "h2", "h3", "h4"].map((h) => hostResult(h)));
    expect(asObject(assignMissingReads(all, reached))).toEqual({ h1: { r3: ["data", "etc"] } });
  });
});

describe("splitReads", () => {
  const restList = [
    snapshot("h1", "data", "2026-12-01T10:00:00Z", "aaaa0001"),
    snapshot("h1", "data", "2026-12-01T11:00:00Z", "aaaa0002"),
    snapshot("h2", "data", "2026-12-01T09:00:00Z", "bbbb0001"),
    // Another job of h2 in the same repository, and a host outside the run: not h2's data.
    snapshot("h2", "other", "2026-12-01T12:00:00Z", "bbbb0002"),
    snapshot("h9", "data", "2026-12-01T12:00:00Z", "9999aaaa"),
  ];

  it("one read of a shared repository gives each host and job its own snapshots, and no one else's", () => {
    const all = withRead(uses(), "h1", "r2", ok(restList));
    const fills = splitReads(all);
    const idsOf = (host: string, entry: string) => {
      const fill = fills.get(host)?.get(entry);
      return fill?.ok === true ? fill.snapshots.map((s) => s.short_id) : fill;
    };
    expect(idsOf("h1", "r2")).toEqual(["aaaa0001", "aaaa0002"]);
    expect(idsOf("h2", "r2")).toEqual(["bbbb0001"]);
    // h3 uses it and has no snapshot there yet: an empty list, not an error.
    expect(idsOf("h3", "r2")).toEqual([]);
  });

  it("the job tag decides: h2's etc job in the SFTP repository read by another spelling's host", () => {
    const list = [
      snapshot("h2", "etc", "2026-12-01T10:00:00Z", "eeee0001"),
      snapshot("h1", "data", "2026-12-01T10:00:00Z", "dddd0001"),
    ];
    const fills = splitReads(withRead(uses(), "h4", "r2", ok(list)));
    expect(fills.get("h2")?.get("r3")).toMatchObject({ ok: true, snapshots: [{ short_id: "eeee0001" }] });
    expect(fills.get("h1")?.get("r3")).toMatchObject({ ok: true, snapshots: [{ short_id: "dddd0001" }] });
    expect(fills.get("h4")?.get("r2")).toEqual({ ok: true, snapshots: [] });
  });

  it("a failed read is the error of every host that depends on it, naming the repository and the host that read it", () => {
    const fills = splitReads(
      withRead(uses(), "h1", "r2", failed("cannot read the repository (exit 1): boom")),
    );
    for (const host of ["h1", "h2", "h3"])
      expect(fills.get(host)?.get("r2")).toEqual({
        ok: false,
        error: `${REST.slice(0, -1)} was read once for every host that uses it, on h1, and that failed: cannot read the repository (exit 1): boom`,
        code: null,
      });
  });

  it("a repository this host could not identify: its own read of its own snapshots, or its own error", () => {
    let all = uses().map((u) => (u.host === "h3" && u.entry === "r2" ? { ...u, id: null } : u));
    all = withRead(all, "h3", "r2", failed("cannot read the repository (exit 1): wrong password", false));
    all = withRead(all, "h1", "r2", ok(restList));
    expect(splitReads(all).get("h3")?.get("r2")).toEqual({
      ok: false,
      error: "cannot read the repository (exit 1): wrong password",
      code: null,
    });
  });

  it("a repository nobody read says so", () => {
    expect(splitReads(uses()).get("h2")?.get("r2")).toEqual({
      ok: false,
      error: `not read: no host that uses ${REST.slice(0, -1)} could open it`,
      code: null,
    });
  });
});

describe("withPhase2Reads", () => {
  const missing: ReadAssignment = new Map([["h2", new Map([["r2", ["data"]]])]]);

  it("phase 2's read goes to the use it was made through", () => {
    const read = ok([snapshot("h2", "data", "2026-12-01T09:00:00Z", "bbbb0001")]);
    const phase2Uses = withRead(uses(), "h2", "r2", read).filter((u) => u.host === "h2");
    const merged = withPhase2Reads(uses(), {
      assignment: missing,
      uses: phase2Uses,
      results: results(hostResult("h2")),
    });
    expect(merged.find((u) => u.host === "h2" && u.entry === "r2")?.read).toEqual(read);
    expect(merged.filter((u) => u.read !== null)).toHaveLength(1);
  });

  it("a read phase 2 never got is a failed read with its host's reason, which every user of the repository gets", () => {
    const merged = withPhase2Reads(uses(), {
      assignment: missing,
      uses: [],
      results: results(hostResult("h2", "failed", "the connection was lost while the agent ran")),
    });
    expect(merged.find((u) => u.host === "h2" && u.entry === "r2")?.read).toEqual({
      ok: false,
      duration_ms: null,
      error: "the read did not run on h2: the connection was lost while the agent ran",
      snapshots: [],
      whole: true,
    });
    expect(splitReads(merged).get("h3")?.get("r2")).toMatchObject({
      ok: false,
      error: expect.stringContaining("on h2"),
    });
  });
});

describe("settleStatusHost", () => {
  const now = new Date("2026-12-01T12:00:00Z");
  const fills = (time: string) =>
    new Map<string, LatestFill>([
      ["r1", { ok: true as const, snapshots: [snapshot("h3", "data", time, "cccc0001")] }],
      ["r2", { ok: true as const, snapshots: [snapshot("h3", "data", "2026-12-01T11:30:00Z", "cccc0002")] }],
    ]);

  it("latest, age and staleness per job and repository, as a host that read everything itself", () => {
    const settled = settleStatusHost(...plansOf("h3"), hostResult("h3"), fills("2026-12-01T11:00:00Z"), {
      now,
      maxAgeS: 7200,
    });
    expect(settled.status).toBe("ok");
    expect(settled.jobs[0]?.status).toBe("ok");
    expect(settled.jobs[0]?.latest).toEqual([
      {
        repo: "/srv/local",
        snapshot_id: "cccc0001",
        time: "2026-12-01T11:00:00Z",
        age_s: 3600,
        stale: false,
        error: null,
        error_code: null,
      },
      {
        repo: REST,
        snapshot_id: "cccc0002",
        time: "2026-12-01T11:30:00Z",
        age_s: 1800,
        stale: false,
        error: null,
        error_code: null,
      },
    ]);
  });

  it("--max-age: a job older than it fails the host with code stale", () => {
    const settled = settleStatusHost(...plansOf("h3"), hostResult("h3"), fills("2026-11-30T11:00:00Z"), {
      now,
      maxAgeS: 7200,
    });
    expect(settled).toMatchObject({
      status: "failed",
      error: { code: "stale", message: "no snapshot newer than --max-age for data in /srv/local" },
    });
    expect(settled.jobs[0]?.latest.map((l) => l.stale)).toEqual([true, false]);
  });

  it("a failed shared read fails the host that depends on it, with the read's error", () => {
    const settled = settleStatusHost(
      ...plansOf("h3"),
      hostResult("h3"),
      new Map([
        ...fills("2026-12-01T11:00:00Z"),
        ["r2", { ok: false as const, error: "read on h1: boom", code: null }],
      ]),
      { now, maxAgeS: null },
    );
    expect(settled).toMatchObject({
      status: "failed",
      error: { code: "repo_unreadable", message: "1 of 2 repositories could not be read" },
    });
    expect(settled.jobs[0]?.latest[1]?.error).toBe("read on h1: boom");
  });

  it("a host whose agent did not finish keeps its result: unreachable stays unreachable", () => {
    const unreachable = hostResult("h3", "unreachable", "refused");
    expect(
      settleStatusHost(...plansOf("h3"), unreachable, fills("2026-12-01T11:00:00Z"), { now, maxAgeS: 60 }),
    ).toBe(unreachable);
  });
});

describe("the report's snapshots actions", () => {
  it("one action per read, on the repository it read; for_host only for a host's own snapshots", () => {
    let all = withRead(uses(), "h1", "r2", ok([]));
    all = withRead(all, "h2", "r3", failed("boom"));
    all = all.map((u) =>
      u.host === "h4" && u.entry === "r1" ? { ...u, id: null, read: failed("wrong password", false) } : u,
    );
    const report = buildReport({
      runId: "r",
      command: "status",
      options: {} as never,
      startedAt: new Date(0),
      finishedAt: new Date(0),
      hosts: [],
      repositories: all,
      interrupted: false,
    });
    const actionsOf = (url: string, host?: string) =>
      report.repositories.find((r) => r.url === url && (host === undefined || r.hosts[0]?.host === host))
        ?.actions;
    expect(actionsOf(REST.slice(0, -1))).toEqual([
      { action: "snapshots", host: "h1", for_host: null, status: "ok", duration_ms: 7, error: null },
    ]);
    // Its two spellings are one repository (one id); the report names it by the first in sort order.
    expect(actionsOf("sftp://vault//srv/s")).toEqual([
      { action: "snapshots", host: "h2", for_host: null, status: "failed", duration_ms: 3, error: "boom" },
    ]);
    expect(actionsOf("/srv/local", "h4")).toEqual([
      {
        action: "snapshots",
        host: "h4",
        for_host: "h4",
        status: "failed",
        duration_ms: 3,
        error: "wrong password",
      },
    ]);
  });
});
