// The agent's verify in real bash with a real restic repository: the plan's verify records (valid
// subsets run; the invalid ones are refused in rlvm-agent.test.ts "plan protocol"), the restore drill's
// sampler (which files, deterministic, what it leaves out), its comparison (matched, changed since the
// backup, mismatch) and phase 2's one `restic check`. The agent runs with its stdin open, as the
// controller runs it.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentEvent, PLAN_FORMAT, planLine, type AgentEvent } from "../../../src/agent/protocol.js";
import { useFastKeys } from "../../helpers/fast-restic-key.js";
import { skipOrFail } from "../../helpers/skip-or-fail.js";
import { waitFor } from "../../helpers/wait-for.js";

const AGENT = fileURLToPath(new URL("../../../agents/rlvm-agent.sh", import.meta.url));
const HAS_RESTIC = spawnSync("restic", ["version"]).status === 0;

type RestoreSample = Extract<AgentEvent, { event: "restore_sample" }>;
type RepoChecked = Extract<AgentEvent, { event: "repo_checked" }>;

let base = "";
let home = "";
let password = "";
let repo = "";
let source = "";
let repoId = "";
let counter = 0;

const restic = (...args: string[]) =>
  execFileSync("restic", ["--repo", repo, "--password-file", password, ...args], {
    encoding: "utf8",
    env: { ...process.env, HOME: home },
  });

