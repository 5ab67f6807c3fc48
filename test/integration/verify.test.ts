// verify over real remote backends (issue 14, point 5): three hosts back up into one SFTP repository,
// one REST repository (`rclone serve restic`) and each its own local one. `restic check` is counted by
// a wrapper bound over the hosts' /usr/bin/restic, not taken from the report; the restore drill
// compares restored files with the live ones.
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from "node:fs";
import { basename, join } from "node:path";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { rotatingSubset } from "../../src/cli/commands/verify.js";
import { runJson } from "../helpers/run-cli.js";
import { describeIntegration } from "./harness/describe-integration.js";
import { startFleet, type Fleet } from "./harness/fleet.js";
import { requireExecutable } from "./harness/prerequisites.js";
import {
  createResticRecorder,
  sftpServer,
  startRestServer,
  type ResticRecorder,
  type RestServer,
} from "./harness/remote-backends.js";
import {
  leftoverRunDirs,
  localResticVersion,
  resticInit,
  writeInventory,
  writePasswordFile,
} from "./helpers/test-fleet.js";

const HOSTS = ["vf1", "vf2", "vf3"];
/** The tier runs restic 0.14 and 0.18; check takes --json from 0.18. */
const CHECK_JSON = Number(localResticVersion().split(".")[1]) >= 18;
const FILES = ["a.txt", "b.txt", "file.txt"];

