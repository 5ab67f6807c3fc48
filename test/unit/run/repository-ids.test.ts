import { describe, expect, it } from "vitest";
import type { AgentPlan } from "../../../src/agent/plan-lines.js";
import { trackRepositoryIds } from "../../../src/run/repository-ids.js";

const ID = "a".repeat(64);

describe("trackRepositoryIds", () => {
  const plan: AgentPlan = {
    lines: [],
    repos: new Map([
      ["r1", { job: "web", label: "/srv/repo", url: "local:/srv/repo/", retention: true }],
      [
        "r2",
        {
          job: "web",
          label: "rest:https://u:***@vault/x",
          url: "rest:https://u:pw@vault/x",
          retention: true,
        },
      ],
    ]),
    copies: new Map([
      ["c1", { job: "web", from: "/srv/repo", to: "/mnt/copy", url: "/mnt/copy", retention: false }],
    ]),
    reads: new Map(),
  };

  it("gives every plan entry its id, or null when the agent read none, never a raw URL", () => {
    const ids = trackRepositoryIds("h1", plan);
    expect(ids.apply({ v: 2, event: "repo_identity", repo: "r1", repo_id: ID })).toBe(true);
    expect(ids.apply({ v: 2, event: "repo_identity", repo: "r9", repo_id: ID })).toBe(true);
    expect(ids.apply({ v: 2, event: "job_start", job: "web" })).toBe(false);
    const uses = ids.uses();
    expect(
      uses.map((u) => [u.label, u.local, u.location.startsWith("/") ? u.location : "remote", u.id]),
    ).toEqual([
      ["/srv/repo", true, "/srv/repo", ID],
      ["rest:https://u:***@vault/x", false, "remote", null],
      ["/mnt/copy", true, "/mnt/copy", null],
    ]);
    expect(uses.map((u) => u.host)).toEqual(["h1", "h1", "h1"]);
  });

  it("carries each entry's step outcomes into its use: verify's check with the others", () => {
    const ids = trackRepositoryIds("h1", plan);
    const check = { ok: false, duration_ms: 7, error: "Fatal: repository contains errors" };
    const uses = ids.uses((entry) => ({
      forget: null,
      prune: null,
      read: null,
      check: entry === "r2" ? check : null,
    }));
    expect(uses.map((u) => [u.entry, u.check])).toEqual([
      ["r1", null],
      ["r2", check],
      ["c1", null],
    ]);
  });
});
