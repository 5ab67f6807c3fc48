// The hints the controller derives from facts: for each code the agent can stop with, and for a
// repository check from restic's own words.
import { describe, expect, it } from "vitest";
import { AGENT_ERROR_CODES, RESTIC_FAILURE_CODES, type AgentErrorCode } from "../../../src/agent/protocol.js";
import type { Check } from "../../../src/report/report-schema.js";
import {
  hintForAgentFailure,
  hintForCheck,
  hintForResticFailures,
  RESTIC_FAILURE_HINTS,
} from "../../../src/run/hints.js";

const check = (name: string, ok: boolean, detail = `${name} detail`): Check => ({
  name,
  ok,
  detail,
  hint: "",
  code: null,
});

describe("hintForAgentFailure", () => {
  it("has a hint of its own for every code of the contract", () => {
    const codes = Object.keys(AGENT_ERROR_CODES) as AgentErrorCode[];
    const hints = codes.map((code) => hintForAgentFailure(code, [check("restic", false)]));
    for (const hint of hints) expect(hint).not.toBe("");
    expect(new Set(hints).size).toBe(codes.length);
  });

  it("says what to do for the codes an operator meets most", () => {
    expect(hintForAgentFailure("locked", [])).toMatch(/another run holds this host's lock/);
    expect(hintForAgentFailure("snapshot_failed", [])).toMatch(
      /VG's free space.*every snapshot taken was removed/,
    );
    expect(hintForAgentFailure("agent_protocol", [])).toMatch(/bug in rlvm-fleet/);
  });

  it("names the failed checks of a failed preflight, in order, and only those", () => {
    const checks = [
      check("bash", true),
      check("restic", false),
      check("lock", true),
      check("vg_free:vg0", false),
    ];
    expect(hintForAgentFailure("preflight", checks)).toBe("fix the failed checks: restic, vg_free:vg0");
    expect(hintForAgentFailure("preflight", [check("bash", true)])).toBe("see the checks");
    expect(hintForAgentFailure("preflight", [])).toBe("see the checks");
  });
});

describe("hintForCheck (restic's error → what to do)", () => {
  it.each([
    ["Fatal: wrong password or no key found", /check password_file/],
    ["Fatal: Resolving password failed: open /etc/pw: permission denied", /could not read the password file/],
    [
      'Fatal: unable to open config file: Head "https://***@h/config": dial tcp: lookup h: no such host',
      /unreachable/,
    ],
    ["Fatal: unable to open config file: stat /srv/r/config: no such file or directory", /restic init/],
    ["restic did not answer within 60 s", /does not respond/],
    ["something restic never said before", /by hand/],
  ])("%s", (detail, hint) => {
    expect(hintForCheck(check("repo:/srv/r", false, detail))).toMatch(hint);
    expect(hintForCheck(check("copy:/srv/r", false, detail))).toMatch(hint);
  });

  it("keeps the agent's own hint, and gives none to a passed check or to other checks", () => {
    expect(
      hintForCheck({
        name: "repo:x",
        ok: false,
        detail: "wrong password",
        hint: "fix the restic check first",
        code: null,
      }),
    ).toBe("fix the restic check first");
    expect(hintForCheck(check("repo:x", true, "repository 0123abcd opens"))).toBe("");
    expect(hintForCheck(check("lv:data", false, "wrong password"))).toBe("");
  });
});

describe("hints for the failures restic names precisely", () => {
  it("a repository check with a code gets that code's hint, whatever restic's words", () => {
    for (const code of RESTIC_FAILURE_CODES) {
      expect(hintForCheck({ ...check("repo:/srv/r", false, "restic said something new"), code })).toBe(
        RESTIC_FAILURE_HINTS[code],
      );
    }
    expect(new Set(Object.values(RESTIC_FAILURE_HINTS)).size).toBe(RESTIC_FAILURE_CODES.length);
  });

  it("failures that share one code get its hint; mixed, or without a code, none", () => {
    expect(hintForResticFailures(["repo_locked", "repo_locked"])).toMatch(/restic unlock/);
    expect(hintForResticFailures(["repo_missing"])).toMatch(/restic init/);
    expect(hintForResticFailures(["repo_wrong_password"])).toMatch(/password_file/);
    expect(hintForResticFailures(["repo_locked", "repo_missing"])).toBeNull();
    expect(hintForResticFailures(["repo_locked", null])).toBeNull();
    expect(hintForResticFailures([])).toBeNull();
  });
});
