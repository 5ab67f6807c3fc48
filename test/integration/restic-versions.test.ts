// A missing repository, a wrong password and a repository locked by another restic, reported with the
// same precise code on every restic version the tier runs (scripts/test.mjs runs this tier on restic
// 0.14 and again on 0.18): from restic's exit code on 0.18, from its stderr on 0.14. And a prune that
// waits for another restic's lock, with --retry-lock on 0.18 and the agent's own loop on 0.14, as a
// restic wrapper bound over the hosts' /usr/bin/restic records.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { RESTIC_FAILURE_HINTS } from "../../src/run/hints.js";
import { waitFor } from "../helpers/wait-for.js";
import { runJson } from "../helpers/run-cli.js";
import { describeIntegration } from "./harness/describe-integration.js";
import { startFleet, type Fleet } from "./harness/fleet.js";
import { createResticRecorder, type ResticRecorder } from "./harness/remote-backends.js";
import {
  leftoverRunDirs,
  localResticVersion,
  resticFailureExits,
  resticInit,
  writeInventory,
  writePasswordFile,
} from "./helpers/test-fleet.js";

const HOSTS = ["rv1", "rv2"];

describeIntegration("restic's failures and locks, the same on every restic version", () => {
  let fleet: Fleet;
  let recorder: ResticRecorder;
  let dir: string;
  let recorderDir = "";
  let password: string;
  let inventoryFile: string;
  const repos = { good: "", missing: "", other: "", shared: "" };
  /** The restic this pass runs (the hosts run the same /usr/bin/restic), e.g. "0.14.0". */
  let version = "";
  /** restic 0.17 and later exit with 10, 11, 12; older ones with 1 for all three. */
  let exits = { missing: 1, locked: 1, wrongPassword: 1 };
  let retryLock = false;

  const restic = (repo: string, ...args: string[]) =>
    execFileSync("restic", ["-r", repo, "--password-file", password, ...args], { encoding: "utf8" });
  const locks = (repo: string) => readdirSync(join(repo, "locks"));

  /**
   * Another restic holding REPO's exclusive lock: `restic key passwd`, which takes it (on 0.14 and
   * 0.18 alike) and then waits on stdin for the new password. Ending its stdin ends it, and it
   * removes its lock as it exits.
   */
  async function holdLock(repo: string): Promise<{ release: () => Promise<void> }> {
    const child: ChildProcess = spawn("restic", ["-r", repo, "--password-file", password, "key", "passwd"], {
      stdio: ["pipe", "ignore", "ignore"],
    });
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    await waitFor("restic key passwd's lock", () => locks(repo).length > 0, { timeoutMs: 20_000 });
    return {
      release: async () => {
        child.stdin?.end();
        await exited;
        expect(locks(repo)).toEqual([]);
      },
    };
  }

  const config = (host: string, ...urls: string[]) =>
    writeFileSync(
      join(dir, `${host}.toml`),
      `[standard_path.data]
backup_source_path = ${JSON.stringify(join(dir, "src", host))}

${urls
  .map(
    (url) => `[[standard_path.data.repositories]]
repo_path = ${JSON.stringify(url)}
password_file = ${JSON.stringify(password)}
prune_keep_last = 1
`,
  )
  .join("\n")}`,
    );

  beforeAll(async () => {
    version = localResticVersion();
    // Each expectation that differs by version is written once, with both values.
    exits = resticFailureExits(version);
    retryLock = version === "0.18.0";

    recorderDir = mkdtempSync(join(tmpdir(), "rlvm-restic-versions-"));
    chmodSync(recorderDir, 0o755);
    recorder = createResticRecorder(recorderDir);
    fleet = await startFleet({ hosts: HOSTS, binds: [recorder.bind] });
    dir = mkdtempSync(join(fleet.dir, "restic-versions-"));
    chmodSync(dir, 0o755);
    password = writePasswordFile(join(dir, "restic-password"), "restic versions test password");
    const otherPassword = writePasswordFile(join(dir, "other-password"), "another password");
    repos.good = resticInit(join(dir, "good"), password);
    repos.missing = join(dir, "missing");
    repos.other = resticInit(join(dir, "other"), otherPassword);
    repos.shared = resticInit(join(dir, "shared"), password);
    for (const host of HOSTS) {
      mkdirSync(join(dir, "src", host), { recursive: true });
      writeFileSync(join(dir, "src", host, "file.txt"), `${host}\n`);
    }
    config("rv1", repos.good, repos.missing, repos.other);
    config("rv2", repos.shared);
    inventoryFile = writeInventory(fleet, join(dir, "inventory.toml"), {
      defaults: { config: join(dir, "{host}.toml") },
    });
  }, 120_000);

  afterAll(async () => {
    await fleet?.stop();
    if (recorderDir !== "") rmSync(recorderDir, { recursive: true, force: true });
  });

  afterEach(() => {
    expect(leftoverRunDirs(fleet)).toEqual([]);
  });

  it("check: a missing repository and a wrong password, each with its code and hint; the report says which restic", async () => {
    const run = await runJson("check", inventoryFile, "--limit", "rv1");
    expect(run.code, run.stdout + run.stderr).toBe(1);
    const host = run.host("rv1");
    expect(host?.facts?.restic).toBe(version);
    expect(host?.error?.code).toBe("preflight");
    const check = (repo: string) => host?.checks.find((c) => c.name === `repo:${repo}`);
    expect(check(repos.good)).toMatchObject({ ok: true, code: null });
    expect(check(repos.missing)).toMatchObject({
      ok: false,
      code: "repo_missing",
      hint: RESTIC_FAILURE_HINTS.repo_missing,
    });
    expect(check(repos.other)).toMatchObject({ ok: false, code: "repo_wrong_password" });
    expect(check(repos.other)?.hint).toMatch(/does not open this repository: check password_file/);
  });

  it("backup and status: the failed repositories carry the code, from restic's exit code on 0.18 and its stderr on 0.14", async () => {
    const backup = await runJson("backup", inventoryFile, "--limit", "rv1");
    expect(backup.code, backup.stdout + backup.stderr).toBe(1);
    const host = backup.host("rv1");
    expect(host?.facts?.restic).toBe(version);
    expect(host?.error?.code).toBe("backup_failed");
    const [good, missing, other] = host?.jobs[0]?.repos ?? [];
    expect(good).toMatchObject({ status: "ok", error_code: null });
    expect(missing).toMatchObject({ status: "failed", error_code: "repo_missing" });
    expect(missing?.error).toContain(`(exit ${exits.missing})`);
    expect(other).toMatchObject({ status: "failed", error_code: "repo_wrong_password" });
    expect(other?.error).toContain(`(exit ${exits.wrongPassword})`);

    const status = await runJson("status", inventoryFile, "--limit", "rv1");
    expect(status.code, status.stdout + status.stderr).toBe(1);
    expect(status.host("rv1")?.error?.code).toBe("repo_unreadable");
    expect(status.host("rv1")?.jobs[0]?.latest.map((l) => l.error_code)).toEqual([
      null,
      "repo_missing",
      "repo_wrong_password",
    ]);
  });

  it("a repository locked by another restic: the backup fails with repo_locked, and its hint is the host's", async () => {
    const lock = await holdLock(repos.shared);
    let backup;
    try {
      backup = await runJson("backup", inventoryFile, "--limit", "rv2");
    } finally {
      await lock.release();
    }
    expect(backup.code, backup.stdout + backup.stderr).toBe(1);
    const host = backup.host("rv2");
    expect(host?.error).toMatchObject({ code: "backup_failed", hint: RESTIC_FAILURE_HINTS.repo_locked });
    const [repo] = host?.jobs[0]?.repos ?? [];
    expect(repo).toMatchObject({ status: "failed", error_code: "repo_locked" });
    expect(repo?.error).toContain(`(exit ${exits.locked})`);
    // After the lock is gone the same backup works.
    const again = await runJson("backup", inventoryFile, "--limit", "rv2");
    expect(again.code, again.stdout + again.stderr).toBe(0);
  });

  it("a prune that waits for another restic's lock: --retry-lock on 0.18, the agent's own loop on 0.14", async () => {
    for (let i = 0; i < 2; i++) {
      writeFileSync(join(dir, "src", "rv2", "file.txt"), `run ${i}\n`);
      const backup = await runJson("backup", inventoryFile, "--limit", "rv2");
      expect(backup.code, backup.stdout + backup.stderr).toBe(0);
    }
    const before = recorder.calls().length;
    const lock = await holdLock(repos.shared);
    const pruning = runJson("prune", inventoryFile, "--limit", "rv2");
    try {
      // The forget is waiting for the lock: started, not finished (its preview, --dry-run --no-lock,
      // takes no lock and has run).
      await waitFor(
        "the host's restic forget",
        () =>
          recorder
            .calls()
            .slice(before)
            .some((c) => c.command === "forget" && !c.args.includes("--dry-run")),
        { timeoutMs: 60_000 },
      );
      await new Promise((resolve) => setTimeout(resolve, 3_000));
    } finally {
      await lock.release();
    }
    const prune = await pruning;
    expect(prune.code, prune.stdout + prune.stderr).toBe(0);
    expect(prune.host("rv2")?.jobs[0]?.prunes[0]).toMatchObject({ status: "ok", error_code: null });
    const snapshots = JSON.parse(restic(repos.shared, "snapshots", "--json", "--no-lock")) as {
      hostname: string;
    }[];
    expect(snapshots.filter((s) => s.hostname === "rv2")).toHaveLength(1);

    const calls = recorder
      .calls()
      .slice(before)
      .filter((c) => c.repository === repos.shared && (c.command === "forget" || c.command === "prune"));
    const previews = calls.filter((c) => c.command === "forget" && c.args.includes("--dry-run"));
    expect(previews).toHaveLength(1);
    expect(previews[0]?.args).toContain("--no-lock");
    const forgets = calls.filter((c) => c.command === "forget" && !c.args.includes("--dry-run"));
    expect(calls.map((c) => c.command)).toContain("prune");
    if (retryLock) {
      // restic waits itself: one forget, and every locking call says how long to wait.
      expect(forgets).toHaveLength(1);
      for (const call of [...forgets, ...calls.filter((c) => c.command === "prune")])
        expect(call.args).toMatch(/^--retry-lock 280s (forget|prune)( |$)/);
    } else {
      // restic 0.14 has no --retry-lock: the agent ran the forget again once the lock was gone.
      expect(forgets.length).toBeGreaterThanOrEqual(2);
      for (const call of calls) expect(call.args).not.toContain("--retry-lock");
    }
  });

  it("copy_to: a destination that does not exist and one with another password, each copy failure with its code", async () => {
    // Backup opens no copy destination before it runs: restic copy is the first to.
    writeFileSync(
      join(dir, "rv2.toml"),
      `[standard_path.data]
backup_source_path = ${JSON.stringify(join(dir, "src", "rv2"))}

[[standard_path.data.repositories]]
repo_path = ${JSON.stringify(repos.shared)}
password_file = ${JSON.stringify(password)}

  [[standard_path.data.repositories.copy_to]]
  repo = ${JSON.stringify(repos.missing)}
  password_file = ${JSON.stringify(password)}

  [[standard_path.data.repositories.copy_to]]
  repo = ${JSON.stringify(repos.other)}
  password_file = ${JSON.stringify(password)}
`,
    );
    const backup = await runJson("backup", inventoryFile, "--limit", "rv2");
    // A failed copy leaves the backup done: the host is partial (exit 3).
    expect(backup.code, backup.stdout + backup.stderr).toBe(3);
    expect(backup.host("rv2")?.status).toBe("partial");
    const job = backup.host("rv2")?.jobs[0];
    expect(job?.repos[0]).toMatchObject({ status: "ok", error_code: null });
    const [missing, other] = job?.copies ?? [];
    expect(missing).toMatchObject({ status: "failed", error_code: "repo_missing" });
    expect(missing?.error).toContain(`(exit ${exits.missing})`);
    expect(other).toMatchObject({ status: "failed", error_code: "repo_wrong_password" });
    expect(other?.error).toContain(`(exit ${exits.wrongPassword})`);
  });
});