/** A run of the agent with `records` between the header and `end`: its events, once its result came. */
async function runVerify(
  records: (string | number)[][],
  options: {
    env?: Record<string, string>;
    whileRunning?: (runDir: string, pid: number) => Promise<void>;
  } = {},
): Promise<{ events: AgentEvent[]; runDir: string }> {
  counter += 1;
  const host = `verify-${process.pid}-${counter}`;
  const runDir = join(mkdtempSync(join(base, "runs-")), "self");
  mkdirSync(runDir, { mode: 0o700 });
  const lines = [
    ["plan", PLAN_FORMAT],
    ["run_id", "20260101T000000Z-verify"],
    ["host", host],
    ["command", "verify"],
    ["job", "web", "standard_path", source, "", "", ""],
    ["repo", "web", "r1", repo, password, "local:repo"],
    ...records,
    ["end"],
  ].map(([key, ...values]) => planLine(String(key), ...(values as (string | number)[])));
  const child = spawn("bash", [AGENT, runDir], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, LC_ALL: "C", ...options.env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  child.stdin.write(`${lines.join("\n")}\n`);
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  if (options.whileRunning !== undefined) await options.whileRunning(runDir, child.pid as number);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no result in 60 s:\n${stdout}\n${stderr}`)), 60_000);
    const done = () => {
      if (!stdout.includes('"event":"result"')) return false;
      clearTimeout(timer);
      resolve();
      return true;
    };
    if (!done()) child.stdout.on("data", done);
  });
  child.stdin.end();
  await new Promise((resolve) => child.once("exit", resolve));
  const events = stdout
    .trimEnd()
    .split("\n")
    .map((line) => agentEvent.parse(JSON.parse(line)));
  return { events, runDir };
}

const resultOf = (events: AgentEvent[]) => events.find((e) => e.event === "result");
const drillOf = (events: AgentEvent[]) =>
  events.find((e): e is RestoreSample => e.event === "restore_sample");

beforeAll(() => {
  if (!HAS_RESTIC) return;
  base = mkdtempSync(join(tmpdir(), "rlvm-verify-test-"));
  home = join(base, "home");
  mkdirSync(home, { mode: 0o700 });
  password = join(base, "pw");
  writeFileSync(password, "verify unit test password\n", { mode: 0o600 });
  repo = join(base, "repo");
  restic("init");
  useFastKeys(repo, password);
  repoId = (JSON.parse(restic("cat", "config", "--no-lock")) as { id: string }).id;
  source = join(base, "src");
  mkdirSync(join(source, "sub"), { recursive: true });
  for (let i = 0; i < 20; i++) writeFileSync(join(source, `f${String(i).padStart(2, "0")}`), `file ${i}\n`);
  // Never sampled: a glob character (restore --include takes patterns), a name restic escapes in JSON.
  writeFileSync(join(source, "sub", "we*rd"), "x\n");
  writeFileSync(join(source, "sub", 'quo"te'), "x\n");
  writeFileSync(join(source, "sub", "tab\there"), "x\n");
}, 60_000);

afterAll(() => {
  if (base !== "") rmSync(base, { recursive: true, force: true });
});

describe("verify in the agent", { timeout: 120_000 }, () => {
  it("has restic to run against", (ctx) => {
    skipOrFail(ctx, "unit", HAS_RESTIC ? undefined : "restic is not installed");
    expect(HAS_RESTIC).toBe(true);
  });

  describe.skipIf(!HAS_RESTIC)("with a backup of 20 plain files and 3 odd ones", () => {
    beforeAll(() => {
      restic("backup", "--host", "h", "--tag", "rlvm-fleet", "--tag", "job:web", source);
    });

    it.each(["1/7", "7/7", "100%", "2.5%", "0.1%", "500M", "2g"])(
      "takes --read-data-subset %s (a dry run: the ids only, no drill)",
      async (subset) => {
        const { events } = await runVerify([
          ["read_data_subset", subset],
          ["restore_sample", 5],
          ["dry_run"],
        ]);
        expect(resultOf(events)).toMatchObject({ code: null });
        expect(events.filter((e) => e.event === "repo_identity")).toHaveLength(1);
        expect(drillOf(events)).toBeUndefined();
      },
    );

    it("samples N regular files evenly spaced through the whole snapshot, moved by the UTC day, the same files twice", async () => {
      // The plan's host is the snapshot's: the agent lists `latest` of its own host and job.
      restic("backup", "--host", `verify-${process.pid}-${counter + 1}`, "--tag", "job:web", source);
      const first = await runVerify([
        ["read_data_subset", "1/7"],
        ["restore_sample", 5],
      ]);
      restic("backup", "--host", `verify-${process.pid}-${counter + 1}`, "--tag", "job:web", source);
      const second = await runVerify([
        ["read_data_subset", "1/7"],
        ["restore_sample", 5],
      ]);
      const day = Math.floor(Date.now() / 86_400_000);
      // Held while read, every 1st, 2nd, then 4th of the 20: those whose position plus the day is a
      // multiple of 4, wherever they are in the listing.
      const expected = Array.from({ length: 20 }, (_, k) => k)
        .filter((k) => (k + day) % 4 === 0)
        .map((k) => join(source, `f${String(k).padStart(2, "0")}`));
      for (const run of [first, second]) {
        expect(resultOf(run.events)).toMatchObject({ code: null });
        expect(drillOf(run.events)).toMatchObject({
          candidates: 20,
          sampled: 5,
          matched: 5,
          changed: 0,
          mismatched: 0,
          missing: 0,
          sampled_paths: expected,
          message: "",
        });
        // The restored copies went with the run: no directory of the drill is left in its run directory.
        expect(
          readdirSync(run.runDir, { withFileTypes: true })
            .filter((entry) => entry.isDirectory())
            .map((entry) => entry.name),
        ).toEqual([]);
      }
    });

    it("compares only unchanged files: a grown one is changed, the same size and mtime with other bytes a mismatch", async () => {
      const host = `verify-${process.pid}-${counter + 1}`;
      restic("backup", "--host", host, "--tag", "job:web", source);
      const grown = join(source, "f01");
      const swapped = join(source, "f02");
      writeFileSync(grown, `${readFileSync(grown, "utf8")}and more\n`);
      execFileSync("cp", ["-p", swapped, join(base, "reference")]);
      writeFileSync(swapped, readFileSync(swapped, "utf8").toUpperCase());
      execFileSync("touch", ["-r", join(base, "reference"), swapped]);
      const { events } = await runVerify([
        ["read_data_subset", "1/7"],
        ["restore_sample", 1000],
      ]);
      expect(resultOf(events)).toMatchObject({ code: null });
      expect(drillOf(events)).toMatchObject({
        candidates: 20,
        sampled: 20,
        matched: 18,
        changed: 1,
        changed_paths: [grown],
        mismatched: 1,
        mismatch_paths: [swapped],
        missing: 0,
      });
    });

    it("removes the restored files when the run is stopped in the middle of the drill", async () => {
      // restic as the agent finds it, through RLVM_AGENT_TOOL_PATH: the real one, except that restore
      // then waits, so the agent is stopped while the restored files are there.
      const tools = mkdtempSync(join(base, "tools-"));
      const names =
        readFileSync(AGENT, "utf8")
          .match(/^readonly TOOLS="([^"]*)"/m)?.[1]
          ?.split(" ") ?? [];
      for (const name of names) {
        const found = spawnSync("bash", ["-c", 'command -v "$1"', "which", name], { encoding: "utf8" });
        if (name !== "restic" && found.status === 0)
          symlinkSync(realpathSync(found.stdout.trim()), join(tools, name));
      }
      const real = realpathSync(
        execFileSync("bash", ["-c", "command -v restic"], { encoding: "utf8" }).trim(),
      );
      writeFileSync(
        join(tools, "restic"),
        `#!/bin/bash\n"${real}" "$@" || exit\nif [[ $1 == restore ]]; then exec sleep 60; fi\n`,
        { mode: 0o755 },
      );
      const host = `verify-${process.pid}-${counter + 1}`;
      restic("backup", "--host", host, "--tag", "job:web", source);
      let restoreDir = "";
      const { events } = await runVerify(
        [
          ["read_data_subset", "1/7"],
          ["restore_sample", 5],
        ],
        {
          env: { RLVM_AGENT_TOOL_PATH: tools },
          whileRunning: async (runDir, pid) => {
            restoreDir = join(runDir, "restore.0");
            await waitFor(
              "the restored files",
              () => existsSync(restoreDir) && readdirSync(restoreDir).length > 0,
              {
                timeoutMs: 30_000,
              },
            );
            process.kill(pid, "SIGTERM");
          },
        },
      );
      expect(resultOf(events)).toMatchObject({ code: "agent_interrupted" });
      expect(drillOf(events)).toBeUndefined();
      expect(existsSync(restoreDir)).toBe(false);
    });

    it("says why there is no drill when the host has no snapshot of the job", async () => {
      const { events } = await runVerify([
        ["read_data_subset", "1/7"],
        ["restore_sample", 5],
      ]);
      expect(drillOf(events)).toMatchObject({ sampled: 0, snapshot: "" });
      expect(drillOf(events)?.message).toMatch(
        /^(no snapshot of job web on this host in local:repo|cannot list the snapshot)/,
      );
    });

    it("phase 2: one restic check with the subset, only where the repository has the id the controller chose", async () => {
      const ok = await runVerify([
        ["read_data_subset", "3/7"],
        ["restore_sample", 0],
        ["maintain"],
        ["check", "r1", repoId],
      ]);
      expect(ok.events.filter((e) => e.event === "repo_checked")).toEqual([
        expect.objectContaining({ repo: "r1", ok: true, subset: "3/7", message: "" }),
      ]);
      expect(drillOf(ok.events)).toBeUndefined();
      const other = await runVerify([
        ["read_data_subset", "3/7"],
        ["restore_sample", 0],
        ["maintain"],
        ["check", "r1", "e".repeat(64)],
      ]);
      const checked = other.events.find((e): e is RepoChecked => e.event === "repo_checked");
      expect(checked).toMatchObject({ ok: false, duration_ms: 0 });
      expect(checked?.message).toContain(
        `not checked: the repository here is not the one the controller chose (its id is ${repoId})`,
      );
    });
  });
});
