// `backup` end to end over real sshd and real restic: standard_path jobs, copies, failure isolation,
// interruption and the cleanup guarantee. (LV jobs are proven on real LVM in the VM tier.)
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Server } from "node:http";
import { dirname, join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Report } from "../../src/report/report-schema.js";
import { runCli, runJson } from "../helpers/run-cli.js";
import { waitFor } from "../helpers/wait-for.js";
import { describeIntegration } from "./harness/describe-integration.js";
import { startFleet, type Fleet } from "./harness/fleet.js";
import {
  leftoverRunDirs,
  localResticVersion,
  resticFailureExits,
  resticInit,
  writeInventory,
  writePasswordFile,
} from "./helpers/test-fleet.js";

const HOSTS = ["bk1", "bk2", "bk3"];
const ROOT = join(import.meta.dirname, "../..");
const BIN = join(ROOT, "bin/rlvm-fleet.js");
const PASSWORD = "correct horse battery staple";

interface ResticSnapshot {
  id: string;
  hostname: string;
  tags?: string[];
  paths: string[];
}

describeIntegration("backup over real sshd and restic", () => {
  let fleet: Fleet;
  let dir: string;
  let passwordFile: string;
  let counter = 0;

  beforeAll(async () => {
    fleet = await startFleet({ hosts: HOSTS });
    dir = mkdtempSync(join(fleet.dir, "backup-"));
    chmodSync(dir, 0o755);
    passwordFile = writePasswordFile(join(dir, "restic-password"), PASSWORD);
  }, 120_000);

  afterAll(async () => {
    await fleet?.stop();
  });

  afterEach(async () => {
    // The cleanup guarantee, after every case: no run directory, no agent, no restic, no lock held.
    await waitFor(
      "no run directory and no agent left",
      () => leftoverRunDirs(fleet).length === 0 && agentProcesses().length === 0,
      {
        timeoutMs: 20_000,
        detail: () => JSON.stringify({ runDirs: leftoverRunDirs(fleet), agents: agentProcesses() }),
      },
    );
    for (const host of HOSTS) expect(lockHeld(host), `lock of ${host}`).toBe(false);
  });

  /** A fresh set of repositories and per-host sources for one case. */
  function setup(options: { bigFileMb?: number; sourceName?: (host: string) => string } = {}) {
    const base = join(dir, `case${++counter}`);
    mkdirSync(base);
    const repoA = resticInit(join(base, "repo-a"), passwordFile);
    const repoB = resticInit(join(base, "repo-b"), passwordFile);
    const copyDest = resticInit(join(base, "repo-copy"), passwordFile);
    const sources: Record<string, string> = {};
    for (const host of HOSTS) {
      const source = join(base, options.sourceName?.(host) ?? `src-${host}`);
      mkdirSync(join(source, "etc"), { recursive: true });
      writeFileSync(join(source, "etc", "hostname"), `${host}\n`);
      writeFileSync(join(source, "notes.txt"), `data of ${host}\n`);
      if (options.bigFileMb !== undefined) {
        execFileSync("head", ["-c", `${options.bigFileMb}M`, "/dev/urandom"], {
          stdio: ["ignore", openSync(join(source, "big.bin"), "w"), "inherit"],
        });
      }
      sources[host] = source;
    }
    const config = (host: string, repoBPassword = passwordFile, extraRepo = "") => {
      const file = join(base, `${host}.toml`);
      writeFileSync(
        file,
        `[standard_path.data]
backup_source_path = ${JSON.stringify(sources[host])}
exclude_paths = []

[[standard_path.data.repositories]]
repo_path = ${JSON.stringify(repoA)}
password_file = ${JSON.stringify(passwordFile)}
prune_keep_last = 3

  [[standard_path.data.repositories.copy_to]]
  repo = ${JSON.stringify(copyDest)}
  password_file = ${JSON.stringify(passwordFile)}
  prune_keep_last = 5

[[standard_path.data.repositories]]
repo_path = ${JSON.stringify(repoB)}
password_file = ${JSON.stringify(repoBPassword)}
prune_keep_last = 3
${extraRepo}`,
      );
      return file;
    };
    const inventory = (name: string, perHost: Record<string, string> = {}, hosts = HOSTS) =>
      writeInventory(fleet, join(base, name), {
        hosts,
        defaults: { config: join(base, "{host}.toml") },
        host: Object.fromEntries(Object.entries(perHost).map(([h, c]) => [h, { config: c }])),
      });
    for (const host of HOSTS) config(host);
    return { base, repoA, repoB, copyDest, sources, config, inventory };
  }

  const backup = (inventoryFile: string, ...args: string[]) => runJson("backup", inventoryFile, ...args);

  it("backs up 3 hosts into two repositories each, copies, and runs incrementally the second time", async () => {
    const s = setup();
    const reportFile = join(s.base, "report.json");
    const first = await backup(s.inventory("inventory.toml"), "--report", reportFile);
    expect(first.code, first.stdout).toBe(0);
    expect(first.report.summary).toMatchObject({ hosts: 3, ok: 3 });

    // Checked with restic itself: host = inventory name, our tags, the original path.
    for (const repo of [s.repoA, s.repoB, s.copyDest]) {
      const snapshots = resticSnapshots(repo);
      for (const host of HOSTS) {
        const mine = snapshots.filter((snap) => snap.hostname === host);
        expect(mine, `${repo} for ${host}`).toHaveLength(1);
        expect(mine[0]?.tags).toEqual(expect.arrayContaining(["rlvm-fleet", "job:data"]));
        expect(mine[0]?.paths).toEqual([s.sources[host]]);
      }
    }
    for (const host of first.report.hosts) {
      const job = host.jobs[0];
      expect(job?.status).toBe("ok");
      expect(job?.repos.map((r) => r.status)).toEqual(["ok", "ok"]);
      expect(job?.repos.every((r) => r.files_new === 2 && r.snapshot_id !== null)).toBe(true);
      // restic 0.16 and later say what the repository grew by after compression; 0.14 does not.
      const packed = Number(localResticVersion().split(".")[1]) >= 16;
      for (const r of job?.repos ?? [])
        if (packed) expect(r.data_added_packed).toBeGreaterThan(0);
        else expect(r.data_added_packed).toBeNull();
      expect(job?.copies.map((c) => [c.to, c.status])).toEqual([[s.copyDest, "ok"]]);
    }

    // The written report validates against the exported JSON Schema.
    const schema = JSON.parse(readFileSync(join(ROOT, "schema/report.schema.json"), "utf8"));
    const validate = new Ajv2020({ strict: false }).compile(schema);
    const written = JSON.parse(readFileSync(reportFile, "utf8"));
    expect(validate(written), JSON.stringify(validate.errors)).toBe(true);
    expect(written.run_id).toBe(first.report.run_id);

    const second = await backup(s.inventory("inventory.toml"));
    expect(second.code, second.stdout).toBe(0);
    for (const host of second.report.hosts) {
      for (const repo of host.jobs[0]?.repos ?? []) {
        expect(repo.files_new).toBe(0);
        expect(repo.files_unmodified).toBeGreaterThan(0);
      }
    }
  });

  it("--verify-sample restores sampled files of the snapshot just written and matches them; the option overrides verify_sample", async () => {
    const s = setup();
    for (const host of HOSTS)
      for (const n of [1, 2, 3, 4])
        writeFileSync(join(s.sources[host] ?? "", `more-${n}.txt`), `${host} ${n}\n`);
    const inventoryFile = writeInventory(fleet, join(s.base, "sample.toml"), {
      hosts: HOSTS,
      defaults: { config: join(s.base, "{host}.toml") },
      host: { bk1: { verify_sample: 3 } },
    });
    const sampleOf = (report: Report, host: string) => report.hosts.find((h) => h.name === host)?.jobs[0];

    const first = await backup(inventoryFile);
    expect(first.code, first.stdout).toBe(0);
    const job = sampleOf(first.report, "bk1");
    expect(job?.status).toBe("ok");
    expect(job?.restore).toMatchObject({
      repo: s.repoA,
      status: "ok",
      requested: 3,
      compared_with: "live",
      candidates: 6,
      sampled: 3,
      matched: 3,
      changed_since_backup: 0,
      mismatched: 0,
      missing: 0,
      snapshot_held_ms: null,
      error: null,
    });
    expect(job?.repos[0]?.snapshot_id?.startsWith(job.restore?.snapshot_id ?? "-")).toBe(true);
    expect(job?.restore?.sampled_paths.every((p) => p.startsWith(`${s.sources["bk1"]}/`))).toBe(true);
    expect(sampleOf(first.report, "bk2")?.restore).toBeUndefined();

    const off = await backup(inventoryFile, "--verify-sample", "0");
    expect(off.code, off.stdout).toBe(0);
    expect(off.report.hosts.map((h) => h.jobs[0]?.restore)).toEqual([undefined, undefined, undefined]);

    const all = await backup(inventoryFile, "--verify-sample", "2");
    expect(all.code, all.stdout).toBe(0);
    for (const host of HOSTS)
      expect(sampleOf(all.report, host)?.restore, host).toMatchObject({
        status: "ok",
        sampled: 2,
        matched: 2,
      });
  });

  it("backs up a source path full of shell metacharacters as is, executing nothing", async () => {
    const canary = join(dir, "PWNED");
    const hostile = (host: string) =>
      `we ird '"q"' $(touch ${canary}) \`touch ${canary}\`; rm -rf x/-n ${host}`;
    const s = setup({ sourceName: hostile });
    const run = await backup(s.inventory("inventory.toml", {}, ["bk1"]), "--limit", "bk1");
    expect(run.code, run.stdout).toBe(0);
    const snapshot = resticSnapshots(s.repoA).find((snap) => snap.hostname === "bk1");
    expect(snapshot?.paths).toEqual([s.sources["bk1"]]);
    const files = execFileSync(
      "restic",
      ["-r", s.repoA, "--password-file", passwordFile, "ls", snapshot?.id ?? ""],
      {
        encoding: "utf8",
      },
    );
    expect(files).toContain(join(s.sources["bk1"] as string, "notes.txt"));
    expect(existsSync(canary)).toBe(false);
  });

  it("isolates a failing repository: that host fails, its other repository and the other hosts succeed", async () => {
    const s = setup();
    const wrong = writePasswordFile(join(s.base, "wrong-password"), "not the password");
    const run = await backup(s.inventory("inventory.toml", { bk2: s.config("bk2", wrong) }));
    expect(run.code, run.stdout).toBe(1);
    expect(run.host("bk1")?.status).toBe("ok");
    expect(run.host("bk3")?.status).toBe("ok");
    const bk2 = run.host("bk2");
    expect(bk2).toMatchObject({ status: "failed", error: { code: "backup_failed" } });
    expect(bk2?.jobs[0]?.repos.map((r) => r.status)).toEqual(["ok", "failed"]);
    expect(bk2?.jobs[0]?.repos[1]?.error).toMatch(/wrong password|no key found/);
    expect(bk2?.jobs[0]?.repos[1]?.error_code).toBe("repo_wrong_password");
    expect(resticSnapshots(s.repoA).filter((snap) => snap.hostname === "bk2")).toHaveLength(1);
    expect(resticSnapshots(s.repoB).filter((snap) => snap.hostname === "bk2")).toHaveLength(0);
    // The table says at a glance which host and repository failed, and why.
    const table = await runCli([
      "backup",
      "--inventory",
      s.inventory("inventory.toml", { bk2: s.config("bk2", wrong) }),
      "--quiet",
      "--no-color",
    ]);
    expect(table.stdout).toMatch(
      new RegExp(
        `✗ bk2 / data → ${escapeRegExp(s.repoB)}: restic backup failed \\(exit ${resticFailureExits(localResticVersion()).wrongPassword}\\): .*(wrong password|no key found)`,
      ),
    );
    expect(table.stdout).toMatch(/RECAP backup 3 hosts: ok=2 partial=0 failed=1/);
  });

  it("keeps the // of a rest: URL, masks its password, and one unreachable repository stops no other", async () => {
    const requests: string[] = [];
    const server: Server = createServer((req, res) => {
      requests.push(`${req.method} ${req.url} ${req.headers.authorization ?? ""}`);
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const s = setup();
      const rest = `[[standard_path.data.repositories]]
repo_path = "rest:http://fleet:rest-secret-42@127.0.0.1:${port}/bk1-repo/"
password_file = ${JSON.stringify(passwordFile)}
`;
      const run = await backup(
        s.inventory("inventory.toml", { bk1: s.config("bk1", passwordFile, rest) }, ["bk1"]),
      );
      expect(run.host("bk1")?.jobs[0]?.repos.map((r) => r.status)).toEqual(["ok", "ok", "failed"]);
      expect(run.host("bk1")?.jobs[0]?.repos[2]?.repo).toBe(
        `rest:http://fleet:***@127.0.0.1:${port}/bk1-repo/`,
      );
      // restic reached the server at the right path: the URL arrived with its // intact.
      const basic = `Basic ${Buffer.from("fleet:rest-secret-42").toString("base64")}`;
      expect(
        requests.some((r) => r === `GET /bk1-repo/config ${basic}` || r === `HEAD /bk1-repo/config ${basic}`),
        requests.join("\n"),
      ).toBe(true);
      expect(run.stdout).not.toContain("rest-secret-42");
      expect(run.stderr).not.toContain("rest-secret-42");
    } finally {
      server.close();
    }
  });

  it("changes nothing with --dry-run, and lists what would run", async () => {
    const s = setup();
    const run = await backup(s.inventory("inventory.toml"), "--dry-run");
    expect(run.code, run.stdout).toBe(0);
    expect(run.report.options["dry_run"]).toBe(true);
    for (const host of run.report.hosts) {
      expect(host.jobs[0]?.status).toBe("planned");
      expect(host.jobs[0]?.repos.map((r) => r.status)).toEqual(["planned", "planned"]);
    }
    for (const repo of [s.repoA, s.repoB, s.copyDest]) expect(resticSnapshots(repo)).toEqual([]);
  });

  it("reports `already running` when the host's lock is held, and changes nothing", async () => {
    const s = setup();
    // flock's child inherits the lock: run both in their own process group and kill the group.
    mkdirSync(dirname(lockFile("bk1")), { recursive: true, mode: 0o755 });
    const holder = spawn("flock", ["-x", lockFile("bk1"), "sleep", "30"], {
      stdio: "ignore",
      detached: true,
    });
    try {
      await waitFor("the holder to take bk1's lock", () => lockHeld("bk1"), { timeoutMs: 5_000 });
      const run = await backup(s.inventory("inventory.toml", {}, ["bk1", "bk2"]));
      expect(run.code, run.stdout).toBe(1);
      expect(run.host("bk1")).toMatchObject({ status: "failed", error: { code: "locked" } });
      expect(run.host("bk1")?.error?.message).toMatch(/already running/);
      expect(run.host("bk2")?.status).toBe("ok");
      expect(resticSnapshots(s.repoA).filter((snap) => snap.hostname === "bk1")).toEqual([]);
    } finally {
      process.kill(-(holder.pid as number), "SIGKILL");
      await new Promise((r) => holder.once("exit", r));
    }
  });

  describe("interruption and the cleanup guarantee", () => {
    it("SIGINT to the controller mid-backup stops every agent, cleans up and exits 130 with a report", async () => {
      const s = setup({ bigFileMb: 150 });
      const reportFile = join(s.base, "interrupted.json");
      const controller = startController([
        "backup",
        "--inventory",
        s.inventory("inventory.toml"),
        "--report",
        reportFile,
        "--format",
        "json",
      ]);
      // Every host mid-backup: each has a repository and a copy still to do when SIGINT comes.
      await waitFor(
        "restic backup running for every host",
        () => HOSTS.every((h) => resticRunsFor(h, "backup")),
        {
          timeoutMs: 30_000,
          detail: () => JSON.stringify(resticProcesses()),
        },
      );
      controller.child.kill("SIGINT");
      const code = await controller.exited;
      expect(code, controller.stderr()).toBe(130);
      const report = JSON.parse(readFileSync(reportFile, "utf8")) as Report;
      expect(report.exit_code).toBe(130);
      expect(report.hosts.map((h) => [h.name, h.status, h.error?.code])).toEqual(
        HOSTS.map((h) => [h, "failed", "interrupted"]),
      );
      expect(resticProcesses()).toEqual([]);
      for (const repo of [s.repoA, s.repoB]) expect(resticLocks(repo)).toEqual([]);
    });

    it("a controller killed with SIGKILL mid-backup leaves, within seconds, no agent, no lock, no run directory", async () => {
      const s = setup({ bigFileMb: 150 });
      const controller = startController(["backup", "--inventory", s.inventory("inventory.toml")]);
      await controller.waitForStderr(/\[bk\d\] job data/);
      await waitFor("restic to run", () => resticProcesses().length > 0, { timeoutMs: 10_000 });
      controller.child.kill("SIGKILL");
      await controller.exited;
      await waitFor(
        "every agent and restic to exit",
        () => agentProcesses().length === 0 && resticProcesses().length === 0,
        {
          timeoutMs: 15_000,
          detail: () => JSON.stringify({ agents: agentProcesses(), restic: resticProcesses() }),
        },
      );
      expect(leftoverRunDirs(fleet)).toEqual([]);
      for (const host of HOSTS) expect(lockHeld(host)).toBe(false);
      for (const repo of [s.repoA, s.repoB]) expect(resticLocks(repo)).toEqual([]);
    });

    it("SIGTERM to the agent on the host stops restic too (it removes its lock) and reports it", async () => {
      const s = setup({ bigFileMb: 150 });
      const controller = startController([
        "backup",
        "--inventory",
        s.inventory("inventory.toml", {}, ["bk3"]),
        "--format",
        "json",
      ]);
      await waitFor("restic to run", () => resticProcesses().length > 0, { timeoutMs: 20_000 });
      const agent = agentProcesses()[0];
      expect(agent).toBeDefined();
      process.kill(agent?.pid as number, "SIGTERM");
      const code = await controller.exited;
      expect(code).toBe(1);
      const report = JSON.parse(controller.stdout()) as Report;
      expect(report.hosts[0]).toMatchObject({ status: "failed", error: { code: "agent_interrupted" } });
      expect(resticProcesses()).toEqual([]);
      expect(resticLocks(s.repoA)).toEqual([]);
    });

    it("restic SIGKILLed on the host: that repository fails, and the lock restic left is removed", async () => {
      const s = setup({ bigFileMb: 150 });
      const controller = startController([
        "backup",
        "--inventory",
        s.inventory("inventory.toml", {}, ["bk2"]),
        "--format",
        "json",
      ]);
      await waitFor(
        "restic to run and lock repo-a",
        () => resticProcesses().length > 0 && resticLocks(s.repoA).length > 0,
        {
          timeoutMs: 20_000,
        },
      );
      // restic cannot clean up after SIGKILL: its lock stays in the repository until someone unlocks.
      for (const restic of resticProcesses()) process.kill(restic.pid, "SIGKILL");
      const code = await controller.exited;
      expect(code, controller.stderr()).toBe(1);
      const report = JSON.parse(controller.stdout()) as Report;
      expect(report.hosts[0]).toMatchObject({ status: "failed", error: { code: "backup_failed" } });
      expect(report.hosts[0]?.jobs[0]?.repos[0]).toMatchObject({ status: "failed" });
      expect(report.hosts[0]?.jobs[0]?.repos[0]?.error).toMatch(/exit 137/);
      expect(resticLocks(s.repoA)).toEqual([]);
      expect(leftoverRunDirs(fleet)).toEqual([]);
    });

    it("a host whose sshd dies mid-run fails with connection_lost, and the others are unaffected", async () => {
      const s = setup({ bigFileMb: 150 });
      const controller = startController([
        "backup",
        "--inventory",
        s.inventory("inventory.toml"),
        "--format",
        "json",
      ]);
      await waitFor("restic running for bk3", () => resticRunsFor("bk3"), { timeoutMs: 20_000 });
      // SIGKILL, as a crash would: the connection drops with no exit status; the agent is left to notice.
      await fleet.killSshd("bk3");
      try {
        const code = await controller.exited;
        const report = JSON.parse(controller.stdout()) as Report;
        expect(code).toBe(1);
        expect(report.hosts.find((h) => h.name === "bk3")).toMatchObject({
          status: "failed",
          error: { code: "connection_lost" },
        });
        expect(report.hosts.filter((h) => h.name !== "bk3").map((h) => h.status)).toEqual(["ok", "ok"]);
      } finally {
        await fleet.startHost("bk3");
      }
    });
  });
});

function resticSnapshots(repo: string): ResticSnapshot[] {
  const out = execFileSync(
    "restic",
    ["-r", repo, "--password-file", passwordFileOf(repo), "snapshots", "--json", "--no-lock"],
    {
      encoding: "utf8",
    },
  );
  return JSON.parse(out) as ResticSnapshot[];
}

function resticLocks(repo: string): string[] {
  const out = execFileSync(
    "restic",
    ["-r", repo, "--password-file", passwordFileOf(repo), "list", "locks", "--no-lock"],
    {
      encoding: "utf8",
    },
  );
  return out.split("\n").filter((l) => l.trim() !== "");
}

/** Every case's repositories sit in a case directory whose parent holds the password file. */
function passwordFileOf(repo: string): string {
  return join(repo, "..", "..", "restic-password");
}

function processes(): { pid: number; args: string }[] {
  return execFileSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" })
    .split("\n")
    .map((line) => /^\s*(\d+)\s+(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ pid: Number(m[1]), args: m[2] ?? "" }));
}

