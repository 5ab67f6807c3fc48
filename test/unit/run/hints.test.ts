// The hint a failed host gets for the code its agent reported: one for every code the agent can send.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Check } from "../../../src/report/report-schema.js";
import { hintFor } from "../../../src/run/hints.js";

const AGENT = join(import.meta.dirname, "../../../agents/rlvm-agent.sh");
const FALLBACK = "see the message";

/** Every code the agent ends a run with: its `fail CODE "message"` calls. */
function agentFailureCodes(): string[] {
  const text = readFileSync(AGENT, "utf8");
  return [...new Set([...text.matchAll(/\bfail ([a-z_]+) ["$]/g)].map((match) => match[1] ?? ""))].sort();
}

const check = (name: string, ok: boolean): Check => ({ name, ok, detail: `${name} detail`, hint: "" });

describe("hintFor", () => {
  it("has its own hint for every code the agent sends", () => {
    const codes = agentFailureCodes();
    // Finding them is part of the test: these are the codes the agent sends today.
    expect(codes).toEqual(
      expect.arrayContaining([
        "agent_error",
        "agent_interrupted",
        "agent_protocol",
        "agent_unsupported",
        "backup_failed",
        "locked",
        "preflight",
        "prune_failed",
        "repo_unreadable",
        "snapshot_failed",
      ]),
    );
    const hints = codes.map((code) => [code, hintFor(code, [check("restic", false)])]);
    for (const [code, hint] of hints) expect(hint, code).not.toBe(FALLBACK);
    // Each says something of its own.
    expect(new Set(hints.map(([, hint]) => hint)).size).toBe(hints.length);
  });

  it("says what to do for the codes an operator meets most", () => {
    expect(hintFor("locked", [])).toMatch(/another run holds this host's lock/);
    expect(hintFor("snapshot_failed", [])).toMatch(/VG's free space.*every snapshot taken was removed/);
    expect(hintFor("backup_failed", [])).toMatch(/failed repositories/);
    expect(hintFor("repo_unreadable", [])).toMatch(/rlvm-fleet check/);
    expect(hintFor("agent_protocol", [])).toMatch(/bug in rlvm-fleet/);
  });

  it("names the failed checks of a failed preflight, in order, and only those", () => {
    const checks = [
      check("bash", true),
      check("restic", false),
      check("lock", true),
      check("vg_free:vg0", false),
    ];
    expect(hintFor("preflight", checks)).toBe("fix the failed checks: restic, vg_free:vg0");
    expect(hintFor("preflight", [check("bash", true)])).toBe("see the checks");
    expect(hintFor("preflight", [])).toBe("see the checks");
  });

  it("falls back to the message for a code it does not know", () => {
    expect(hintFor("something_new", [])).toBe(FALLBACK);
  });
});
