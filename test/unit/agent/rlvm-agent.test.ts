// The real agent script, run locally with bash: plans built with the protocol's own encoder, every
// stdout line validated with the protocol's zod schema. restic is real (repositories in temp dirs);
// LVM is not available here, so LV checks are asserted to fail cleanly, and their logic is exercised
// with fake lvm2 tools (RLVM_AGENT_TOOL_PATH) against this machine's real mounts.
import { spawn, spawnSync } from "node:child_process";
import {
  accessSync,
  chmodSync,
  chownSync,
  constants,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { hostname, release, tmpdir, userInfo } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useFastKeys } from "../../helpers/fast-restic-key.js";
import { skipOrFail } from "../../helpers/skip-or-fail.js";
import { waitFor } from "../../helpers/wait-for.js";

import {
  agentEvent,
  PLAN_FORMAT,
  planLine,
  PROTOCOL_VERSION,
  type AgentEvent,
  type CheckEvent,
  type ResultEvent,
} from "../../../src/agent/protocol.js";
import { hintForCheck } from "../../../src/run/hints.js";
import { decideHostOutcome } from "../../../src/run/host-outcome.js";

const AGENT = fileURLToPath(new URL("../../../agents/rlvm-agent.sh", import.meta.url));
const IS_ROOT = process.getuid?.() === 0;

function findInPath(name: string, extra: string[] = []): string | null {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), ...extra].filter((d) => d.startsWith("/"));
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

const BASH = findInPath("bash") ?? "/bin/bash";
const RESTIC = findInPath("restic", ["/usr/local/bin", "/usr/bin", "/bin"]);
const LVM = findInPath("lvm", ["/usr/local/sbin", "/usr/sbin", "/sbin"]);
const SHELLCHECK = findInPath("shellcheck");
/** Where the agent keeps the hosts' locks as root: a directory only root can write to. */
const LOCK_DIR = "/run/rlvm-fleet/locks";

// --- fixtures ------------------------------------------------------------------------------------

let base = "";
let home = "";
let canary = "";
let pwGood = "";
let pwWrong = "";
let repoA = "";
let repoB = "";
let repoCopy = "";
let counter = 0;

function unique(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}`;
}

function writePrivate(path: string, content: string): string {
  writeFileSync(path, content, { mode: 0o600 });
  chmodSync(path, 0o600);
  return path;
}

function resticInit(repo: string, passwordFile: string): void {
  if (!RESTIC) throw new Error("restic is not installed");
  const r = spawnSync(RESTIC, ["init", "--repo", repo], {
    env: { PATH: process.env.PATH, HOME: home, RESTIC_PASSWORD_FILE: passwordFile },
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`restic init ${repo} failed: ${r.stderr}`);
  useFastKeys(repo, passwordFile);
}

/** restic's repository id of REPO (`restic cat config`), opened with the good password. */
function configId(repo: string): string {
  const out = spawnSync(RESTIC!, ["cat", "config", "--json", "--no-lock", "--no-cache"], {
    env: { PATH: process.env.PATH, HOME: home, RESTIC_REPOSITORY: repo, RESTIC_PASSWORD_FILE: pwGood },
    encoding: "utf8",
  }).stdout;
  return (JSON.parse(out) as { id: string }).id;
}

/** A fresh run directory inside a fresh parent (its siblings are what `leftovers` looks at). */
function newRunDir(host?: string): string {
  const parent = mkdtempSync(join(base, "runs-"));
  const runDir = join(parent, "self");
  mkdirSync(runDir, { mode: 0o700 });
  if (host) writeFileSync(join(runDir, "host"), `${host}\n`);
  return runDir;
}

/** Another run directory next to the ones in `parent` (as the bootstrap makes them, with `host`). */
function newRunDirIn(parent: string, host: string): string {
  const runDir = mkdtempSync(join(parent, "run-"));
  writeFileSync(join(runDir, "host"), `${host}\n`);
  return runDir;
}

/** A directory of tools for RLVM_AGENT_TOOL_PATH: symlinks to the real coreutils/util-linux tools. */
function makeToolDir(options: { restic?: "real" | "none" | { script: string }; fakeLvm?: string } = {}) {
  const dir = mkdtempSync(join(base, "tools-"));
  for (const name of ["bash", "uname", "id", "stat", "findmnt", "flock", "timeout"]) {
    const real = findInPath(name);
    if (real) symlinkSync(real, join(dir, name));
  }
  const restic = options.restic ?? "real";
  if (restic === "real" && RESTIC) symlinkSync(RESTIC, join(dir, "restic"));
  if (typeof restic === "object") writeFileSync(join(dir, "restic"), restic.script, { mode: 0o755 });
  if (options.fakeLvm) {
    writeFileSync(join(dir, "fake-lvm"), options.fakeLvm, { mode: 0o755 });
    for (const name of ["lvm", "lvs", "vgs", "lvcreate", "lvremove"])
      symlinkSync("fake-lvm", join(dir, name));
  }
  return dir;
}

type PlanRecord = [string, ...(string | number)[]];

function planText(records: PlanRecord[]): string {
  return records.map(([key, ...values]) => planLine(key, ...values)).join("\n") + "\n";
}

function header(command: string, host: string): PlanRecord[] {
  return [
    ["plan", PLAN_FORMAT],
    ["run_id", "20250101T000000Z-test"],
    ["host", host],
    ["command", command],
  ];
}

function baseEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, LC_ALL: "C", ...extra };
}

interface AgentRun {
  status: number | null;
  stdout: string;
  stderr: string;
  events: AgentEvent[];
  checks: CheckEvent[];
  result: ResultEvent;
  /** What the controller makes of the run (src/run/host-outcome.ts): the agent only reports. */
  outcome: { status: string; code: string | null; message: string };
}

interface RunOptions {
  runDir?: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  script?: string;
}

/**
 * Run the agent and assert what holds for every run: stdout is JSON event lines only, each valid
 * against the protocol and free of raw control characters; exactly one result, the last event; the
 * exit status matches it; nothing appeared in the working directory (the canary).
 */
function runAgent(input: string, options: RunOptions = {}): AgentRun {
  const args = options.args ?? [options.runDir ?? newRunDir()];
  const cwd = options.cwd ?? canary;
  const r = spawnSync(BASH, [options.script ?? AGENT, ...args], {
    input,
    env: options.env ?? baseEnv(),
    cwd,
    encoding: "utf8",
    timeout: 150_000,
  });
  if (r.error) throw r.error;
  const context = `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
  expect(r.stdout.endsWith("\n"), context).toBe(true);
  const lines = r.stdout.slice(0, -1).split("\n");
  const events = lines.map((line) => {
    for (const char of line)
      expect(char.charCodeAt(0), `raw control character in ${line}`).toBeGreaterThan(0x1f);
    return agentEvent.parse(JSON.parse(line));
  });
  const results = events.filter((e): e is ResultEvent => e.event === "result");
  expect(results, context).toHaveLength(1);
  const result = results[0] as ResultEvent;
  expect(events.at(-1)).toBe(result);
  expect(r.status, context).toBe(result.code === null ? 0 : 1);
  expect(readdirSync(canary)).toEqual([]);
  const checks = events.filter((e): e is CheckEvent => e.event === "check");
  const decided = decideHostOutcome({
    command: "preflight",
    agentResult: result,
    jobs: [],
    initial: "planned",
    checks,
    hostWarnings: [],
    cowWarnPercent: 70,
  });
  const outcome = {
    status: decided.status,
    code: decided.error?.code ?? null,
    message: decided.error?.message ?? result.message,
  };
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, events, checks, result, outcome };
}

function checkNamed(run: AgentRun, name: string): CheckEvent {
  const found = run.checks.filter((c) => c.name === name);
  expect(found, `check ${name} in ${run.checks.map((c) => c.name).join(", ")}`).toHaveLength(1);
  return found[0] as CheckEvent;
}

/** Every path under `dir` with its type, size, mode and mtime: to prove that a run changed nothing. */
function snapshotTree(dir: string, recursive = true): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      const st = lstatSync(path);
      out.push(`${path} ${st.mode.toString(8)} ${st.size} ${st.mtimeMs}`);
      if (recursive && st.isDirectory()) walk(path);
    }
  };
  walk(dir);
  return out;
}

function chownHint(file: string): string {
  const who = IS_ROOT ? "root:root" : userInfo().username;
  const quoted = spawnSync(BASH, ["-c", 'printf %q "$1"', "quote", file], { encoding: "utf8" }).stdout;
  return `chown ${who} ${quoted} && chmod 600 ${quoted}`;
}

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), "rlvm-agent-test-"));
  home = join(base, "home");
  canary = join(base, "canary");
  mkdirSync(home, { mode: 0o700 });
  mkdirSync(canary, { mode: 0o700 });
  mkdirSync(join(base, "src"));
  pwGood = writePrivate(join(base, "pw-good"), "correct horse battery staple\n");
  pwWrong = writePrivate(join(base, "pw-wrong"), "not the password\n");
  if (RESTIC) {
    repoA = join(base, "repo-a");
    repoB = join(base, "repo-b");
    repoCopy = join(base, "repo-copy");
    for (const repo of [repoA, repoB, repoCopy]) resticInit(repo, pwGood);
  }
}, 120_000);

afterAll(() => {
  if (base) rmSync(base, { recursive: true, force: true });
});

// --- the script itself ---------------------------------------------------------------------------

