// Secrets we know of (passwords in repository URLs, the sudo password) never reach a report or the
// terminal, wherever in a host's output they show up.
import { describe, expect, it } from "vitest";
import { buildPlan } from "../../../src/plan/build-plan.js";
import {
  longestSecret,
  maskThenKeepEnd,
  maskThenKeepStart,
  redact,
  redactDeep,
  secretsOf,
} from "../../../src/run/redact.js";
import { writeTree } from "../../helpers/run-cli.js";

/** The one host's plan, with a config whose repositories are these URLs (the first with these copies). */
function hostPlanWith(repos: string[], copies: string[] = []) {
  const toml = (key: string, value: string) => `${key} = ${JSON.stringify(value)}`;
  const repoTables = repos.map(
    (url, index) => `[[standard_path.data.repositories]]
${toml("repo_path", url)}
password_file = "/etc/restic/pw"
${index === 0 ? copies.map((copy) => `[[standard_path.data.repositories.copy_to]]\n${toml("repo", copy)}\npassword_file = "/etc/restic/pw"\n`).join("") : ""}`,
  );
  const tree = writeTree({
    "inventory.toml": `[defaults]\nconfig = "host.toml"\n\n[hosts.db1]\naddress = "192.0.2.1"\n`,
    "host.toml": `[standard_path.data]\nbackup_source_path = "/data"\n\n${repoTables.join("\n")}`,
  });
  try {
    const [hostPlan] = buildPlan(`${tree.dir}/inventory.toml`).hosts;
    if (hostPlan === undefined) throw new Error("no host planned");
    return hostPlan;
  } finally {
    tree.cleanup();
  }
}

describe("secretsOf", () => {
  it("takes the password of every repository and copy_to URL, as written and percent-decoded", () => {
    const plan = hostPlanWith(
      ["rest:https://fleet:s3cr%40t-42@vault.example:8000/db1/", "/srv/backup/local"],
      ["sftp://backup:copy-pw@vault.example//backups/db1", "rest:http://other:other-secret@10.0.0.9/x/"],
    );
    expect(secretsOf(plan, null).sort()).toEqual(
      ["copy-pw", "other-secret", "s3cr%40t-42", "s3cr@t-42"].sort(),
    );
  });

  it("takes a password holding '@' whole, and rclone's inline credentials", () => {
    const plan = hostPlanWith(
      ["rest:https://fleet:p@ss:w@rd-42@vault.example:8000/db1/"],
      ["rclone::s3,access_key_id=AKIA77,secret_access_key=Y2s3cret-k3y:bucket/db1"],
    );
    const secrets = secretsOf(plan, null);
    expect(secrets.sort()).toEqual(["AKIA77", "Y2s3cret-k3y", "p@ss:w@rd-42"].sort());
    expect(redact("Fatal: p@ss:w@rd-42 and Y2s3cret-k3y", secrets)).toBe("Fatal: *** and ***");
  });

  it("adds the sudo password, and lists the longest first so that a secret inside another is masked whole", () => {
    const plan = hostPlanWith(["rest:https://u:abcdef@h/r/"]);
    const secrets = secretsOf(plan, "xabcdefx");
    expect(secrets).toEqual(["xabcdefx", "abcdef"]);
    expect(redact("sudo got xabcdefx, restic abcdef", secrets)).toBe("sudo got ***, restic ***");
  });

  it("has nothing to mask for URLs without a password, an empty sudo password, or secrets under 3 characters", () => {
    const plan = hostPlanWith([
      "rest:https://vault.example/db1/",
      "sftp:backup@vault:/srv/x",
      "rest:https://u:pw@h/r/",
    ]);
    expect(secretsOf(plan, null)).toEqual([]);
    expect(secretsOf(plan, "")).toEqual([]);
  });
});

describe("redact", () => {
  it("masks every occurrence of every secret, across lines", () => {
    const text =
      "Fatal: rest:https://fleet:hunter22@vault/ failed\nretrying hunter22 ... hunter22\nsudo: pw-xyz";
    expect(redact(text, ["hunter22", "pw-xyz"])).toBe(
      "Fatal: rest:https://fleet:***@vault/ failed\nretrying *** ... ***\nsudo: ***",
    );
  });

  it("leaves text without secrets as it is", () => {
    expect(redact("all fine", ["hunter22"])).toBe("all fine");
    expect(redact("hunter22", [])).toBe("hunter22");
  });
});

