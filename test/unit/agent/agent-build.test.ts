// The agent is built from the modules in agents/src/ (scripts/build-agent.mjs). These tests hold the
// committed agents/rlvm-agent.sh to that build, and exercise modules alone, sourced by bash.
import { spawnSync } from "node:child_process";
import {
  accessSync,
  constants,
  cpSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { skipOrFail } from "../../helpers/skip-or-fail.js";

import { agentEvent, PLAN_FORMAT, planLine, PROTOCOL_VERSION } from "../../../src/agent/protocol.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const SRC = join(ROOT, "agents/src");
const AGENT = join(ROOT, "agents/rlvm-agent.sh");
const BUILD = join(ROOT, "scripts/build-agent.mjs");
const MODULES = readdirSync(SRC).filter((name) => name.endsWith(".sh"));

function findInPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? "").split(delimiter).filter((d) => d.startsWith("/"))) {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // not here
    }
  }
  return null;
}

const BASH = findInPath("bash") ?? "/bin/bash";
const SHELLCHECK = findInPath("shellcheck");

let base = "";
beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), "rlvm-agent-build-"));
});
afterAll(() => {
  if (base) rmSync(base, { recursive: true, force: true });
});

/**
 * Run bash with prelude.sh and then `modules` sourced, then `script`, in an empty directory with an
 * empty HOME and TMPDIR (so that any file a module creates shows up).
 */
function sourced(
  modules: string[],
  script: string,
  options: { args?: string[]; input?: string; env?: Record<string, string> } = {},
) {
  const dir = mkdtempSync(join(base, "run-"));
  const sources = ["prelude.sh", ...modules].map((m) => `source ${JSON.stringify(join(SRC, m))}`).join("\n");
  const r = spawnSync(
    BASH,
    ["--noprofile", "--norc", "-c", `${sources}\n${script}`, "test", ...(options.args ?? [])],
    {
      cwd: dir,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, TMPDIR: dir, LC_ALL: "C", ...options.env },
      input: options.input ?? "",
      encoding: "utf8",
      timeout: 30_000,
    },
  );
  if (r.error) throw r.error;
  return { ...r, files: readdirSync(dir) };
}

