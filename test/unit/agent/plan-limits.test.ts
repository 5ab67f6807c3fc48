// Whatever the controller accepts, the agent accepts: boundary values derived from the contract's
// PLAN_LIMITS go through the real config rules and the real agent. The plan is a prune plan (every
// record kind: vg, job, repo, copy, retention) whose command is then switched to ping, so the agent
// validates every record and changes nothing.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { agentPlan } from "../../../src/agent/plan-lines.js";
import { agentEvent, PLAN_FORMAT, PLAN_LIMITS, planLine } from "../../../src/agent/protocol.js";
import { UsageError } from "../../../src/errors.js";
import { buildPlan } from "../../../src/plan/build-plan.js";

const AGENT = fileURLToPath(new URL("../../../agents/rlvm-agent.sh", import.meta.url));
const base = mkdtempSync(join(tmpdir(), "rlvm-limits-"));
let counter = 0;

const MAX = PLAN_LIMITS.maxBytes;
const MAX_PERCENT = `${Math.floor(PLAN_LIMITS.maxBasisPoints / 100)}.${String(PLAN_LIMITS.maxBasisPoints % 100).padStart(2, "0")}%`;

interface Case {
  host?: string;
  job?: string;
  snapshotSize?: string;
  margin?: string;
  cowWarn?: number;
  keep?: number;
}

/** An inventory and a category-format config with one LV job, one repository and a copy. */
function fleet(c: Case): string {
  const dir = join(base, `case-${++counter}`);
  mkdirSync(dir);
  const job = c.job ?? "data";
  const settings = [
    c.margin === undefined ? "" : `min_vg_free_after_snapshots = ${JSON.stringify(c.margin)}`,
    c.cowWarn === undefined ? "" : `snapshot_cow_warn_percent = ${c.cowWarn}`,
  ].filter((line) => line !== "");
  writeFileSync(
    join(dir, "config.toml"),
    `${settings.length > 0 ? `[snapshot_settings]\n${settings.join("\n")}\n` : ""}
[logical_volume_nonroot.${JSON.stringify(job)}]
vg_name = "vg0"
lv_name = "lv_data"
snapshot_size = ${JSON.stringify(c.snapshotSize ?? "1G")}
backup_source_path = "/data"
[[logical_volume_nonroot.${JSON.stringify(job)}.repositories]]
repo_path = "/srv/backup/data"
password_file = "/etc/pw"
prune_keep_last = ${c.keep ?? 7}
  [[logical_volume_nonroot.${JSON.stringify(job)}.repositories.copy_to]]
  repo = "sftp:u@vault:/copy"
  password_file = "/etc/pw"
  prune_keep_daily = ${c.keep ?? 7}
`,
  );
  writeFileSync(join(dir, "known_hosts"), "");
  writeFileSync(
    join(dir, "inventory.toml"),
    `[defaults]\nconfig = "config.toml"\nknown_hosts = "known_hosts"\n[hosts.${JSON.stringify(c.host ?? "db1")}]\naddress = "192.0.2.1"\n`,
  );
  return join(dir, "inventory.toml");
}

/** The controller's verdict: the plan lines it would send, or the problems validate prints. */
function controller(c: Case): { lines: string[] } | { problems: string[] } {
  try {
    const [hostPlan] = buildPlan(fleet(c)).hosts;
    if (hostPlan === undefined) throw new Error("no host");
    return { lines: agentPlan(hostPlan, "prune", "20261201T000000Z-limits").lines };
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    return { problems: error.problems.map((p) => `${p.path}: ${p.message}`) };
  }
}

/** Run the real agent on plan lines with the command switched to ping: its verdict on the plan. */
function agentVerdict(lines: string[]): { code: string | null; message: string } {
  const runDir = mkdtempSync(join(base, "run-"));
  const input = `${lines.map((line) => (line.startsWith("command ") ? "command ping" : line)).join("\n")}\n`;
  const r = spawnSync("bash", [AGENT, runDir], { input, encoding: "utf8", timeout: 60_000 });
  const result = r.stdout
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => agentEvent.parse(JSON.parse(line)))
    .find((event) => event.event === "result");
  if (result?.event !== "result") throw new Error(`no result from the agent: ${r.stderr}`);
  return { code: result.code, message: result.message };
}

function accepted(c: Case): string[] {
  const verdict = controller(c);
  if ("problems" in verdict) throw new Error(`the controller refused it: ${verdict.problems.join("; ")}`);
  expect(agentVerdict(verdict.lines)).toEqual({ code: null, message: "pong" });
  return verdict.lines;
}

function refused(c: Case, message: RegExp): void {
  const verdict = controller(c);
  if ("lines" in verdict) throw new Error(`the controller accepted it: ${verdict.lines.join(" | ")}`);
  expect(verdict.problems.join("\n")).toMatch(message);
}