describe("redactDeep", () => {
  it("masks secrets in every string of a nested value, keys and non-strings untouched", () => {
    const value = {
      message: "auth failed for hunter22",
      list: ["ok", "hunter22 again", 42, null, true],
      nested: { deeper: [{ error: "rest:https://u:hunter22@h/" }], hunter22: 1 },
    };
    expect(redactDeep(value, ["hunter22"])).toEqual({
      message: "auth failed for ***",
      list: ["ok", "*** again", 42, null, true],
      nested: { deeper: [{ error: "rest:https://u:***@h/" }], hunter22: 1 },
    });
    expect(value.message).toBe("auth failed for hunter22");
  });

  it("returns the value itself when there is nothing to mask", () => {
    const value = { message: "hunter22" };
    expect(redactDeep(value, [])).toBe(value);
  });
});

describe("mask, then cut (a bounded piece of a host's text)", () => {
  const SECRETS = ["hunter22", "pw-xyz"];
  /** Nothing of either secret but these characters: a leaked piece shows as one of them. */
  const SECRET_CHARS = /[hunter2pwxyz-]/;

  it("keeps a margin of the longest secret's length", () => {
    expect(longestSecret(SECRETS)).toBe(8);
    expect(longestSecret([])).toBe(0);
  });

  it("keeps short text as it is, masked, and says it was not cut", () => {
    expect(maskThenKeepStart("a hunter22 b", SECRETS, 20, false)).toEqual({ text: "a *** b", cut: false });
    expect(maskThenKeepEnd("a hunter22 b", SECRETS, 20, false)).toEqual({ text: "a *** b", cut: false });
    expect(maskThenKeepStart("", SECRETS, 20, false)).toEqual({ text: "", cut: false });
  });

  it("masks a secret across the bound whole before it cuts", () => {
    // Cut first, these would keep "....hun" and "r22....".
    expect(maskThenKeepStart("....hunter22....", SECRETS, 7, false)).toEqual({ text: "....***", cut: true });
    expect(maskThenKeepEnd("....hunter22....", SECRETS, 7, false)).toEqual({ text: "***....", cut: true });
  });

  it("drops the start of a secret at the end of a text cut after it", () => {
    expect(maskThenKeepStart("ok .... hunt", SECRETS, 20, true)).toEqual({ text: "ok .... ", cut: true });
    expect(maskThenKeepStart("ok .... hunter2", SECRETS, 20, true)).toEqual({ text: "ok .... ", cut: true });
    // A whole secret there is masked, and what only looks like a secret's start in the middle stays.
    expect(maskThenKeepStart("hunt hunter22", SECRETS, 20, true)).toEqual({ text: "hunt ***", cut: true });
    // Not cut: the text ends there, and its end is only text.
    expect(maskThenKeepStart("ok .... hunt", SECRETS, 20, false)).toEqual({
      text: "ok .... hunt",
      cut: false,
    });
  });

  it("drops the end of a secret at the start of a text cut before it", () => {
    expect(maskThenKeepEnd("22 .... ok", SECRETS, 20, true)).toEqual({ text: " .... ok", cut: true });
    expect(maskThenKeepEnd("-xyz .... ok", SECRETS, 20, true)).toEqual({ text: " .... ok", cut: true });
    expect(maskThenKeepEnd("pw-xyz 22", SECRETS, 20, true)).toEqual({ text: "*** 22", cut: true });
    expect(maskThenKeepEnd("22 .... ok", SECRETS, 20, false)).toEqual({ text: "22 .... ok", cut: false });
  });

  it("leaks no character of a secret wherever the text is cut", () => {
    const full = ". hunter22 .. pw-xyz .";
    for (let i = 0; i <= full.length; i++) {
      const start = maskThenKeepStart(full.slice(0, i), SECRETS, 12, i < full.length);
      expect(start.text, `start cut at ${i}`).not.toMatch(SECRET_CHARS);
      expect(start.text.length).toBeLessThanOrEqual(12);
      const end = maskThenKeepEnd(full.slice(i), SECRETS, 12, i > 0);
      expect(end.text, `end cut at ${i}`).not.toMatch(SECRET_CHARS);
      expect(end.text.length).toBeLessThanOrEqual(12);
    }
  });
});