describe("the build", () => {
  it("lists every module of agents/src/, and the committed agent is its output byte for byte", () => {
    const r = spawnSync(process.execPath, [BUILD, "--check"], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const text = readFileSync(AGENT, "utf8");
    // Every module file is in the build's list (none is silently left out).
    for (const name of MODULES.filter((m) => m !== "prelude.sh"))
      expect(text, name).toContain(readFileSync(join(SRC, name), "utf8"));
  });

  it("fails --check, saying what to run, when the committed agent is stale", () => {
    const tree = mkdtempSync(join(base, "tree-"));
    cpSync(join(ROOT, "agents"), join(tree, "agents"), { recursive: true });
    cpSync(BUILD, join(tree, "scripts/build-agent.mjs"));
    const check = () =>
      spawnSync(process.execPath, [join(tree, "scripts/build-agent.mjs"), "--check"], { encoding: "utf8" });
    expect(check().status).toBe(0);
    const module = join(tree, "agents/src/cmd-ping.sh");
    writeFileSync(module, `${readFileSync(module, "utf8")}\n# an edit\n`);
    const stale = check();
    expect(stale.status).toBe(1);
    expect(stale.stderr).toContain("npm run build");
    // Building writes what --check then accepts.
    expect(spawnSync(process.execPath, [join(tree, "scripts/build-agent.mjs")]).status).toBe(0);
    expect(check().status).toBe(0);
    expect(readFileSync(join(tree, "agents/rlvm-agent.sh"), "utf8")).toContain("\n# an edit\n");
  });

  it("marks the agent as generated near its top, groups it, and ends it with main", () => {
    const lines = readFileSync(AGENT, "utf8").split("\n");
    expect(lines[0]).toBe("#!/usr/bin/env bash");
    expect(lines[1]).toBe(
      "# This file is generated from agents/src/ by scripts/build-agent.mjs: edit those, then npm run build.",
    );
    // The whole agent is one `{ ... }` group (see scripts/build-agent.mjs), main its last command.
    expect(lines[3]).toBe("{");
    expect(lines.at(-1)).toBe("");
    expect(lines.at(-2)).toBe("}");
    expect(lines.at(-3)).toBe('main "$@"');
    expect(lines.filter((line) => line === 'main "$@"')).toHaveLength(1);
  });
});

describe("each module alone", () => {
  for (const name of MODULES.filter((m) => m !== "prelude.sh")) {
    it(`${name} can be sourced after prelude.sh with no output and no side effect`, () => {
      // main.sh's last line runs the agent: it is sourced without that line.
      const script = name === "main.sh" ? "declare -F main >/dev/null || exit 9" : "";
      const modules = name === "main.sh" ? [] : [name];
      const mainBody =
        name === "main.sh" ? readFileSync(join(SRC, name), "utf8").replace(/\nmain "\$@"\n$/, "\n") : "";
      const r = sourced(modules, mainBody + script);
      expect(r.stdout).toBe("");
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      expect(r.files).toEqual([]);
    });
  }

  it("every module is shellcheck-clean checked alone", { timeout: 120_000 }, (ctx) => {
    skipOrFail(
      ctx,
      "unit",
      SHELLCHECK ? undefined : "shellcheck is not installed (apt-get install shellcheck)",
    );
    // agents/src/.shellcheckrc names what checking a module alone cannot see (the other modules' globals).
    const r = spawnSync(
      SHELLCHECK as string,
      MODULES.map((m) => join(SRC, m)),
      { cwd: SRC, encoding: "utf8" },
    );
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });
});

describe("json.sh", () => {
  it("json_string escapes every control character, quotes and backslashes", () => {
    const value = `${Array.from({ length: 31 }, (_, i) => String.fromCharCode(i + 1)).join("")} "q" \\ 'é' $(x) \``;
    const r = sourced(["json.sh"], 'json_string "$1"; printf "%s" "$REPLY"', { args: [value] });
    expect(r.stderr).toBe("");
    for (const char of r.stdout) expect(char.charCodeAt(0)).toBeGreaterThan(0x1f);
    expect(JSON.parse(r.stdout)).toBe(value);
  });

  it("emit writes one event line to fd 3, typed fields included", () => {
    const r = sourced(
      ["json.sh"],
      'exec 3>&1; emit warning code s:cow_high message "s:$1" n n:-12 z z: b b:true',
      {
        args: ['a "quoted"\nline'],
      },
    );
    expect(r.stdout).toBe(
      `{"v":${PROTOCOL_VERSION},"event":"warning","code":"cow_high","message":"a \\"quoted\\"\\nline","n":-12,"z":null,"b":true}\n`,
    );
  });
});

describe("plan.sh", () => {
  // fail() ends the run through cleanup_all (lifecycle.sh): here there is nothing to clean up.
  const readPlan = (lines: string[]) =>
    sourced(
      ["json.sh", "plan.sh"],
      "cleanup_all() { :; }\nexec 3>&1\nread_plan\ndeclare -p PLAN_HOST JOB_NAME JOB_SIZE >&2",
      {
        input: `${lines.join("\n")}\n`,
      },
    );

  it("read_plan parses a plan into its arrays", () => {
    const r = readPlan([
      `plan ${PLAN_FORMAT}`,
      planLine("run_id", "r1"),
      planLine("host", "web 1".replace(" ", "-")),
      planLine("command", "backup"),
      planLine("vg", "vg0", 1048576, 0, 0),
      planLine("job", "data", "logical_volume_nonroot", "/srv/data", "vg0", "data", "0001048576"),
      "end",
    ]);
    expect(r.stdout).toBe("");
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('declare -- PLAN_HOST="web-1"');
    expect(r.stderr).toContain('declare -a JOB_NAME=([0]="data")');
    expect(r.stderr).toContain('declare -a JOB_SIZE=([0]="1048576")');
  });

  for (const [what, record, message] of [
    ["a job name ..", planLine("job", "..", "standard_path", "/srv", "", "", ""), "the job name must match"],
    [
      "a relative source",
      planLine("job", "j", "standard_path", "srv", "", "", ""),
      "the source must be an absolute path",
    ],
    ["an unknown record", planLine("jobs", "j"), "unknown record"],
    ["a record with a value too many", "job j standard_path /a b - - -", "expected 6 value(s), got 7"],
    ["a value not encoded", "job j standard_path /a$b - - -", "a value is not encoded as the protocol says"],
  ] as const) {
    it(`read_plan refuses ${what} with one agent_protocol result`, () => {
      const r = readPlan([
        `plan ${PLAN_FORMAT}`,
        planLine("run_id", "r1"),
        planLine("host", "h"),
        record,
        "end",
      ]);
      expect(r.status).toBe(1);
      const events = r.stdout
        .trimEnd()
        .split("\n")
        .map((line) => agentEvent.parse(JSON.parse(line)));
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ event: "result", code: "agent_protocol" });
      expect(events[0]).toHaveProperty("message", expect.stringContaining(message));
      expect(r.stderr).not.toContain("declare -");
    });
  }
});

