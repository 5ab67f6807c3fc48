import { describe, expect, it } from "vitest";
import type { RepositoryUse } from "../../../src/report/repositories.js";
import {
  assignPrunes,
  assignRepositories,
  mergePhases,
  pruneOutcomes,
} from "../../../src/run/prune-repositories.js";
import { hostResult } from "../../helpers/report-fixture.js";

const ID_A = "a".repeat(64);
const ID_B = "b".repeat(64);
const ok = { ok: true, duration_ms: 5, error: null };
const failed = { ok: false, duration_ms: 5, error: "restic forget failed (exit 1): locked" };

const use = (
  host: string,
  id: string | null,
  forget: RepositoryUse["forget"],
  entry = "r1",
): RepositoryUse => ({
  host,
  job: "web",
  label: "/srv/repo",
  local: false,
  location: "/srv/repo",
  id,
  entry,
  retention: true,
  forget,
  prune: null,
  read: null,
});

describe("assignPrunes", () => {
  it("prunes each repository once, on a host whose forget in it succeeded, spreading the prunes", () => {
    const assignments = assignPrunes([
      use("h1", ID_A, ok),
      use("h2", ID_A, ok),
      use("h1", ID_B, ok, "c1"),
      use("h2", ID_B, ok, "c1"),
      use("h3", ID_B, failed),
    ]);
    expect(assignments).toEqual([
      { action: "prune", repositoryId: ID_A, host: "h1", entry: "r1" },
      { action: "prune", repositoryId: ID_B, host: "h2", entry: "c1" },
    ]);
  });

  it("never prunes where no forget succeeded, nor a repository without an id", () => {
    expect(assignPrunes([use("h1", ID_A, failed), use("h2", ID_A, null), use("h3", null, ok)])).toEqual([]);
  });
});

describe("pruneOutcomes", () => {
  const assignments = [{ action: "prune" as const, repositoryId: ID_A, host: "h1", entry: "r1" }];

  it("a dry run plans the prune", () => {
    expect(pruneOutcomes(assignments, "planned")).toEqual([
      { action: "prune", repositoryId: ID_A, host: "h1", status: "planned", duration_ms: null, error: null },
    ]);
  });

  it("takes the agent's outcome, or says why the prune did not run", () => {
    const pruned = { ...use("h1", ID_A, null), prune: { ok: false, duration_ms: 9, error: "exit 1" } };
    expect(pruneOutcomes(assignments, { uses: [pruned], results: new Map() })[0]).toMatchObject({
      status: "failed",
      duration_ms: 9,
      error: "exit 1",
    });
    const lost = hostResult("h1", "unreachable", {
      error: { code: "refused", message: "connection refused", hint: "" },
    });
    expect(
      pruneOutcomes(assignments, { uses: [use("h1", ID_A, null)], results: new Map([["h1", lost]]) })[0],
    ).toMatchObject({ status: "failed", error: "the prune did not run on h1: connection refused" });
  });
});

describe("assignRepositories for verify's checks", () => {
  it("checks each repository some host opened once, whatever its forgets, spread over those hosts", () => {
    const assignments = assignRepositories(
      [use("h2", ID_A, null), use("h1", ID_A, null), use("h1", ID_B, null, "r2"), use("h3", null, null)],
      "check",
    );
    expect(assignments).toEqual([
      { action: "check", repositoryId: ID_A, host: "h1", entry: "r1" },
      { action: "check", repositoryId: ID_B, host: "h1", entry: "r2" },
    ]);
    const spread = assignRepositories(
      [use("h1", ID_A, null), use("h1", ID_B, null, "r2"), use("h2", ID_B, null)],
      "check",
    );
    expect(spread.map((a) => a.host)).toEqual(["h1", "h2"]);
  });

  it("carries the subset into each check's outcome, and says why a check did not run", () => {
    const [check] = assignRepositories([use("h1", ID_A, null)], "check");
    if (check === undefined) throw new Error("no check assigned");
    expect(pruneOutcomes([check], "planned", "3/7")).toEqual([
      {
        action: "check",
        repositoryId: ID_A,
        host: "h1",
        subset: "3/7",
        status: "planned",
        duration_ms: null,
        error: null,
      },
    ]);
    const checked = {
      ...use("h1", ID_A, null),
      check: { ok: false, duration_ms: 7, error: "Fatal: repository contains errors" },
    };
    expect(pruneOutcomes([check], { uses: [checked], results: new Map() }, "100%")[0]).toMatchObject({
      status: "failed",
      subset: "100%",
      error: "Fatal: repository contains errors",
    });
    const lost = hostResult("h1", "unreachable", {
      error: { code: "refused", message: "connection refused", hint: "" },
    });
    expect(
      pruneOutcomes([check], { uses: [use("h1", ID_A, null)], results: new Map([["h1", lost]]) }, "1/7")[0],
    ).toMatchObject({ status: "failed", error: "the check did not run on h1: connection refused" });
  });
});

describe("mergePhases", () => {
  it("a host reached for its forgets and lost for its prune is failed, not unreachable", () => {
    const first = hostResult("h1", "ok", { duration_ms: 10 });
    const second = hostResult("h1", "unreachable", {
      duration_ms: 5,
      error: { code: "refused", message: "connection refused", hint: "check the host" },
    });
    expect(mergePhases(first, second)).toMatchObject({
      status: "failed",
      duration_ms: 15,
      error: { code: "refused", message: "pruning a repository: connection refused" },
    });
    expect(mergePhases(first, undefined)).toBe(first);
    expect(mergePhases(first, second, "checking a repository").error?.message).toBe(
      "checking a repository: connection refused",
    );
  });
});