describe("the controller refuses exactly what the agent would", () => {
  it(`byte counts up to PLAN_LIMITS.maxBytes (${MAX}), sent as exact integers`, () => {
    const lines = accepted({ snapshotSize: `${MAX}b`, margin: "0" });
    expect(lines).toContain(
      planLine("job", "data", "logical_volume_nonroot", "/data", "vg0", "lv_data", MAX),
    );
    expect(lines).toContain(planLine("vg", "vg0", MAX, 0, 0));
    expect(lines.join("\n")).not.toMatch(/e\+/);
    refused({ snapshotSize: `${MAX + 1n}b` }, /snapshot_size: .*larger than LVM can hold/);
    // 10000E: ~1.15e22 bytes, which a float would have written in exponent notation.
    refused({ snapshotSize: "10000E" }, /larger than LVM can hold/);
  });

  it("an exact byte count for fractional sizes, rounded up", () => {
    const lines = accepted({ snapshotSize: "1.5t", margin: "0.5G" });
    expect(lines).toContain(planLine("vg", "vg0", 1536n * 1024n ** 3n, 512n * 1024n ** 2n, 0));
  });

  it('byte margins up to the limit ("1E"), and their sum with the snapshots', () => {
    accepted({ margin: "1E" });
    accepted({ margin: `${MAX - 1024n ** 3n}b` });
    refused({ margin: `${MAX - 1024n ** 3n + 1n}b` }, /add up to more than LVM can hold/);
    refused({ margin: `${MAX + 1n}b` }, /min_vg_free_after_snapshots: .*larger than LVM can hold/);
  });

  it(`percentage margins up to PLAN_LIMITS.maxBasisPoints (${MAX_PERCENT}), never 100 % or more`, () => {
    expect(accepted({ margin: MAX_PERCENT })).toContain(planLine("vg", "vg0", 1024 ** 3, 0, 9999));
    expect(accepted({ margin: "12.341%" })).toContain(planLine("vg", "vg0", 1024 ** 3, 0, 1235));
    refused({ margin: "100%" }, /below 100%/);
    refused({ margin: "150%" }, /below 100%/);
  });

  it("a fractional COW warning level (the controller decides the warning)", () => {
    accepted({ cowWarn: 70.5 });
  });

  it(`keep values up to PLAN_LIMITS.maxKeep (${PLAN_LIMITS.maxKeep}), a million included`, () => {
    accepted({ keep: 1_000_000 });
    expect(accepted({ keep: PLAN_LIMITS.maxKeep })).toContain(
      planLine("retention", "r1", PLAN_LIMITS.maxKeep, 0, 0, 0, 0),
    );
    refused({ keep: PLAN_LIMITS.maxKeep + 1 }, /prune_keep_last: expected at most/);
  });

  it('names by PLAN_LIMITS.name, never "." or ".."', () => {
    accepted({ host: "db-1.example_2", job: "data.v2_x-y" });
    for (const name of [".", ".."]) {
      refused({ host: name }, /must not be '.' or '..'/);
      refused({ job: name }, /must not be '.' or '..'/);
    }
  });
});

describe("the agent enforces the same limits on a plan it is sent", () => {
  const planFor = (host: string, ...records: (string | number | bigint)[][]) => [
    `plan ${PLAN_FORMAT}`,
    planLine("run_id", "20261201T000000Z-limits"),
    planLine("host", host),
    planLine("command", "ping"),
    ...records.map(([key, ...values]) => planLine(String(key), ...values)),
    "end",
  ];
  const plan = (...records: (string | number | bigint)[][]) => planFor("db1", ...records);
  const job = (size: bigint) => ["job", "data", "logical_volume_nonroot", "/data", "vg0", "lv_data", size];

  it("one past each limit is a protocol error", () => {
    const cases = [
      plan(["vg", "vg0", MAX + 1n, 0, 0], job(1n)),
      plan(["vg", "vg0", 1, MAX + 1n, 0], job(1n)),
      plan(["vg", "vg0", 1, 0, PLAN_LIMITS.maxBasisPoints + 1], job(1n)),
      plan(["vg", "vg0", 1, 0, 0], job(MAX + 1n)),
      plan(
        ["job", "web", "standard_path", "/srv", "", "", ""],
        ["repo", "web", "r1", "/r", "/pw", "/r"],
        ["retention", "r1", PLAN_LIMITS.maxKeep + 1, 0, 0, 0, 0],
      ),
      planFor(".."),
      planFor("."),
    ];
    for (const lines of cases) expect(agentVerdict(lines).code, lines.join(" | ")).toBe("agent_protocol");
    expect(agentVerdict(plan(["vg", "vg0", MAX, MAX, 0], job(MAX)))).toEqual({ code: null, message: "pong" });
  });
});