function agentProcesses() {
  return processes().filter(
    (p) => /rlvm-agent\.sh/.test(p.args) && HOSTS.some((h) => p.args.includes(`.${h}/`)),
  );
}

function resticProcesses() {
  return processes().filter(
    (p) => /restic (backup|copy)/.test(p.args) && HOSTS.some((h) => p.args.includes(`--host ${h}`)),
  );
}

function resticRunsFor(host: string, command: "backup" | "copy" | "" = ""): boolean {
  return resticProcesses().some(
    (p) => p.args.includes(`restic ${command}`) && p.args.includes(`--host ${host}`),
  );
}

/** The host's lock as root takes it: in /run/rlvm-fleet/locks, which only root can write to. */
function lockFile(host: string): string {
  return `/run/rlvm-fleet/locks/rlvm-fleet.${host}.lock`;
}

function lockHeld(host: string): boolean {
  if (!existsSync(lockFile(host))) return false;
  const fd = openSync(lockFile(host), "r");
  try {
    // The lock file open as the child's fd 3: flock tests it without taking it for longer than a moment.
    execFileSync("flock", ["-n", "-s", "3"], { stdio: ["ignore", "ignore", "ignore", fd] });
    return false;
  } catch {
    return true;
  } finally {
    closeSync(fd);
  }
}

function startController(args: string[]): {
  child: ChildProcess;
  exited: Promise<number | null>;
  stdout: () => string;
  stderr: () => string;
  waitForStderr: (pattern: RegExp) => Promise<void>;
} {
  const child = spawn(process.execPath, [BIN, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  let out = "";
  let err = "";
  child.stdout?.on("data", (chunk: Buffer) => (out += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", (code, signal) => resolve(signal === "SIGKILL" ? null : code)),
  );
  return {
    child,
    exited,
    stdout: () => out,
    stderr: () => err,
    waitForStderr: async (pattern) => {
      await waitFor(`${pattern} in the controller's stderr`, () => pattern.test(err), {
        timeoutMs: 30_000,
        intervalMs: 50,
        detail: () => err,
      });
    },
  };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
