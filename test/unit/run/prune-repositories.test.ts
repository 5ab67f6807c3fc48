import { describe, expect, it } from "vitest";
import type { RepositoryUse } from "../../../src/report/repositories.js";
import { assignRepositories, mergePhases, pruneOutcomes } from "../../../src/run/prune-repositories.js";
import { hostResult } from "../../helpers/report-fixture.js";

const ID_A = "a".repeat(64);
const ID_B = "b".repeat(64);

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