describe("exec.sh", () => {
  // A fake restic that prints its argv and its RESTIC_* environment.
  const fake = () => {
    const path = join(mkdtempSync(join(base, "fake-")), "restic");
    writeFileSync(
      path,
      '#!/bin/sh\nprintf "argv %s\\n" "$*"\nenv | LC_ALL=C sort | while read -r l; do case $l in RESTIC_*|AWS_*|TMPDIR=/run/*) echo "$l";; esac; done\n',
      {
        mode: 0o755,
      },
    );
    return path;
  };
  const run = (call: string, setup = "") =>
    sourced(
      ["json.sh", "helpers.sh", "exec.sh", "plan.sh", "checks.sh", "cmd-backup.sh"],
      [
        `TOOL[restic]=${JSON.stringify(fake())}`,
        "REPO_URL=(/srv/repo-0 's3:https://user:secret@s3/b') REPO_PWFILE=(/pw/0 /pw/1)",
        "COPY_URL=(/srv/copy-0) COPY_PWFILE=(/pw/c0) COPY_FROM=(1)",
        "ENV_KEYS=(AWS_SECRET_ACCESS_KEY) ENV_VALS=(hunter2)",
        setup,
        `capture ${call}`,
        'printf "%s\\n" "$CAP_OUT"; printf "rc %s\\n" "$CAP_RC"',
      ].join("\n"),
      // What the agent inherited never reaches restic.
      {
        env: {
          RESTIC_PASSWORD: "inherited",
          RESTIC_FROM_PASSWORD: "inherited",
          RESTIC_REPOSITORY: "/inherited",
        },
      },
    );

  it("restic_exec hands restic its repository, password file and restic_env_file through the environment only", () => {
    const repo = run("restic_exec repo 1 0 snapshots --json");
    expect(repo.stderr).toBe("");
    expect(repo.stdout).toBe(
      [
        "argv snapshots --json",
        "AWS_SECRET_ACCESS_KEY=hunter2",
        "RESTIC_PASSWORD_FILE=/pw/1",
        "RESTIC_REPOSITORY=s3:https://user:secret@s3/b",
        "rc 0",
        "",
      ].join("\n"),
    );
    expect(run("restic_exec copy_from 0 0 copy --host h").stdout).toBe(
      [
        "argv copy --host h",
        "AWS_SECRET_ACCESS_KEY=hunter2",
        "RESTIC_FROM_PASSWORD_FILE=/pw/1",
        "RESTIC_FROM_REPOSITORY=s3:https://user:secret@s3/b",
        "RESTIC_PASSWORD_FILE=/pw/c0",
        "RESTIC_REPOSITORY=/srv/copy-0",
        "rc 0",
        "",
      ].join("\n"),
    );
    expect(run("restic_exec none - 0 version").stdout).toBe(
      ["argv version", "AWS_SECRET_ACCESS_KEY=hunter2", "rc 0", ""].join("\n"),
    );
  });

  it("restic_exec view runs restic as the job's view sees it (prepare_view's chroot paths)", () => {
    const view = [
      // What prepare_view sets for a logical_volume_root job: restic runs through the prefix.
      'RESTIC_PREFIX=("${TOOL[restic]}" in-chroot) RESTIC_CACHE=/run/rlvm/cache',
      "RESTIC_REPO_AT=([0]=/run/rlvm/repo-0) RESTIC_PW_AT=([0]=/run/rlvm/pw-0)",
    ].join("\n");
    expect(run(`restic_exec view 0 0 backup -- /`, view).stdout).toBe(
      [
        "argv in-chroot backup -- /",
        "AWS_SECRET_ACCESS_KEY=hunter2",
        "RESTIC_CACHE_DIR=/run/rlvm/cache",
        "RESTIC_PASSWORD_FILE=/run/rlvm/pw-0",
        "RESTIC_REPOSITORY=/run/rlvm/repo-0",
        "TMPDIR=/run/rlvm/tmp",
        "rc 0",
        "",
      ].join("\n"),
    );
    // Without a chroot (the other categories), the repository as it is.
    expect(run(`restic_exec view 1 0 backup -- /srv`).stdout).toBe(
      [
        "argv backup -- /srv",
        "AWS_SECRET_ACCESS_KEY=hunter2",
        "RESTIC_PASSWORD_FILE=/pw/1",
        "RESTIC_REPOSITORY=s3:https://user:secret@s3/b",
        "rc 0",
        "",
      ].join("\n"),
    );
  });
});