describe("rlvm-agent.sh as a file", () => {
  const text = readFileSync(AGENT, "utf8");
  const lines = text.split("\n");

  it("is strict bash, one group whose last command is main", () => {
    expect(lines[0]).toBe("#!/usr/bin/env bash");
    expect(text).toContain("\nset -Eeuo pipefail\n");
    expect(text).toContain("\nshopt -s inherit_errexit");
    expect(text).toContain("\nexport LC_ALL=C\n");
    expect(text).toContain("\numask 077\n");
    expect(text.endsWith('\nmain "$@"\n}\n')).toBe(true);
    expect(lines.filter((line) => line === 'main "$@"')).toHaveLength(1);
    expect(text).toMatch(/\nreadonly AGENT_VERSION="0\.1\.0"\n/);
  });

  it("uses no eval, source, bash -c, -r URL or tools outside bash/coreutils/util-linux/lvm2/restic", () => {
    const code = lines.filter((line) => !line.trim().startsWith("#"));
    for (const line of code) {
      expect(line).not.toMatch(/\beval\b|^\s*(source|\.)\s|bash -c|\bjq\b|python|\bawk\b|\bsed\b|\bgrep\b/);
      // The repository goes to restic through RESTIC_REPOSITORY, never as an argument.
      expect(line).not.toMatch(/--repo\b|\s-r\s+"?\$\{?(repo|url|REPO_URL|COPY_URL)/);
    }
  });

  it("runs nothing when the upload is truncated anywhere", () => {
    const plan = planText([...header("ping", "trunc"), ["end"]]);
    const dir = mkdtempSync(join(base, "trunc-"));
    const cuts = [0.1, 0.25, 0.5, 0.75, 0.9].map((f) => Math.floor(text.length * f));
    cuts.push(text.length - 'main "$@"\n'.length);
    for (const cut of cuts) {
      const script = join(dir, `agent-${cut}.sh`);
      writeFileSync(script, text.slice(0, cut));
      const r = spawnSync(BASH, [script, newRunDir()], {
        input: plan,
        env: baseEnv(),
        cwd: canary,
        encoding: "utf8",
      });
      expect(r.stdout, `cut at ${cut}`).toBe("");
    }
  });

  // CI installs shellcheck and sets RLVM_REQUIRE_UNIT: there a missing shellcheck fails.
  // shellcheck takes seconds on the whole agent, more on a loaded machine.
  it("is shellcheck-clean", { timeout: 60_000 }, (ctx) => {
    skipOrFail(
      ctx,
      "unit",
      SHELLCHECK ? undefined : "shellcheck is not installed (apt-get install shellcheck)",
    );
    const r = spawnSync(SHELLCHECK as string, ["--shell=bash", AGENT], { encoding: "utf8" });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });
});

// --- ping ----------------------------------------------------------------------------------------

describe("ping", () => {
  it("reports the host's facts, then pong", () => {
    const run = runAgent(planText([...header("ping", unique("ping")), ["end"]]));
    expect(run.events).toHaveLength(2);
    const start = run.events[0];
    if (start?.event !== "agent_start") throw new Error("first event is not agent_start");
    expect(start.agent_version).toBe("0.1.0");
    expect(start.run_id).toBe("20250101T000000Z-test");
    expect(start.facts.hostname).toBe(hostname());
    expect(start.facts.kernel).toBe(release());
    // /etc/os-release's PRETTY_NAME, without its quotes, as this machine has it.
    const pretty = /^PRETTY_NAME=(?:"(.*)"|'(.*)'|(.*))$/m.exec(readFileSync("/etc/os-release", "utf8"));
    expect(start.facts.os).toBe(pretty?.slice(1).find((v) => v !== undefined) ?? null);
    expect(start.facts.os).not.toMatch(/^["']/);
    expect(start.facts.bash).toMatch(/^\d+\.\d+\.\d+/);
    expect(start.facts.user).toBe(userInfo().username);
    if (RESTIC) {
      const version = spawnSync(RESTIC, ["version"], { encoding: "utf8" }).stdout.split(" ")[1];
      expect(start.facts.restic).toBe(version);
    } else {
      expect(start.facts.restic).toBeNull();
    }
    if (LVM) expect(start.facts.lvm).toMatch(/^\d+\.\d+\.\d+/);
    else expect(start.facts.lvm).toBeNull();
    expect(run.result).toEqual({ v: PROTOCOL_VERSION, event: "result", code: null, message: "pong" });
  });

  it("reports restic as null when it is not installed", () => {
    const tools = makeToolDir({ restic: "none" });
    const run = runAgent(planText([...header("ping", unique("ping")), ["end"]]), {
      env: { PATH: tools, HOME: home, RLVM_AGENT_TOOL_PATH: tools },
    });
    const start = run.events[0];
    if (start?.event !== "agent_start") throw new Error("first event is not agent_start");
    expect(start.facts.restic).toBeNull();
    expect(run.outcome.status).toBe("ok");
  });
});

// --- plan protocol -------------------------------------------------------------------------------

describe("plan protocol", () => {
  const good = (): PlanRecord[] => [
    ...header("preflight", "proto"),
    ["job", "web", "standard_path", "/srv", "", "", ""],
  ];
  const cases: [string, string][] = [
    ["empty input", ""],
    ["missing plan 1", planText([["run_id", "r"], ["host", "h"], ["command", "ping"], ["end"]])],
    ["another plan format", `plan ${PLAN_FORMAT + 1}\nrun_id r\nhost h\ncommand ping\nend\n`],
    ["unknown record", planText([...good(), ["frobnicate", "x"], ["end"]])],
    ["raw $ in a value", "plan 1\nrun_id r$(id)\nhost h\ncommand ping\nend\n"],
    ["uppercase hex escape", "plan 1\nrun_id r\\x4A\nhost h\ncommand ping\nend\n"],
    ["lone backslash", "plan 1\nrun_id r\\\nhost h\ncommand ping\nend\n"],
    ["\\x00", "plan 1\nrun_id r\\x00x\nhost h\ncommand ping\nend\n"],
    ["tab inside a line", "plan 1\nrun_id\tr\nhost h\ncommand ping\nend\n"],
    ["CRLF line ends", "plan 1\r\nrun_id r\r\nhost h\r\ncommand ping\r\nend\r\n"],
    ["no end record", planText(good())],
    ["empty line", planText(good()).replace("\njob", "\n\njob") + "end\n"],
    [
      "wrong field count",
      planText([...header("preflight", "proto"), ["job", "web", "standard_path", "/srv"], ["end"]]),
    ],
    ["host with a slash", planText([...header("ping", "../../etc/x"), ["end"]])],
    ["duplicate run_id", planText([...good(), ["run_id", "again"], ["end"]])],
    ["no command", planText([["plan", PLAN_FORMAT], ["run_id", "r"], ["host", "h"], ["end"]])],
    ["unknown command", planText([...header("rm", "proto"), ["end"]])],
    [
      "unknown category",
      planText([...header("preflight", "p"), ["job", "j", "lv_weird", "/x", "", "", ""], ["end"]]),
    ],
    [
      "relative source",
      planText([...header("preflight", "p"), ["job", "j", "standard_path", "x", "", "", ""], ["end"]]),
    ],
    [
      "LV job without size",
      planText([
        ...header("preflight", "p"),
        ["job", "j", "logical_volume_nonroot", "/x", "vg", "lv", ""],
        ["end"],
      ]),
    ],
    [
      "repo before its job",
      planText([...header("preflight", "p"), ["repo", "web", "a", "/r", "/pw", "L"], ["end"]]),
    ],
    [
      "duplicate repo ID",
      planText([
        ...good(),
        ["repo", "web", "a", "/r", "/pw", "L"],
        ["repo", "web", "a", "/r2", "/pw", "L2"],
        ["end"],
      ]),
    ],
    [
      "copy from an unknown repo",
      planText([...good(), ["copy", "web", "c", "zz", "/r", "/pw", "L"], ["end"]]),
    ],
    ["end with a value", planText([...good(), ["end", "x"]])],
    // The install records belong to install, and name a user a sudoers rule can name (not root).
    ["install records in a backup plan", planText([...good(), ["install", "backup", "nopasswd"], ["end"]])],
    ["an allow-list in a preflight plan", planText([...good(), ["allow_any_repository"], ["end"]])],
    ["install without its install record", planText([...header("install", "p"), ["end"]])],
    ["install for root", planText([...header("install", "p"), ["install", "root", "nopasswd"], ["end"]])],
    [
      "install for a user name sudoers would read otherwise",
      planText([...header("install", "p"), ["install", "a,b", "nopasswd"], ["end"]]),
    ],
    [
      "install with an unknown sudo mode",
      planText([...header("install", "p"), ["install", "b", "maybe"], ["end"]]),
    ],
    [
      "an allow-list entry that is not a sha256",
      planText([
        ...header("install", "p"),
        ["install", "b", "nopasswd"],
        ["allow_repository", "abc", "L"],
        ["end"],
      ]),
    ],
    // Defence in depth: the controller never sends an all-zero retention (it would delete everything).
    [
      "all-zero retention",
      planText([
        ...good(),
        ["repo", "web", "a", "/r", "/pw", "L"],
        ["retention", "a", 0, 0, 0, 0, 0],
        ["end"],
      ]),
    ],
    ["retention for an unknown id", planText([...good(), ["retention", "zz", 1, 0, 0, 0, 0], ["end"]])],
    ["remount_readonly of an unknown job", planText([...good(), ["remount_readonly", "nojob"], ["end"]])],
    // status's read records: for a declared entry, once, with distinct job names, in a status plan only.
    ...((): [string, string][] => {
      const statusPlan = (...records: PlanRecord[]) =>
        planText([
          ...header("status", "p"),
          ["job", "web", "standard_path", "/srv", "", "", ""],
          ["repo", "web", "a", "/r", "/pw", "L"],
          ...records,
          ["end"],
        ]);
      return [
        ["a read record for an unknown id", statusPlan(["read", "zz", "web"])],
        ["a read record given twice", statusPlan(["read", "a", "web"], ["read", "a", "db"])],
        ["a read record without jobs", statusPlan(["read", "a", ""])],
        ["a read record with an empty job name", statusPlan(["read", "a", "web,,db"])],
        ["a read record ending in a comma", statusPlan(["read", "a", "web,"])],
        ["a read record naming a job twice", statusPlan(["read", "a", "web,db,web"])],
        ["a read record with a job that is no name", statusPlan(["read", "a", "web,d b"])],
        ["a read record with a job named ..", statusPlan(["read", "a", ".."])],
        ["a read record with three values", statusPlan(["read", "a", "web", "db"])],
        [
          "a read record in a prune plan",
          planText([
            ...header("prune", "p"),
            ["job", "web", "standard_path", "/srv", "", "", ""],
            ["repo", "web", "a", "/r", "/pw", "L"],
            ["read", "a", "web"],
            ["end"],
          ]),
        ],
      ];
    })(),
    // prune records name maintained repositories only (below); maintain is verify's phase 2.
    ...((): [string, string][] => {
      const id = "f".repeat(64);
      const prunePlan = (...records: PlanRecord[]) =>
        planText([
          ...header("prune", "p"),
          ["job", "web", "standard_path", "/srv", "", "", ""],
          ["repo", "web", "a", "/r", "/pw", "L"],
          ...records,
          ["end"],
        ]);
      return [
        ["a prune record of a job's repository", prunePlan(["prune", "a", id])],
        ["maintain in a prune plan", prunePlan(["maintain"])],
        ["a prune record for an unknown id", prunePlan(["prune", "zz", id])],
        ["a prune record without a repository id", prunePlan(["prune", "a", "abc"])],
        // verify: its records, validated as the CLI validates them (src/cli/commands/verify.ts).
        ...((): [string, string][] => {
          const verifyPlan = (...records: PlanRecord[]) =>
            planText([
              ...header("verify", "p"),
              ["job", "web", "standard_path", "/srv", "", "", ""],
              ["repo", "web", "a", "/r", "/pw", "L"],
              ...records,
              ["end"],
            ]);
          const subset = (value: string): [string, string] => [
            `read_data_subset ${value}`,
            verifyPlan(["read_data_subset", value], ["restore_sample", 5]),
          ];
          return [
            ...[
              "0/7",
              "8/7",
              "7",
              "1/0",
              "0%",
              "0.0%",
              "100.5%",
              "101%",
              "-5%",
              "5 %",
              "1.2345%",
              "0M",
              "10X",
              "M",
              "",
              "1/7;rm",
            ].map(subset),
            ["a verify plan without read_data_subset", verifyPlan(["restore_sample", 5])],
            ["read_data_subset twice", verifyPlan(["read_data_subset", "1/7"], ["read_data_subset", "2/7"])],
            [
              "restore_sample above its limit",
              verifyPlan(["read_data_subset", "1/7"], ["restore_sample", 1001]),
            ],
            [
              "restore_sample not a number",
              verifyPlan(["read_data_subset", "1/7"], ["restore_sample", "5a"]),
            ],
            ["a check record without maintain", verifyPlan(["read_data_subset", "1/7"], ["check", "a", id])],
            ["maintain without a check record", verifyPlan(["read_data_subset", "1/7"], ["maintain"])],
            [
              "a check record in a dry run",
              verifyPlan(["read_data_subset", "1/7"], ["dry_run"], ["maintain"], ["check", "a", id]),
            ],
            [
              "a check record for an unknown id",
              verifyPlan(["read_data_subset", "1/7"], ["maintain"], ["check", "zz", id]),
            ],
            [
              "a check record without a repository id",
              verifyPlan(["read_data_subset", "1/7"], ["maintain"], ["check", "a", "abc"]),
            ],
            [
              "a prune record in a verify plan",
              verifyPlan(["read_data_subset", "1/7"], ["maintain"], ["check", "a", id], ["prune", "a", id]),
            ],
            [
              "a check record in a prune plan",
              prunePlan(["maintain"], ["prune", "a", id], ["check", "a", id]),
            ],
            ["read_data_subset in a prune plan", prunePlan(["read_data_subset", "1/7"])],
            ["restore_sample in a prune plan", prunePlan(["restore_sample", 5])],
            [
              "read_data_subset in a backup plan",
              planText([...header("backup", "p"), ["read_data_subset", "1/7"], ["end"]]),
            ],
            [
              "a backup's restore_sample above its limit",
              planText([...header("backup", "p"), ["restore_sample", 1001], ["end"]]),
            ],
          ];
        })(),
        ["maintained with a job", prunePlan(["maintained", "m", "/r", "/pw", "L", id])],
        [
          "maintained with maintain",
          planText([
            ...header("prune", "p"),
            ["maintained", "m", "/r", "/pw", "L", id],
            ["maintain"],
            ["end"],
          ]),
        ],
        [
          "maintained in a backup plan",
          planText([...header("backup", "p"), ["maintained", "m", "/r", "/pw", "L", id], ["end"]]),
        ],
        [
          "a maintained repository without its restic id",
          planText([...header("prune", "p"), ["maintained", "m", "/r", "/pw", "L", "abc"], ["end"]]),
        ],
        [
          "forget_for without a maintained repository",
          planText([...header("prune", "p"), ["forget_for", "m", "h1", "web", 1, 0, 0, 0, 0], ["end"]]),
        ],
        [
          "forget_for with an all-zero retention",
          planText([
            ...header("prune", "p"),
            ["maintained", "m", "/r", "/pw", "L", id],
            ["forget_for", "m", "h1", "web", 0, 0, 0, 0, 0],
            ["end"],
          ]),
        ],
        [
          "forget_for given twice",
          planText([
            ...header("prune", "p"),
            ["maintained", "m", "/r", "/pw", "L", id],
            ["forget_for", "m", "h1", "web", 1, 0, 0, 0, 0],
            ["forget_for", "m", "h1", "web", 2, 0, 0, 0, 0],
            ["end"],
          ]),
        ],
        [
          "a maintained prune record in a dry run",
          planText([
            ...header("prune", "p"),
            ["dry_run"],
            ["maintained", "m", "/r", "/pw", "L", id],
            ["prune", "m", id],
            ["end"],
          ]),
        ],
        [
          "maintain in a backup plan",
          planText([
            ...good(),
            ["repo", "web", "a", "/r", "/pw", "L"],
            ["maintain"],
            ["prune", "a", id],
            ["end"],
          ]),
        ],
      ];
    })(),
  ];

  it.each(cases)("rejects %s with exactly one agent_protocol result", (_name, input) => {
    const run = runAgent(input);
    expect(run.events).toHaveLength(1);
    expect(run.outcome.status).toBe("failed");
    expect(run.result.code).toBe("agent_protocol");
  });

  it("rejects a missing RUN_DIR argument", () => {
    const run = runAgent(planText([...header("ping", "p"), ["end"]]), { args: [] });
    expect(run.result.code).toBe("agent_protocol");
  });

  it("refuses a command it does not know, with one result", () => {
    // Every command the protocol knows is implemented; an unknown one is a protocol error.
    const run = runAgent(planText([...header("restore", unique("b")), ["end"]]));
    expect(run.events).toHaveLength(1);
    expect(run.result.code).toBe("agent_protocol");
  });

  it("installs only as the uploaded agent in its run directory: any other copy refuses, changing nothing", () => {
    const dir = mkdtempSync(join(base, "copy-"));
    const script = join(dir, "rlvm-agent.sh");
    writeFileSync(script, readFileSync(AGENT, "utf8"));
    const plan = planText([...header("install", unique("inst")), ["install", "backup", "nopasswd"], ["end"]]);
    const run = runAgent(plan, { script });
    expect(run.result.code).toBe("agent_unsupported");
    expect(run.result.message).toMatch(/the installed agent does not install/);
    expect(run.checks).toEqual([]);
  });

  it("turns an unexpected failure into one agent_error result", () => {
    const dir = mkdtempSync(join(base, "broken-"));
    const script = join(dir, "agent.sh");
    const text = readFileSync(AGENT, "utf8");
    // Redefine one check, just before the last line, so that it fails in the middle of a run.
    writeFileSync(script, text.replace(/\nmain "\$@"\n}\n$/, '\ncheck_restic() { false; }\nmain "$@"\n}\n'));
    const run = runAgent(planText([...header("preflight", unique("err")), ["end"]]), { script });
    expect(run.events[0]?.event).toBe("agent_start");
    expect(run.result.code).toBe("agent_error");
    expect(run.result.message).toContain("'false'");
  });
});

/**
 * The agent as the controller runs it: the plan, then stdin held open (backup and status stop when
 * their controller goes away) until the result; the agent's events, each valid against the protocol.
 */
async function agentHeldOpen(
  plan: string,
  runDir: string,
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<AgentEvent[]> {
  const child = spawn(BASH, [AGENT, runDir], {
    env: options.env ?? baseEnv(),
    cwd: canary,
    stdio: "pipe",
  });
  let stdout = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.resume();
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.stdin.write(plan);
  try {
    await waitFor("the agent's result", () => stdout.includes('"event":"result"'), {
      timeoutMs: options.timeoutMs ?? 60_000,
      intervalMs: 50,
    });
  } finally {
    child.stdin.end();
    await exited;
  }
  return stdout
    .trim()
    .split("\n")
    .map((line) => agentEvent.parse(JSON.parse(line)));
}

/** A backup run as the controller runs it (agentHeldOpen); the host's lock file removed after. */
async function runHeldBackup(
  host: string,
  plan: string,
  options: { env?: NodeJS.ProcessEnv; runDir?: string } = {},
): Promise<AgentEvent[]> {
  try {
    return await agentHeldOpen(plan, options.runDir ?? newRunDir(host), { env: options.env ?? baseEnv() });
  } finally {
    rmSync(`/run/rlvm-fleet/locks/rlvm-fleet.${host}.lock`, { force: true });
  }
}

// --- preflight -----------------------------------------------------------------------------------

describe.skipIf(!RESTIC)("preflight with real restic repositories", { timeout: 150_000 }, () => {
  function standardPlan(host: string, extra: PlanRecord[] = [], source = join(base, "src")): PlanRecord[] {
    return [...header("preflight", host), ["job", "web", "standard_path", source, "", "", ""], ...extra];
  }

  it("passes every check for a standard_path job with two repositories and a copy destination", () => {
    const host = unique("ok");
    const run = runAgent(
      planText([
        ...standardPlan(host, [
          ["exclude", "web", join(base, "src", "cache")],
          ["repo", "web", "a", repoA, pwGood, "local:repo-a"],
          ["repo", "web", "b", repoB, pwGood, "local:repo-b"],
          ["copy", "web", "c", "a", repoCopy, pwGood, "local:repo-copy"],
          // A second job on the same repository: the repository is checked once.
          ["job", "etc", "standard_path", home, "", "", ""],
          ["repo", "etc", "d", repoA, pwGood, "local:repo-a"],
        ]),
        ["end"],
      ]),
    );
    expect(run.checks.map((c) => c.name)).toEqual([
      "bash",
      "restic",
      "source_exists:web",
      "source_exists:etc",
      `password_file:${pwGood}`,
      "repo:local:repo-a",
      "repo:local:repo-b",
      "repo:local:repo-copy",
      "leftovers",
      "lock",
    ]);
    for (const check of run.checks) {
      expect(check.ok, `${check.name}: ${check.detail}`).toBe(true);
      expect(check.hint).toBe("");
    }
    expect(checkNamed(run, "restic").detail).toMatch(/^0\.\d+/);
    expect(checkNamed(run, "repo:local:repo-a").detail).toMatch(/^repository [0-9a-f]{8} opens/);
    expect(run.outcome).toMatchObject({ status: "ok", code: null });
  });

  it("reports every plan entry's repository id, as restic cat config gives it, once opened", () => {
    const run = runAgent(
      planText([
        ...standardPlan(unique("identity"), [
          ["repo", "web", "a", repoA, pwGood, "local:repo-a"],
          ["repo", "web", "b", join(base, "no-such-repo"), pwGood, "local:none"],
          ["copy", "web", "c", "a", repoCopy, pwGood, "local:repo-copy"],
          ["job", "etc", "standard_path", home, "", "", ""],
          // The same repository under the same URL (checked once) and spelled another way.
          ["repo", "etc", "d", repoA, pwGood, "local:repo-a"],
          ["repo", "etc", "e", `${repoA}/`, pwGood, "local:repo-a/"],
        ]),
        ["end"],
      ]),
    );
    const identities = run.events.filter((e) => e.event === "repo_identity");
    const idA = configId(repoA);
    expect(idA).toMatch(/^[0-9a-f]{64}$/);
    expect(new Map(identities.map((e) => [e.repo, e.repo_id]))).toEqual(
      new Map([
        ["a", idA],
        ["d", idA],
        ["e", idA],
        ["c", configId(repoCopy)],
      ]),
    );
    expect(identities).toHaveLength(4);
    // The repository that does not open has no id, and is a failed check as before.
    expect(checkNamed(run, "repo:local:none").ok).toBe(false);
  });

  it("fails only the repository whose password is wrong", () => {
    const run = runAgent(
      planText([
        ...standardPlan(unique("pw"), [
          ["repo", "web", "a", repoA, pwGood, "local:repo-a"],
          ["repo", "web", "b", repoB, pwWrong, "local:repo-b"],
        ]),
        ["end"],
      ]),
    );
    const bad = checkNamed(run, "repo:local:repo-b");
    expect(bad.ok).toBe(false);
    expect(bad.detail).toMatch(/wrong password/);
    expect(bad.code).toBe("repo_wrong_password");
    expect(hintForCheck(bad)).toMatch(/password_file/);
    expect(run.checks.filter((c) => c.name !== bad.name).every((c) => c.ok)).toBe(true);
    expect(run.outcome).toMatchObject({
      status: "failed",
      code: "preflight",
      message: `1 of ${run.checks.length} checks failed: repo:local:repo-b`,
    });
  });

  it("says how to create a missing repository, naming it by its label only", () => {
    const missing = join(base, "no-such-repo");
    const run = runAgent(
      planText([
        ...standardPlan(unique("missing"), [["repo", "web", "a", missing, pwGood, "LABEL-M"]]),
        ["end"],
      ]),
    );
    const check = checkNamed(run, "repo:LABEL-M");
    expect(check.ok).toBe(false);
    expect(check.detail).toMatch(/unable to open config file/);
    expect(check.detail).toContain("LABEL-M");
    expect(check.code).toBe("repo_missing");
    expect(hintForCheck(check)).toMatch(/restic init/);
    expect(run.stdout).not.toContain(missing);
    expect(run.stderr).not.toContain(missing);
    expect(run.outcome.code).toBe("preflight");
  });

  it("never shows credentials of a repository URL", () => {
    const url = "rest:http://user:hunter2@127.0.0.1:1/repo";
    const run = runAgent(
      planText([
        ...standardPlan(unique("cred"), [
          ["repo", "web", "a", url, pwGood, "rest:http://user:***@127.0.0.1:1/repo"],
        ]),
        ["end"],
      ]),
    );
    const check = checkNamed(run, "repo:rest:http://user:***@127.0.0.1:1/repo");
    expect(check.ok).toBe(false);
    expect(check.code).toBeNull();
    expect(hintForCheck(check)).toMatch(/unreachable/);
    expect(run.stdout + run.stderr).not.toContain("hunter2");
  });

  it("fails a password file that group or others can read, with the fix", () => {
    const loose = join(base, "pw-loose");
    writeFileSync(loose, "correct horse battery staple\n");
    chmodSync(loose, 0o644);
    const run = runAgent(
      planText([
        ...standardPlan(unique("mode"), [
          ["repo", "web", "a", repoA, pwGood, "A"],
          ["copy", "web", "c", "a", repoCopy, loose, "C"],
        ]),
        ["end"],
      ]),
    );
    const check = checkNamed(run, `password_file:${loose}`);
    expect(check.ok).toBe(false);
    expect(check.detail).toBe(`${loose} has mode 0644: group or others have access`);
    expect(check.hint).toBe(chownHint(loose));
    expect(checkNamed(run, `password_file:${pwGood}`).ok).toBe(true);
    expect(run.outcome.message).toBe(`1 of ${run.checks.length} checks failed: password_file:${loose}`);
  });

  it.skipIf(!IS_ROOT)("fails a password file owned by another user", () => {
    const foreign = writePrivate(join(base, "pw-foreign"), "x\n");
    chownSync(foreign, 65534, 65534);
    const run = runAgent(
      planText([...standardPlan(unique("owner"), [["repo", "web", "a", repoA, foreign, "A"]]), ["end"]]),
    );
    const check = checkNamed(run, `password_file:${foreign}`);
    expect(check.ok).toBe(false);
    expect(check.detail).toMatch(/owned by uid 65534, not by root \(uid 0\)/);
    expect(check.hint).toBe(chownHint(foreign));
  });

  it("fails missing and non-directory sources", () => {
    const run = runAgent(
      planText([
        ...standardPlan(unique("src"), [], join(base, "nope")),
        ["job", "file", "standard_path", pwGood, "", "", ""],
        ["end"],
      ]),
    );
    expect(checkNamed(run, "source_exists:web")).toMatchObject({
      ok: false,
      detail: `${join(base, "nope")} does not exist (or ${userInfo().username} cannot reach it)`,
    });
    expect(checkNamed(run, "source_exists:file")).toMatchObject({
      ok: false,
      detail: `${pwGood} exists but is not a directory`,
    });
  });

  it("takes shell metacharacters in every value literally", () => {
    const meta = join(base, "x", "a b", "$(touch PWNED)", "`id`", ";rm -rf x", "'q'", "-n");
    mkdirSync(meta, { recursive: true });
    const pw = writePrivate(join(meta, "pw $(touch PWNED) `touch PWNED`"), "correct horse battery staple\n");
    const repo = join(meta, "repo");
    resticInit(repo, pw);
    const envFile = writePrivate(
      join(meta, "env"),
      `AWS_FOO=$(touch ${join(base, "PWNED-env")})\nAWS_BAR=\`touch PWNED\`\n`,
    );
    const before = snapshotTree(join(base, "x"));
    const run = runAgent(
      planText([
        ...header("preflight", unique("meta")),
        ["restic_env_file", envFile],
        ["job", "web", "standard_path", meta, "", "", ""],
        ["exclude", "web", join(meta, "$(touch PWNED)")],
        ["repo", "web", "a", repo, pw, "label $(touch PWNED) `id` ;rm -rf x"],
        ["end"],
      ]),
    );
    expect(checkNamed(run, "source_exists:web")).toMatchObject({
      ok: true,
      detail: `${meta} is a directory`,
    });
    expect(checkNamed(run, `password_file:${pw}`).ok).toBe(true);
    expect(checkNamed(run, "restic_env_file").ok).toBe(true);
    expect(checkNamed(run, "repo:label $(touch PWNED) `id` ;rm -rf x").ok).toBe(true);
    expect(run.outcome.status).toBe("ok");
    expect(snapshotTree(join(base, "x"))).toEqual(before);
    expect(existsSync(join(base, "PWNED-env"))).toBe(false);
    expect(existsSync(join(process.cwd(), "PWNED"))).toBe(false);
    expect(readdirSync(base).filter((n) => n.includes("PWNED"))).toEqual([]);
  });

  it("escapes every control character, quote and backslash in its JSON", () => {
    let nasty = "ctl";
    for (let code = 1; code < 32; code++) nasty += String.fromCharCode(code);
    nasty += '"\\é\x7f end';
    const source = join(base, nasty);
    mkdirSync(source);
    const label = 'lab"el\\\n\t\x01\x1bé';
    const run = runAgent(
      planText([
        ...standardPlan(unique("json"), [["repo", "web", "a", repoA, pwGood, label]], source),
        ["end"],
      ]),
    );
    expect(checkNamed(run, "source_exists:web")).toMatchObject({
      ok: true,
      detail: `${source} is a directory`,
    });
    expect(checkNamed(run, `repo:${label}`).ok).toBe(true);
    expect(run.stdout).toContain("\\u0001");
    expect(run.stdout).toContain("\\n");
  });

  it("leaves nothing behind: no file, no lock, no restic cache", () => {
    const host = unique("clean");
    const runDir = newRunDir(host);
    const watched = [base, home];
    const before = watched.map((d) => snapshotTree(d));
    const runLock = existsSync(LOCK_DIR) ? snapshotTree(LOCK_DIR, false) : [];
    const run = runAgent(
      planText([
        ...standardPlan(host, [
          ["repo", "web", "a", repoA, pwGood, "A"],
          ["repo", "web", "b", repoB, pwWrong, "B"],
          ["copy", "web", "c", "a", repoCopy, pwGood, "C"],
        ]),
        ["end"],
      ]),
      { runDir },
    );
    expect(run.outcome.code).toBe("preflight");
    expect(watched.map((d) => snapshotTree(d))).toEqual(before);
    expect(existsSync(LOCK_DIR) ? snapshotTree(LOCK_DIR, false) : []).toEqual(runLock);
    expect(existsSync(`${LOCK_DIR}/rlvm-fleet.${host}.lock`)).toBe(false);
    expect(readdirSync(home)).toEqual([]);
  });
});

// Issue 14, point 4: a status run reads a shared repository whole, once, only where the plan says.
describe("status with real restic repositories", { timeout: 150_000 }, () => {
  it("reads whole only what a read record names, once per URL, for its jobs; an unidentified repository for this host and job", async (ctx) => {
    skipOrFail(ctx, "unit", RESTIC === undefined ? "restic is not installed" : undefined);
    const real = RESTIC as string;
    const shared = join(base, unique("shared"));
    resticInit(shared, pwGood);
    const data = join(base, unique("data"));
    mkdirSync(data);
    writeFileSync(join(data, "f"), "x\n");
    const backup = (host: string, tag: string) => {
      const r = spawnSync(real, ["backup", "--host", host, "--tag", tag, data], {
        env: { PATH: process.env.PATH, HOME: home, RESTIC_REPOSITORY: shared, RESTIC_PASSWORD_FILE: pwGood },
        encoding: "utf8",
      });
      expect(r.status, r.stderr).toBe(0);
    };
    backup("h1", "job:web");
    backup("h2", "job:web");
    backup("h2", "job:db");
    backup("h3", "job:other");
    // The real restic behind a wrapper that logs each call's arguments.
    const log = join(base, unique("restic-calls"));
    const tools = makeToolDir({
      restic: { script: `#!/bin/bash\nprintf '%s\\n' "$*" >>${log}\nexec ${real} "$@"\n` },
    });
    const host = unique("status");
    // status runs only while the controller keeps its stdin open: the plan, then no EOF until the result.
    const events = await agentHeldOpen(
      planText([
        ...header("status", host),
        ["job", "web", "standard_path", data, "", "", ""],
        ["job", "db", "standard_path", data, "", "", ""],
        ["repo", "web", "a", shared, pwGood, "shared"],
        ["read", "a", "db,web"],
        // The same URL again: identified, not read again.
        ["repo", "db", "b", shared, pwGood, "shared"],
        ["read", "b", "db,web"],
        // Identified and read elsewhere (no read record): only its identity.
        ["repo", "web", "c", repoA, pwGood, "repo-a"],
        // Cannot be identified here: read for this host and job, so restic says why.
        ["repo", "db", "d", join(base, "no-such-repo"), pwGood, "none"],
        ["end"],
      ]),
      newRunDir(host),
      { env: baseEnv({ RLVM_AGENT_TOOL_PATH: tools }), timeoutMs: 120_000 },
    );
    const run = { events, result: events.at(-1) };
    expect(run.result).toMatchObject({ code: null, message: "2 repositories read (1 could not be read)" });
    expect(run.events.filter((e) => e.event === "repo_identity").map((e) => e.repo)).toEqual(["a", "b", "c"]);
    const reads = run.events.filter((e) => e.event === "repo_snapshots");
    expect(reads.map((e) => e.repo)).toEqual(["a"]);
    const listed = reads[0]?.event === "repo_snapshots" ? reads[0].snapshots : [];
    expect(listed.map((s) => `${s.hostname} ${(s.tags ?? []).join(",")}`).sort()).toEqual([
      "h1 job:web",
      "h2 job:db",
      "h2 job:web",
    ]);
    const failed = run.events.filter((e) => e.event === "repo_snapshots_failed");
    expect(failed).toMatchObject([
      { repo: "d", message: expect.stringMatching(/^cannot read the repository \(exit \d+\)/) },
    ]);
    const snapshotCalls = readFileSync(log, "utf8")
      .split("\n")
      .filter((line) => line.split(" ").includes("snapshots"));
    expect(snapshotCalls).toEqual([
      "snapshots --json --no-lock --tag job:db --tag job:web",
      `snapshots --json --no-lock --host ${host} --tag job:db`,
    ]);
  });
});

// Finding 8 of issue 13: a tool is run only when no one but root (or the running user) can change it.
describe.skipIf(!IS_ROOT)("tool lookup, against a local user", () => {
  const NOBODY = 65534;

  /** A directory first in PATH holding a `restic` that leaves a marker if it is ever run. */
  function plantRestic(dirMode: number, fileOwner: number, fileMode = 0o755) {
    const dir = mkdtempSync(join(base, "path-"));
    const marker = join(base, unique("ran"));
    const file = join(dir, "restic");
    writeFileSync(
      file,
      `#!/bin/bash\ntouch '${marker}'\necho "restic 0.99.0 compiled with go1.21 on linux/amd64"\n`,
    );
    chmodSync(file, fileMode);
    chownSync(file, fileOwner, fileOwner);
    chmodSync(dir, dirMode);
    return { dir, file, marker };
  }

  function preflight(pathFirst: string): AgentRun {
    return runAgent(
      planText([
        ...header("preflight", unique("tools")),
        ["job", "web", "standard_path", join(base, "src"), "", "", ""],
        ["end"],
      ]),
      { env: baseEnv({ PATH: `${pathFirst}:${process.env.PATH ?? "/usr/bin:/bin"}` }) },
    );
  }

  it.each([
    [
      "a root-owned world-writable directory, a file of another user",
      0o1777,
      NOBODY,
      0o755,
      /its directory has mode 1777/,
    ],
    ["a root-owned directory, a file of another user", 0o755, NOBODY, 0o755, /it is owned by uid 65534/],
    ["a root-owned directory, a group-writable root file", 0o755, 0, 0o775, /it has mode 0775/],
    ["a group-writable root directory, a root file", 0o775, 0, 0o755, /its directory has mode 0775/],
  ])("never runs a tool from %s, and takes the next safe one", (_name, dirMode, owner, fileMode, why) => {
    const planted = plantRestic(dirMode, owner, fileMode);
    const run = preflight(planted.dir);
    expect(existsSync(planted.marker)).toBe(false);
    const restic = checkNamed(run, "restic");
    expect(restic.ok).toBe(RESTIC !== null);
    expect(restic.detail).not.toContain(planted.file);
    expect(run.stderr).toContain(`not running ${planted.file} (`);
    expect(run.stderr).toMatch(why);
  });

  it("still runs a root-owned tool from a root-owned directory that only root can write to", () => {
    const planted = plantRestic(0o755, 0);
    const run = preflight(planted.dir);
    expect(existsSync(planted.marker)).toBe(true);
    expect(checkNamed(run, "restic").detail).toBe(`0.99.0 (${planted.file})`);
  });

  it("says why restic was not run when no safe one is left", () => {
    const planted = plantRestic(0o1777, NOBODY);
    const tools = makeToolDir({ restic: "none" });
    const run = runAgent(
      planText([
        ...header("preflight", unique("tools")),
        ["job", "web", "standard_path", join(base, "src"), "", "", ""],
        ["end"],
      ]),
      { env: baseEnv({ RLVM_AGENT_TOOL_PATH: `${planted.dir}:${tools}` }) },
    );
    expect(existsSync(planted.marker)).toBe(false);
    expect(checkNamed(run, "restic").detail).toContain(
      `not run: ${planted.file} (its directory has mode 1777`,
    );
  });

  it("gives restic a fixed PATH of root's directories, whatever the agent's PATH", () => {
    const log = join(base, unique("restic-path"));
    const tools = makeToolDir({
      restic: {
        script: [
          "#!/bin/bash",
          'if [[ $1 == version ]]; then echo "restic 0.16.4 compiled with go1.21.6 on linux/amd64"; exit 0; fi',
          `printf '%s\\n' "$PATH" >> '${log}'`,
          "exit 1",
          "",
        ].join("\n"),
      },
    });
    runAgent(
      planText([
        ...header("preflight", unique("rpath")),
        ["job", "web", "standard_path", join(base, "src"), "", "", ""],
        ["repo", "web", "a", "/somewhere", pwGood, "A"],
        ["end"],
      ]),
      { env: baseEnv({ RLVM_AGENT_TOOL_PATH: tools, PATH: `/tmp:${tools}:${process.env.PATH ?? ""}` }) },
    );
    expect(readFileSync(log, "utf8")).toBe("/usr/sbin:/usr/bin:/sbin:/bin\n");
  });
});

describe("preflight without restic", () => {
  it("fails the restic check with an install hint and does not run repository checks", () => {
    const tools = makeToolDir({ restic: "none" });
    const run = runAgent(
      planText([
        ...header("preflight", unique("norestic")),
        ["job", "web", "standard_path", join(base, "src"), "", "", ""],
        ["repo", "web", "a", join(base, "repo-a"), pwGood, "A"],
        ["end"],
      ]),
      { env: { PATH: tools, HOME: home, RLVM_AGENT_TOOL_PATH: tools } },
    );
    const restic = checkNamed(run, "restic");
    expect(restic.ok).toBe(false);
    expect(restic.detail).toMatch(/^restic not found/);
    expect(restic.hint).toMatch(/apt-get install restic/);
    expect(checkNamed(run, "repo:A")).toMatchObject({
      ok: false,
      detail: "not checked: no usable restic (see the restic check)",
    });
    expect(checkNamed(run, "source_exists:web").ok).toBe(true);
    expect(run.outcome.message).toBe(`2 of ${run.checks.length} checks failed: restic, repo:A`);
  });

  it("fails a restic older than 0.14", () => {
    const tools = makeToolDir({
      restic: { script: '#!/bin/bash\necho "restic 0.12.1 compiled with go1.15 on linux/amd64"\n' },
    });
    const run = runAgent(planText([...header("preflight", unique("old")), ["end"]]), {
      env: baseEnv({ RLVM_AGENT_TOOL_PATH: tools }),
    });
    expect(checkNamed(run, "restic")).toMatchObject({
      ok: false,
      detail: `0.12.1 (${join(tools, "restic")}) is older than 0.14`,
    });
  });
});

describe("restic_env_file", () => {
  function fakeRestic(log: string, stderr: string): string {
    return [
      "#!/bin/bash",
      'if [[ $1 == version ]]; then echo "restic 0.16.4 compiled with go1.21.6 on linux/amd64"; exit 0; fi',
      "{",
      "  printf 'argv:'; printf ' [%s]' \"$@\"; printf '\\n'",
      ...[
        "RESTIC_REPOSITORY",
        "RESTIC_PASSWORD_FILE",
        "RESTIC_PASSWORD",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "RCLONE_SINGLE",
        "AZURE_WEIRD",
      ].map((k) => `  printf '${k}=%s\\n' "\${${k}-UNSET}"`),
      `} >> '${log}'`,
      `printf '%s\\n' ${stderr} >&2`,
      "exit 1",
      "",
    ].join("\n");
  }

  it("exports parsed variables to restic only, never in argv, and masks secrets in details", () => {
    const log = join(base, unique("restic-log"));
    const url = "rest:https://user:pa55w0rd@rest.example/repo";
    const tools = makeToolDir({
      restic: {
        script: fakeRestic(
          log,
          [
            `'Fatal: unable to open config file: Head "https://user:pa55w0rd@rest.example/repo/config": dial tcp: lookup rest.example: no such host (key AKIAEXAMPLE)'`,
            "'Is there a repository at the following location?'",
            `'${url}'`,
          ].join(" "),
        ),
      },
    });
    const envFile = writePrivate(
      join(base, unique("restic.env")),
      [
        "# cloud credentials",
        "",
        "export AWS_ACCESS_KEY_ID=AKIAEXAMPLE",
        'AWS_SECRET_ACCESS_KEY="s3cr3t/$(touch PWNED)`id`"',
        "  RCLONE_SINGLE='single quoted'",
        `AZURE_WEIRD=a=b "c" 'd'`,
        "",
      ].join("\n"),
    );
    const run = runAgent(
      planText([
        ...header("preflight", unique("env")),
        ["restic_env_file", envFile],
        ["job", "web", "standard_path", join(base, "src"), "", "", ""],
        ["repo", "web", "a", url, pwGood, "rest:https://user:***@rest.example/repo"],
        ["end"],
      ]),
      // A password in the agent's own environment must not reach restic.
      { env: baseEnv({ RLVM_AGENT_TOOL_PATH: tools, RESTIC_PASSWORD: "from-the-environment" }) },
    );
    expect(checkNamed(run, "restic_env_file")).toMatchObject({ ok: true });
    expect(checkNamed(run, "restic_env_file").detail).toContain("4 variable(s)");
    const repo = checkNamed(run, "repo:rest:https://user:***@rest.example/repo");
    expect(repo.ok).toBe(false);
    expect(repo.detail).toBe(
      'Fatal: unable to open config file: Head "https://***@rest.example/repo/config": dial tcp: lookup rest.example: no such host (key ***)',
    );
    expect(hintForCheck(repo)).toMatch(/unreachable/);
    for (const secret of ["pa55w0rd", "AKIAEXAMPLE", "s3cr3t", "single quoted"]) {
      expect(run.stdout + run.stderr).not.toContain(secret);
    }
    expect(readFileSync(log, "utf8").split("\n")).toEqual([
      "argv: [cat] [config] [--no-lock] [--no-cache]",
      `RESTIC_REPOSITORY=${url}`,
      `RESTIC_PASSWORD_FILE=${pwGood}`,
      "RESTIC_PASSWORD=UNSET",
      "AWS_ACCESS_KEY_ID=AKIAEXAMPLE",
      "AWS_SECRET_ACCESS_KEY=s3cr3t/$(touch PWNED)`id`",
      "RCLONE_SINGLE=single quoted",
      `AZURE_WEIRD=a=b "c" 'd'`,
      "",
    ]);
  });

  it("keeps backup from running a RESTIC_PREFIX of the file instead of restic", async () => {
    const marker = join(base, unique("prefix-ran"));
    const fake = join(base, unique("fake-restic"));
    writeFileSync(
      fake,
      `#!/bin/bash\ntouch '${marker}'\necho '{"message_type":"summary","snapshot_id":"deadbeef"}'\n`,
      { mode: 0o755 },
    );
    const envFile = writePrivate(join(base, unique("prefix.env")), `RESTIC_PREFIX=${fake}\n`);
    const host = unique("prefix");
    const events = await runHeldBackup(
      host,
      planText([
        ...header("backup", host),
        ["restic_env_file", envFile],
        ["job", "web", "standard_path", join(base, "src"), "", "", ""],
        ["repo", "web", "a", repoA, pwGood, "A"],
        ["end"],
      ]),
    );
    expect(existsSync(marker), "the file's RESTIC_PREFIX ran").toBe(false);
    expect(events.some((e) => e.event === "repo_done")).toBe(false);
    const check = events.find((e): e is CheckEvent => e.event === "check" && e.name === "restic_env_file");
    expect(check).toMatchObject({ ok: false });
    expect(check?.detail).toContain("RESTIC_PREFIX is not a variable");
  });

  it.each([
    ["group-readable", "A=b\n", 0o640, /has mode 0640/],
    ["with RESTIC_PASSWORD", "RESTIC_PASSWORD=x\n", 0o600, /line 1: RESTIC_PASSWORD is set per repository/],
    ["with a bad name", "# c\nexport 1A=secret-value\n", 0o600, /line 2: the variable name is not/],
    ["without =", "JUSTTEXT secret-value\n", 0o600, /line 1: expected KEY=VALUE/],
    // The agent's own variables, upper- or lower-case, and anything restic does not read: refused by name.
    [
      "setting the agent's RESTIC_PREFIX",
      "AWS_ACCESS_KEY_ID=secret-value\nRESTIC_PREFIX=/tmp/fake-restic\n",
      0o600,
      /line 2: RESTIC_PREFIX is not a variable restic or its backends read/,
    ],
    [
      "setting a lower-case local",
      "repo=/other\n",
      0o600,
      /line 1: repo is not a variable restic or its backends read/,
    ],
    ["setting PATH", "PATH=/tmp\n", 0o600, /line 1: PATH is not a variable restic or its backends read/],
    ["setting LD_PRELOAD", "LD_PRELOAD=/tmp/x.so\n", 0o600, /line 1: LD_PRELOAD is not a variable/],
    [
      "with RESTIC_FROM_REPOSITORY",
      "RESTIC_FROM_REPOSITORY=/x\n",
      0o600,
      /RESTIC_FROM_REPOSITORY is set per repository/,
    ],
    [
      "with RESTIC_REPOSITORY_FILE",
      "RESTIC_REPOSITORY_FILE=/x\n",
      0o600,
      /RESTIC_REPOSITORY_FILE is set per repository/,
    ],
  ])("refuses a file %s, and then checks no repository", (_name, content, mode, detail) => {
    const envFile = join(base, unique("bad.env"));
    writeFileSync(envFile, content);
    chmodSync(envFile, mode);
    const tools = makeToolDir({ restic: { script: fakeRestic(join(base, unique("never")), "'boom'") } });
    const run = runAgent(
      planText([
        ...header("preflight", unique("badenv")),
        ["restic_env_file", envFile],
        ["job", "web", "standard_path", join(base, "src"), "", "", ""],
        ["repo", "web", "a", "/somewhere", pwGood, "A"],
        ["end"],
      ]),
      { env: baseEnv({ RLVM_AGENT_TOOL_PATH: tools }) },
    );
    const check = checkNamed(run, "restic_env_file");
    expect(check.ok).toBe(false);
    expect(check.detail).toMatch(detail);
    expect(check.hint).not.toBe("");
    expect(run.stdout + run.stderr).not.toContain("secret-value");
    expect(checkNamed(run, "repo:A").detail).toBe("not checked: restic_env_file is unusable (see its check)");
  });
});

describe("preflight of LV jobs", () => {
  const lvPlan = (host: string): PlanRecord[] => [
    ...header("preflight", host),
    ["vg", "vg0", (1024 + 512 + 1 + 1) * 1024 * 1024, 256 * 1024 * 1024, 0],
    ["vg", "vg9", 1024 * 1024, 0, 0],
    ["vg", "vg1", 1024 * 1024 * 1024, 0, 0],
    ["job", "data", "logical_volume_nonroot", join(base, "src"), "vg0", "data", 1024 * 1024 * 1024],
    ["job", "root", "logical_volume_root", "/", "vg0", "root", 512 * 1024 * 1024],
    ["job", "other", "logical_volume_nonroot", join(base, "src"), "vg0", "other", 1024 * 1024],
    ["job", "off", "logical_volume_nonroot", join(base, "src"), "vg0", "off", 1024 * 1024],
    ["job", "gone", "logical_volume_nonroot", join(base, "src"), "vg9", "gone", 1024 * 1024],
    ["job", "big", "logical_volume_nonroot", join(base, "src"), "vg1", "big", 1024 * 1024 * 1024],
    ["end"],
  ];

  it("fails cleanly where lvm2 is not installed", () => {
    const tools = makeToolDir();
    const run = runAgent(planText(lvPlan(unique("nolvm"))), {
      env: baseEnv({ RLVM_AGENT_TOOL_PATH: tools }),
    });
    expect(checkNamed(run, "lvm")).toMatchObject({ ok: false, hint: "install lvm2: apt-get install lvm2" });
    expect(checkNamed(run, "lv:data")).toMatchObject({
      ok: false,
      detail: "cannot look up vg0/data: lvs not found",
    });
    expect(checkNamed(run, "mount:data")).toMatchObject({ ok: false, hint: "fix lv:data first" });
    expect(checkNamed(run, "source:root").ok).toBe(false);
    expect(checkNamed(run, "vg_free:vg0").ok).toBe(false);
    expect(checkNamed(run, "leftovers").ok).toBe(true);
    expect(run.outcome.code).toBe("preflight");
  });

  it.skipIf(!findInPath("findmnt"))("checks LVs, mounts, sources, VG space and tagged leftovers", () => {
    const majMin = (path: string) =>
      spawnSync("findmnt", ["-n", "-o", "MAJ:MIN", "--target", path], { encoding: "utf8" }).stdout.trim();
    const mountPoint = spawnSync("findmnt", ["-n", "-o", "TARGET", "--target", join(base, "src")], {
      encoding: "utf8",
    }).stdout.trim();
    const [dataMaj, dataMin] = majMin(join(base, "src")).split(":");
    const [rootMaj, rootMin] = majMin("/").split(":");
    const fake = `#!/bin/bash
# A stand-in for lvm2: answers the read-only queries the agent makes.
name=\${0##*/}
last=\${!#}
case $name in
  lvm) [[ $1 == version ]] && printf '  LVM version:     2.03.16(2) (2022-05-18)\\n  Library version: 1.02.185\\n' ;;
  lvs)
    case $last in
      vg0/data) echo "  data ${dataMaj} ${dataMin}" ;;
      vg0/root) echo "  root ${rootMaj} ${rootMin}" ;;
      vg0/other) echo "  other 253 99" ;;
      vg0/off) echo "  off -1 -1" ;;
      vg1/big) echo "  big 253 98" ;;
      @rlvm_host_*) echo "  vg0 data_rlvm_20240101T000000Z-old" ;;
      *) echo "  Volume group \\"\${last%%/*}\\" not found" >&2; exit 5 ;;
    esac ;;
  vgs)
    case $last in
      vg0) echo "  2147483648 10737418240" ;;
      vg1) echo "  1024 1073741824" ;;
      *) echo "  Volume group \\"$last\\" not found" >&2; exit 5 ;;
    esac ;;
  *) exit 3 ;;
esac
`;
    const tools = makeToolDir({ fakeLvm: fake });
    const run = runAgent(planText(lvPlan(unique("lv"))), { env: baseEnv({ RLVM_AGENT_TOOL_PATH: tools }) });
    const ok = (name: string) =>
      expect(checkNamed(run, name).ok, JSON.stringify(checkNamed(run, name))).toBe(true);
    expect(checkNamed(run, "lvm")).toMatchObject({ ok: true, detail: "LVM 2.03.16(2)" });
    ok("lv:data");
    expect(checkNamed(run, "mount:data").detail).toBe(`vg0/data is mounted at ${mountPoint}`);
    ok("mount:data");
    ok("source:data");
    ok("lv:root");
    expect(checkNamed(run, "mount:root")).toMatchObject({ ok: true, detail: "vg0/root is mounted at /" });
    ok("source:root");
    ok("lv:other");
    expect(checkNamed(run, "mount:other")).toMatchObject({
      ok: false,
      detail: "vg0/other (253:99) is not mounted",
    });
    expect(checkNamed(run, "source:other").ok).toBe(false);
    expect(checkNamed(run, "source:other").detail).toMatch(/not on vg0\/other \(253:99\)$/);
    expect(checkNamed(run, "lv:off")).toMatchObject({
      ok: false,
      detail: "vg0/off exists but is not active",
    });
    expect(checkNamed(run, "mount:off").detail).toBe("not checked: vg0/off is not active (see lv:off)");
    expect(checkNamed(run, "lv:gone")).toMatchObject({
      ok: false,
      detail: 'vg9/gone not found: Volume group "vg9" not found',
    });
    expect(checkNamed(run, "vg_free:vg0")).toMatchObject({
      ok: true,
      detail: "needs 1.7 GiB (snapshots 1.5 GiB + margin 256.0 MiB), free 2.0 GiB",
    });
    expect(checkNamed(run, "vg_free:vg1")).toMatchObject({
      ok: false,
      detail: "needs 1.0 GiB (snapshots 1.0 GiB + margin 0 B), free 1.0 KiB",
    });
    expect(checkNamed(run, "vg_free:vg9").ok).toBe(false);
    expect(checkNamed(run, "leftovers")).toMatchObject({
      ok: false,
      detail: "LV vg0/data_rlvm_20240101T000000Z-old",
      hint: "run rlvm-fleet backup or prune, which remove them, or remove them by hand",
    });
    expect(run.checks.map((c) => c.name).slice(0, 6)).toEqual([
      "bash",
      "restic",
      "lvm",
      "lv:data",
      "mount:data",
      "source:data",
    ]);
  });
});

describe("leftovers and lock", { timeout: 60_000 }, () => {
  /** Run directories next to a new one: marked ones held the host's lock (acquire_lock's `locked`). */
  const withSiblings = (host: string) => {
    const runDir = newRunDir(host);
    const parent = join(runDir, "..");
    const sibling = (name: string, owner: string | null, marked: boolean) => {
      const dir = join(parent, name);
      mkdirSync(dir, { mode: 0o700 });
      if (owner !== null) writeFileSync(join(dir, "host"), `${owner}\n`);
      if (marked) writeFileSync(join(dir, "locked"), "");
      return dir;
    };
    const dirs = {
      old: sibling("20240101T000000Z-old", host, true),
      // A run that never held the lock (ping, check, status) may be running now: never a leftover.
      lockless: sibling("20240101T000000Z-lockless", host, false),
      other: sibling("20240101T000000Z-other", `${host}x`, true),
      nohost: sibling("20240101T000000Z-nohost", null, true),
      hostLink: sibling("20240101T000000Z-hostlink", null, true),
    };
    symlinkSync(join(dirs.old, "host"), join(dirs.hostLink, "host"));
    symlinkSync(dirs.old, join(parent, "link-to-old"));
    return { runDir, parent, dirs };
  };

  it("lists earlier run directories of this host that held its lock, and only those", () => {
    const host = unique("left");
    const { runDir, dirs } = withSiblings(host);
    const run = runAgent(planText([...header("preflight", host), ["end"]]), { runDir });
    expect(checkNamed(run, "leftovers")).toMatchObject({
      ok: false,
      detail: `run directory ${dirs.old}`,
      hint: "run rlvm-fleet backup or prune, which remove them, or remove them by hand",
    });
    for (const dir of Object.values(dirs)) expect(existsSync(dir)).toBe(true);
  });

  it("check reports exactly the run directories that the sweep of prune then removes", () => {
    const host = unique("sweep");
    const { parent, dirs } = withSiblings(host);
    const check = runAgent(planText([...header("preflight", host), ["end"]]), {
      runDir: newRunDirIn(parent, host),
    });
    const reported = checkNamed(check, "leftovers").detail;
    const pruneDir = newRunDirIn(parent, host);
    try {
      const prune = runAgent(planText([...header("prune", host), ["end"]]), { runDir: pruneDir });
      // The bootstrap removes the run directory after the agent, marked or not.
      rmSync(pruneDir, { recursive: true });
      const removed = prune.events.flatMap((e) => (e.event === "orphan_removed" ? [e] : []));
      expect(removed.map((e) => `run directory ${e.name}`).join(", ")).toBe(reported);
      expect(removed).toMatchObject([{ kind: "run_dir", name: dirs.old }]);
      expect(existsSync(dirs.old)).toBe(false);
      for (const dir of [dirs.lockless, dirs.other, dirs.nohost, dirs.hostLink])
        expect(existsSync(dir)).toBe(true);
      const after = runAgent(planText([...header("preflight", host), ["end"]]), {
        runDir: newRunDirIn(parent, host),
      });
      expect(checkNamed(after, "leftovers")).toMatchObject({ ok: true, detail: "none" });
    } finally {
      // acquire_lock's lock file: root's (this case runs as root), or the login user's in TMPDIR.
      rmSync(`${LOCK_DIR}/rlvm-fleet.${host}.lock`, { force: true });
      rmSync(join(tmpdir(), `rlvm-fleet-locks.${process.getuid?.() ?? 0}`, `rlvm-fleet.${host}.lock`), {
        force: true,
      });
    }
  });

  it.skipIf(!IS_ROOT)(
    "sees a lock held by another run, and an existing free lock without taking it",
    async () => {
      const host = unique("lock");
      mkdirSync(LOCK_DIR, { recursive: true, mode: 0o755 });
      const lockFile = `${LOCK_DIR}/rlvm-fleet.${host}.lock`;
      const plan = planText([...header("preflight", host), ["end"]]);
      // The holder execs into sleep, so that killing it releases the lock (flock(1)'s child would keep it).
      const holder = spawn(BASH, ["-c", 'exec 9>>"$1" && flock -x 9 && exec sleep 60', "holder", lockFile], {
        stdio: "ignore",
      });
      try {
        await waitFor(
          "the holder to take the lock",
          () => existsSync(lockFile) && spawnSync("flock", ["-n", "-s", lockFile, "true"]).status === 1,
          { timeoutMs: 10_000, intervalMs: 50 },
        );
        const held = runAgent(plan);
        expect(checkNamed(held, "lock")).toMatchObject({
          ok: false,
          detail: `held by another run (${lockFile})`,
        });
        expect(held.outcome.message).toBe(`1 of ${held.checks.length} checks failed: lock`);
      } finally {
        holder.kill();
        await new Promise((resolve) => holder.once("exit", resolve));
      }
      try {
        const before = lstatSync(lockFile);
        const free = runAgent(plan);
        expect(checkNamed(free, "lock")).toMatchObject({ ok: true, detail: "not held" });
        expect(free.outcome.status).toBe(free.checks.every((c) => c.ok) ? "ok" : "failed");
        expect(lstatSync(lockFile).mtimeMs).toBe(before.mtimeMs);
        // Nothing keeps it: an exclusive lock is free right away.
        expect(spawnSync("flock", ["-n", "-x", lockFile, "true"]).status).toBe(0);
      } finally {
        rmSync(lockFile, { force: true });
      }
    },
  );

  it("reports an absent lock as free without creating it", () => {
    const host = unique("nolock");
    const run = runAgent(planText([...header("preflight", host), ["end"]]));
    expect(checkNamed(run, "lock")).toMatchObject({
      ok: true,
      detail: existsSync(LOCK_DIR)
        ? `not held (${LOCK_DIR}/rlvm-fleet.${host}.lock does not exist)`
        : `not held (${LOCK_DIR} does not exist)`,
    });
    expect(existsSync(`${LOCK_DIR}/rlvm-fleet.${host}.lock`)).toBe(false);
  });
});

// Finding 3 of issue 13: the lock lives where only root can create files, and is opened only there.
/** Run the agent with its stdin kept open until its result event, as the controller runs it. */
async function agentWithOpenStdin(input: string, runDir: string): Promise<ResultEvent> {
  return (await agentEventsWithOpenStdin(input, runDir)).result;
}

/** agentWithOpenStdin, with every event the agent sent, each checked against the protocol. */
async function agentEventsWithOpenStdin(
  input: string,
  runDir: string,
): Promise<{ events: AgentEvent[]; result: ResultEvent }> {
  const events = await agentHeldOpen(input, runDir);
  const result = events.find((e): e is ResultEvent => e.event === "result");
  if (result === undefined) throw new Error("no result event");
  return { events, result };
}

describe.skipIf(!IS_ROOT)("the host's lock, against a local user", () => {
  const NOBODY = 65534;

  function prune(host: string, env: NodeJS.ProcessEnv = baseEnv()): AgentRun {
    return runAgent(planText([...header("prune", host), ["end"]]), { runDir: newRunDir(host), env });
  }

  it("is not in the world-writable /run/lock: a user holding a flock there blocks nothing", async () => {
    const host = unique("dos");
    const trap = `/run/lock/rlvm-fleet.${host}.lock`;
    // What any local user can do on Debian, where /run/lock is 1777.
    writeFileSync(trap, "");
    chownSync(trap, NOBODY, NOBODY);
    const holder = spawn(BASH, ["-c", 'exec 9<"$1" && flock -s 9 && exec sleep 60', "holder", trap], {
      stdio: "ignore",
    });
    try {
      await waitFor(
        "the holder to take the lock",
        () => spawnSync("flock", ["-n", "-x", trap, "true"]).status === 1,
        {
          timeoutMs: 10_000,
          intervalMs: 50,
        },
      );
      const check = runAgent(planText([...header("preflight", host), ["end"]]));
      expect(checkNamed(check, "lock").ok).toBe(true);
      // As the controller does, stdin stays open until the result: EOF would mean "controller gone".
      const result = await agentWithOpenStdin(planText([...header("prune", host), ["end"]]), newRunDir(host));
      expect(result).toMatchObject({ event: "result", code: null });
      expect(existsSync(`${LOCK_DIR}/rlvm-fleet.${host}.lock`)).toBe(true);
      expect(lstatSync(LOCK_DIR)).toMatchObject({ uid: 0 });
      expect(lstatSync(LOCK_DIR).mode & 0o7777).toBe(0o755);
    } finally {
      holder.kill();
      await new Promise((resolve) => holder.once("exit", resolve));
      rmSync(trap, { force: true });
      rmSync(`${LOCK_DIR}/rlvm-fleet.${host}.lock`, { force: true });
    }
  });

  it("refuses a lock directory that others may write to, and creates nothing in it", () => {
    const host = unique("wdir");
    const dir = mkdtempSync(join(base, "locks-"));
    chmodSync(dir, 0o1777);
    const run = prune(host, baseEnv({ RLVM_AGENT_LOCK_DIR: dir }));
    expect(run.result).toMatchObject({ code: "agent_error" });
    expect(run.result.message).toContain(`refusing to take the host's lock: ${dir} has mode 1777`);
    expect(readdirSync(dir)).toEqual([]);
    const check = runAgent(planText([...header("preflight", host), ["end"]]), {
      env: baseEnv({ RLVM_AGENT_LOCK_DIR: dir }),
    });
    expect(checkNamed(check, "lock")).toMatchObject({ ok: false });
    expect(checkNamed(check, "lock").detail).toContain("the lock directory is not safe");
  });

  it("never follows a symlink at the lock's path, and never uses a file of another user", () => {
    const host = unique("link");
    const dir = mkdtempSync(join(base, "locks-"));
    chmodSync(dir, 0o755);
    const target = join(base, unique("nologin"));
    symlinkSync(target, join(dir, `rlvm-fleet.${host}.lock`));
    const linked = prune(host, baseEnv({ RLVM_AGENT_LOCK_DIR: dir }));
    expect(linked.result).toMatchObject({ code: "agent_error" });
    expect(linked.result.message).toContain("is not a regular file");
    expect(existsSync(target)).toBe(false);

    const other = unique("other");
    const foreign = join(dir, `rlvm-fleet.${other}.lock`);
    writeFileSync(foreign, "");
    chownSync(foreign, NOBODY, NOBODY);
    const run = prune(other, baseEnv({ RLVM_AGENT_LOCK_DIR: dir }));
    expect(run.result).toMatchObject({ code: "agent_error" });
    expect(run.result.message).toContain(`${foreign} is not owned by`);
  });
});

// The cases above skip, as the file loads, where what they need is missing. This case says so: a
// printed skip on a laptop, a failure where every unit case must run (RLVM_REQUIRE_UNIT=1, CI); it passes
// only when every one of them ran.
it("has what every case above needs: restic, shellcheck, findmnt, root", (ctx) => {
  const found = {
    "restic (apt-get install restic)": RESTIC !== null,
    "shellcheck (apt-get install shellcheck)": SHELLCHECK !== null,
    "findmnt (util-linux)": findInPath("findmnt") !== null,
    root: IS_ROOT,
  };
  const missing = Object.entries(found).flatMap(([need, ok]) => (ok ? [] : [need]));
  skipOrFail(ctx, "unit", missing.length > 0 ? `missing here: ${missing.join(", ")}` : undefined);
  expect(missing).toEqual([]);
});

describe("prune on a maintenance host", { timeout: 120_000 }, () => {
  const hostOf = (json: string) =>
    (JSON.parse(json) as { hostname: string; tags?: string[] }[]).map(
      (snap) => `${snap.hostname}${snap.tags?.includes("protected") ? "+protected" : ""}`,
    );
  function restic(repo: string, ...args: string[]): string {
    if (!RESTIC) throw new Error("restic is not installed");
    const r = spawnSync(RESTIC, ["--repo", repo, ...args], {
      env: { PATH: process.env.PATH, HOME: home, RESTIC_PASSWORD_FILE: pwGood },
      encoding: "utf8",
    });
    if (r.status !== 0) throw new Error(`restic ${args.join(" ")} failed: ${r.stderr}`);
    return r.stdout;
  }
  /** A repository with snapshots of job web from h1 (a protected one, then 3), h2 (3), h3 and h4 (2). */
  function sharedRepository(): { repo: string; id: string } {
    const repo = join(base, unique("shared"));
    resticInit(repo, pwGood);
    const source = mkdtempSync(join(base, "src-"));
    writeFileSync(join(source, "f"), "data");
    const backup = (host: string, ...tags: string[]) =>
      restic(repo, "backup", "--host", host, "--tag", ["job:web", ...tags].join(","), source);
    backup("h1", "protected");
    for (let i = 0; i < 3; i++) backup("h1");
    for (let i = 0; i < 3; i++) backup("h2");
    for (let i = 0; i < 2; i++) backup("h3");
    for (let i = 0; i < 2; i++) backup("h4");
    return { repo, id: configId(repo) };
  }
  const maintenancePlan = (repo: string, id: string, ...records: PlanRecord[]) =>
    planText([
      ...header("prune", unique("vault")),
      ["maintained", "m", repo, pwGood, "local:shared", id],
      ["forget_for", "m", "h1", "web", 1, 0, 0, 0, 0],
      ["forget_for", "m", "h2", "web", 2, 0, 0, 0, 0],
      ["forget_for", "m", "h3", "web", 1, 0, 0, 0, 0],
      ...records,
      ["end"],
    ]);

  const runMaintenance = (plan: string) => agentEventsWithOpenStdin(plan, newRunDir());

  it("forgets each named host's job with its own keep values (one forget per job and keep values), then prunes once", async () => {
    const { repo, id } = sharedRepository();
    const run = await runMaintenance(maintenancePlan(repo, id, ["prune", "m", id]));
    expect(run.result.code).toBeNull();
    const forgets = run.events.flatMap((e) => (e.event === "forget_for_done" ? [e] : []));
    expect(forgets.map((e) => [e.for_hosts, e.job, e.ok, e.dry_run])).toEqual([
      [["h1", "h3"], "web", true, false],
      [["h2"], "web", true, false],
    ]);
    // Each host's keep values applied to its snapshots alone: one group per host.
    expect(forgets.flatMap((e) => e.forget.map((g) => [g.host, (g.remove ?? []).length]))).toEqual([
      ["h1", 2],
      ["h3", 1],
      ["h2", 1],
    ]);
    expect(run.events.filter((e) => e.event === "repo_pruned")).toMatchObject([{ repo: "m", ok: true }]);
    // h4 is nobody's forget here: all of its snapshots stay; h1 keeps its latest and the protected one.
    expect(hostOf(restic(repo, "snapshots", "--json")).sort()).toEqual(
      ["h1", "h1+protected", "h2", "h2", "h3", "h4", "h4"].sort(),
    );
  });

  it("in a dry run forgets nothing and prunes nothing", async () => {
    const { repo, id } = sharedRepository();
    const before = restic(repo, "snapshots", "--json");
    const run = await runMaintenance(maintenancePlan(repo, id, ["dry_run"]));
    expect(run.result.code).toBeNull();
    const forgets = run.events.flatMap((e) => (e.event === "forget_for_done" ? [e] : []));
    expect(forgets.map((e) => [e.ok, e.dry_run])).toEqual([
      [true, true],
      [true, true],
    ]);
    expect(run.events.some((e) => e.event === "repo_pruned")).toBe(false);
    expect(restic(repo, "snapshots", "--json")).toBe(before);
  });

  it("touches nothing where the repository is not the one the hosts back up into", async () => {
    const { repo } = sharedRepository();
    const before = restic(repo, "snapshots", "--json");
    const other = "e".repeat(64);
    const run = await runMaintenance(maintenancePlan(repo, other, ["prune", "m", other]));
    const forgets = run.events.flatMap((e) => (e.event === "forget_for_done" ? [e] : []));
    expect(forgets).toHaveLength(2);
    for (const forget of forgets) {
      expect(forget.ok).toBe(false);
      expect(forget.message).toMatch(
        /^not forgotten: the repository here is not the one the hosts back up into/,
      );
    }
    expect(run.events.filter((e) => e.event === "repo_pruned")).toMatchObject([{ ok: false }]);
    expect(restic(repo, "snapshots", "--json")).toBe(before);
  });
});

// --- the private mount namespace ---------------------------------------------------------------

describe.skipIf(!IS_ROOT || !RESTIC)("the private mount namespace, as root", { timeout: 150_000 }, () => {
  /** A restic first in PATH that records the mount namespace it runs in, then runs the real one. */
  function recordingPath(): { env: NodeJS.ProcessEnv; namespaces: () => string[] } {
    const dir = mkdtempSync(join(base, "ns-tools-"));
    const record = join(dir, "namespaces");
    writeFileSync(
      join(dir, "restic"),
      `#!/bin/bash\nreadlink /proc/self/ns/mnt >>'${record}'\nexec '${RESTIC}' "$@"\n`,
      { mode: 0o755 },
    );
    return {
      env: baseEnv({ PATH: `${dir}:${process.env.PATH ?? "/usr/bin:/bin"}` }),
      namespaces: () => readFileSync(record, "utf8").trim().split("\n"),
    };
  }
  const ours = () => readlinkSync("/proc/self/ns/mnt");

  it("ping runs in the caller's mount namespace: no unshare, no second bash", () => {
    const { env, namespaces } = recordingPath();
    const run = runAgent(planText([...header("ping", unique("ns-ping")), ["end"]]), { env });
    expect(run.outcome).toMatchObject({ status: "ok", code: null });
    expect(namespaces()).toEqual([ours()]);
  });

  it("backup runs in a private one, its plan handed over in the run directory", async () => {
    const { env, namespaces } = recordingPath();
    const host = unique("ns-backup");
    const runDir = newRunDir(host);
    const plan = planText([
      ...header("backup", host),
      ["job", "web", "standard_path", join(base, "src"), "", "", ""],
      ["repo", "web", "a", repoA, pwGood, "A"],
      ["end"],
    ]);
    const events = await runHeldBackup(host, plan, { env, runDir });
    expect(events.filter((e) => e.event === "agent_start")).toHaveLength(1);
    expect(events.some((e) => e.event === "repo_done")).toBe(true);
    expect(events.at(-1)).toMatchObject({ event: "result", code: null });
    const seen = namespaces();
    expect(seen.length).toBeGreaterThan(1);
    for (const ns of seen) expect(ns).not.toBe(ours());
    expect(readFileSync(join(runDir, "plan"), "utf8")).toBe(plan);
  });
});