describeIntegration("verify: one restic check per repository, and a restore drill per host and job", () => {
  let server: Fleet;
  let fleet: Fleet;
  let rest: RestServer;
  let recorder: ResticRecorder;
  let dir: string;
  let inventoryFile: string;
  const repos: { sftp: string; rest: string; local: Record<string, string> } = {
    sftp: "",
    rest: "",
    local: {},
  };
  const source = (host: string) => join(dir, "src", host);

  beforeAll(async () => {
    requireExecutable("rclone");
    server = await startFleet({ hosts: ["vvault"], firstAddress: 44 });
    dir = mkdtempSync(join(server.dir, "verify-"));
    chmodSync(dir, 0o755);
    const password = writePasswordFile(join(dir, "restic-password"), "verify test password");
    recorder = createResticRecorder(dir);
    const sftp = sftpServer(server, join(dir, "sftp"));
    resticInit(join(sftp.dir, "shared"), password);
    sftp.handOver();
    repos.sftp = sftp.url("shared");
    rest = await startRestServer(join(dir, "rest"));
    repos.rest = resticInit(rest.url("shared"), password, rest.path("shared"));
    fleet = await startFleet({ hosts: HOSTS, binds: [recorder.bind, sftp.bind] });
    for (const host of HOSTS) {
      repos.local[host] = resticInit(join(dir, `local-${host}`), password);
      mkdirSync(source(host), { recursive: true });
      for (const file of FILES) writeFileSync(join(source(host), file), `${host} ${file}\n`);
      // The first repository is the restore drill's: local on vf1 and vf2, the SFTP one on vf3.
      const order =
        host === "vf3"
          ? [repos.sftp, repos.rest, repos.local[host]]
          : [repos.local[host], repos.sftp, repos.rest];
      writeFileSync(
        join(dir, `${host}.toml`),
        `[standard_path.data]
backup_source_path = ${JSON.stringify(source(host))}

${order
  .map(
    (url) => `[[standard_path.data.repositories]]
repo_path = ${JSON.stringify(url)}
password_file = ${JSON.stringify(password)}
`,
  )
  .join("\n")}`,
      );
    }
    inventoryFile = writeInventory(fleet, join(dir, "inventory.toml"), {
      defaults: { config: join(dir, "{host}.toml") },
    });
    // One host at a time: rclone serve restic (1.60) writes uploads in place, so a host that lists
    // the repository while another uploads can read a half-written index (rclone issue 6329).
    const backup = await runJson("backup", inventoryFile, "--forks", "1");
    expect(backup.code, backup.stdout + backup.stderr).toBe(0);
  }, 300_000);

  afterAll(async () => {
    await fleet?.stop();
    await rest?.stop();
    await server?.stop();
  });

  afterEach(() => {
    // The restore drill's directory is below the run directory, which is gone with it.
    expect(leftoverRunDirs(fleet)).toEqual([]);
  });

  const allRepositories = () => [repos.sftp, repos.rest, ...HOSTS.map((h) => repos.local[h] as string)];
  const checksSince = (before: number) =>
    recorder
      .calls()
      .slice(before)
      .filter((c) => c.command === "check");

  it("--dry-run: says which host would check each repository and what each job would sample; reads nothing", async () => {
    const before = recorder.calls().length;
    const run = await runJson("verify", inventoryFile, "--dry-run");
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const commands = new Set(
      recorder
        .calls()
        .slice(before)
        .map((c) => c.command),
    );
    for (const heavy of ["check", "ls", "restore", "snapshots"]) expect(commands).not.toContain(heavy);
    expect(run.report.repositories).toHaveLength(5);
    for (const repository of run.report.repositories) {
      const checks = repository.actions.filter((a) => a.action === "check");
      expect(checks, repository.url).toHaveLength(1);
      expect(checks[0]).toMatchObject({ status: "planned", subset: rotatingSubset(new Date()) });
      expect(repository.hosts.map((h) => h.host)).toContain(checks[0]?.host);
    }
    for (const host of HOSTS)
      expect(run.host(host)?.jobs[0]?.restore).toMatchObject({ status: "planned", requested: 5 });
  });

  it("restic check runs exactly once per repository, with today's n/7 subset, and the restore drill matches", async () => {
    const before = recorder.calls().length;
    const run = await runJson("verify", inventoryFile);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const subset = rotatingSubset(new Date());
    const checks = checksSince(before);
    expect(checks.map((c) => c.repository).sort()).toEqual(allRepositories().sort());
    for (const c of checks) expect(c.args).toContain(`--read-data-subset ${subset}`);
    // restic 0.18's check --json: its summary's figures are reported; 0.14 has none to give.
    const json = CHECK_JSON;
    for (const c of checks) expect(c.args.split(" ").includes("--json"), c.args).toBe(json);
    for (const repository of run.report.repositories) {
      expect(repository.actions, repository.url).toEqual([
        expect.objectContaining({
          action: "check",
          status: "ok",
          subset,
          error: null,
          errors: json ? 0 : null,
          broken_packs: [],
        }),
      ]);
    }
    // One restore per host, from the job's first repository.
    const restores = recorder
      .calls()
      .slice(before)
      .filter((c) => c.command === "restore");
    expect(restores.map((c) => c.repository).sort()).toEqual(
      [repos.local["vf1"], repos.local["vf2"], repos.sftp].sort(),
    );
    for (const host of HOSTS) {
      const restore = run.host(host)?.jobs[0]?.restore;
      expect(restore, host).toMatchObject({
        status: "ok",
        candidates: FILES.length,
        sampled: FILES.length,
        matched: FILES.length,
        changed_since_backup: 0,
        mismatched: 0,
        error: null,
      });
      expect(run.host(host)?.status).toBe("ok");
    }
    expect(run.host("vf3")?.jobs[0]?.restore?.repo).toBe(repos.sftp);
  });

  it("a corrupted pack file fails its repository with restic's reason under --read-data-subset 100%; the others stay ok", async () => {
    const repository = repos.local["vf2"] as string;
    const packs = readdirSync(join(repository, "data"), { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => join(entry.parentPath, entry.name));
    expect(packs.length).toBeGreaterThan(0);
    const pack = packs[0] as string;
    const saved = join(dir, "pack.saved");
    copyFileSync(pack, saved);
    chmodSync(pack, 0o600);
    const bytes = readFileSync(pack);
    bytes.fill(0x55, 8, Math.min(bytes.length, 72));
    writeFileSync(pack, bytes);
    let run;
    const before = recorder.calls().length;
    try {
      run = await runJson("verify", inventoryFile, "--read-data-subset", "100%", "--restore-sample", "0");
    } finally {
      copyFileSync(saved, pack);
    }
    expect(run.code, run.stdout + run.stderr).toBe(1);
    expect(checksSince(before)).toHaveLength(5);
    for (const entry of run.report.repositories) {
      const check = entry.actions.find((a) => a.action === "check");
      expect(check?.subset).toBe("100%");
      if (entry.url === repository) {
        expect(check).toMatchObject({ host: "vf2", status: "failed" });
        // restic 0.14 says "Pack ID does not match, want …"; 0.18 "pack ID contains N errors: [blob …".
        expect(check?.error).toMatch(
          /restic check failed \(exit 1\): .*(Pack ID does not match|pack [0-9a-f]{64} contains \d+ errors)/,
        );
        expect(check?.error).toMatch(/Fatal: repository contains errors/);
        if (CHECK_JSON) {
          expect(check?.errors).toBeGreaterThan(0);
          expect(check?.broken_packs).toEqual([basename(pack)]);
        } else expect(check).toMatchObject({ errors: null, broken_packs: [] });
      } else expect(check?.status, entry.url).toBe("ok");
    }
    expect(run.host("vf2")).toMatchObject({ status: "failed", error: { code: "verify_failed" } });
    expect(run.host("vf1")?.status).toBe("ok");
    expect(run.host("vf3")?.status).toBe("ok");
    expect(run.host("vf2")?.jobs[0]?.restore).toBeUndefined();
  });

  it("one host unreachable: it stays unreachable (exit 4), the shared repositories are still checked once, its own one not", async () => {
    const before = recorder.calls().length;
    await fleet.stopHost("vf3");
    let run;
    try {
      run = await runJson("verify", inventoryFile, "--restore-sample", "0");
    } finally {
      await fleet.startHost("vf3");
    }
    expect(run.code, run.stdout + run.stderr).toBe(4);
    expect(run.host("vf3")?.status).toBe("unreachable");
    expect(run.host("vf1")?.status).toBe("ok");
    expect(
      checksSince(before)
        .map((c) => c.repository)
        .sort(),
    ).toEqual([repos.sftp, repos.rest, repos.local["vf1"], repos.local["vf2"]].sort());
    const own = run.report.repositories.find((r) => r.url === repos.local["vf3"]);
    expect(own?.actions).toEqual([]);
    for (const url of [repos.sftp, repos.rest]) {
      const check = run.report.repositories.find((r) => r.url === url)?.actions[0];
      expect(check, url).toMatchObject({ action: "check", status: "ok" });
      expect(["vf1", "vf2"]).toContain(check?.host);
    }
  });

  it("a file changed since the backup is reported as changed, not compared; same size and mtime with other bytes is a mismatch", async () => {
    const a = join(source("vf1"), "a.txt");
    writeFileSync(a, "vf1 a.txt, grown since the backup\n");
    const changed = await runJson("verify", inventoryFile, "--limit", "vf1");
    expect(changed.code, changed.stdout + changed.stderr).toBe(0);
    expect(changed.host("vf1")?.jobs[0]?.restore).toMatchObject({
      status: "ok",
      matched: 2,
      changed_since_backup: 1,
      changed_paths: [a],
      mismatched: 0,
    });
    // Same length, other bytes, and the mtime put back (touch -r): only the bytes tell.
    const b = join(source("vf1"), "b.txt");
    const reference = join(dir, "b.reference");
    execFileSync("cp", ["-p", b, reference]);
    writeFileSync(b, readFileSync(b, "utf8").toUpperCase());
    execFileSync("touch", ["-r", reference, b]);
    const mismatch = await runJson("verify", inventoryFile, "--limit", "vf1");
    expect(mismatch.code, mismatch.stdout + mismatch.stderr).toBe(1);
    expect(mismatch.host("vf1")).toMatchObject({ status: "failed", error: { code: "verify_failed" } });
    expect(mismatch.host("vf1")?.jobs[0]?.restore).toMatchObject({
      status: "failed",
      matched: 1,
      changed_since_backup: 1,
      mismatched: 1,
      mismatch_paths: [b],
    });
    expect(mismatch.host("vf1")?.jobs[0]?.restore?.error).toContain(b);
  });
});
