// Repositories shared by a fleet over real remote backends (issue 14): four hosts back up into one
// SFTP repository (a second fleet's sshd, reached by root's restic through a test ssh_config), one
// REST repository (`rclone serve restic`) and each its own local one. `restic prune` and `restic
// snapshots` are counted by a wrapper bound over the hosts' /usr/bin/restic, not taken from the report.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
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
  resticInit,
  writeInventory,
  writePasswordFile,
  writeSharingHost,
} from "./helpers/test-fleet.js";

const HOSTS = ["sr1", "sr2", "sr3", "sr4"];
/** sr2 keeps one snapshot per repository, the others two. */
const keepOf = (host: string) => (host === "sr2" ? 1 : 2);

interface Snapshot {
  short_id: string;
  hostname: string;
  tags?: string[];
  time: string;
}

describeIntegration("repositories shared over SFTP and REST: one prune and one read per repository", () => {
  let server: Fleet;
  let fleet: Fleet;
  let rest: RestServer;
  let recorder: ResticRecorder;
  let dir: string;
  let password: string;
  let inventoryFile: string;
  /** How the hosts' configs name the repositories, and where the test reads them (locally, as root). */
  const repos: { sftp: string; rest: string; local: Record<string, string> } = {
    sftp: "",
    rest: "",
    local: {},
  };
  let sftpPath: string;

  const restic = (repo: string, ...args: string[]) =>
    execFileSync("restic", ["-r", repo, "--password-file", password, ...args], { encoding: "utf8" });
  const snapshotsOf = (repo: string, host: string): Snapshot[] =>
    (JSON.parse(restic(repo, "snapshots", "--json", "--no-lock")) as Snapshot[]).filter(
      (s) => s.hostname === host,
    );
  /** Every repository as the test reads it: the SFTP one through its directory on this machine. */
  const readable = () => [sftpPath, repos.rest, ...Object.values(repos.local)];

  beforeAll(async () => {
    requireExecutable("rclone");
    server = await startFleet({ hosts: ["vault"], firstAddress: 40 });
    dir = mkdtempSync(join(server.dir, "shared-"));
    chmodSync(dir, 0o755);
    password = writePasswordFile(join(dir, "restic-password"), "shared repositories test password");
    recorder = createResticRecorder(dir);
    const sftp = sftpServer(server, join(dir, "sftp"));
    sftpPath = resticInit(join(sftp.dir, "shared"), password);
    sftp.handOver();
    repos.sftp = sftp.url("shared");
    rest = await startRestServer(join(dir, "rest"));
    repos.rest = resticInit(rest.url("shared"), password, rest.path("shared"));
    fleet = await startFleet({ hosts: HOSTS, binds: [recorder.bind, sftp.bind] });
    for (const host of HOSTS) {
      repos.local[host] = resticInit(join(dir, `local-${host}`), password);
      writeSharingHost(dir, host, {
        repos: [repos.local[host], repos.sftp, repos.rest],
        passwordFile: password,
        keepLast: keepOf(host),
      });
    }
    inventoryFile = writeInventory(fleet, join(dir, "inventory.toml"), {
      defaults: { config: join(dir, "{host}.toml") },
    });
    for (let i = 0; i < 3; i++) {
      writeFileSync(join(dir, "src", "sr1", `run${i}.txt`), `${i}\n`);
      // One host at a time: rclone serve restic (1.60) writes uploads in place, so a host that lists
      // the repository while another uploads can read a half-written index (rclone issue 6329).
      const backup = await runJson("backup", inventoryFile, "--forks", "1");
      expect(backup.code, backup.stdout + backup.stderr).toBe(0);
    }
    // sr1's first snapshot in each shared repository is protected: no retention removes it.
    for (const repo of [sftpPath, repos.rest]) {
      const oldest = snapshotsOf(repo, "sr1").sort((a, b) => a.time.localeCompare(b.time))[0];
      restic(repo, "tag", "--add", "protected", oldest?.short_id ?? "none");
    }
  }, 300_000);

  afterAll(async () => {
    await fleet?.stop();
    await rest?.stop();
    await server?.stop();
  });

  afterEach(() => {
    expect(leftoverRunDirs(fleet)).toEqual([]);
  });

  it("the backups went over SFTP and REST: three snapshots of every host in every repository", () => {
    for (const repo of [sftpPath, repos.rest]) {
      for (const host of HOSTS) expect(snapshotsOf(repo, host), `${repo} ${host}`).toHaveLength(3);
    }
    for (const host of HOSTS) expect(snapshotsOf(repos.local[host] as string, host)).toHaveLength(3);
    // The hosts' restic really used the remote URLs (the wrapper saw them).
    const backedUp = new Set(recorder.repositoriesOf("backup"));
    expect(backedUp).toContain(repos.sftp);
    expect(backedUp).toContain(repos.rest);
  });

  /** The repositories a host's config names, in its order (the order of its job's latest[]). */
  const reposOf = (host: string) => [repos.local[host] as string, repos.sftp, repos.rest];
  /** Where the test reads a repository a host's config names. */
  const readableOf = (url: string) => (url === repos.sftp ? sftpPath : url);
  /** The `restic snapshots` calls since `before`, by repository. */
  const snapshotReads = (before: number) =>
    recorder
      .calls()
      .slice(before)
      .filter((c) => c.command === "snapshots")
      .map((c) => c.repository)
      .sort();

  /** Every host's latest[] is each repository's newest snapshot of that host, read here, with its age. */
  const expectLatest = (run: Awaited<ReturnType<typeof runJson>>, hosts: readonly string[]) => {
    const finished = Date.parse(run.report.finished_at);
    for (const host of hosts) {
      const job = run.host(host)?.jobs[0];
      expect(job?.status, host).toBe("ok");
      const newest = reposOf(host).map(
        (url) => snapshotsOf(readableOf(url), host).sort((a, b) => b.time.localeCompare(a.time))[0],
      );
      expect(
        job?.latest.map((l) => [l.repo, l.snapshot_id, l.time, l.error]),
        host,
      ).toEqual(reposOf(host).map((url, i) => [url, newest[i]?.short_id, newest[i]?.time, null]));
      for (const [i, latest] of (job?.latest ?? []).entries()) {
        const expected = Math.floor((finished - Date.parse(newest[i]?.time ?? "")) / 1000);
        expect(latest.age_s, `${host} ${latest.repo}`).toBeGreaterThanOrEqual(expected - 5);
        expect(latest.age_s, `${host} ${latest.repo}`).toBeLessThanOrEqual(expected + 1);
      }
    }
  };

  it("status reads each shared repository once and each local one on its host; every host and job gets its own latest snapshot and age", async () => {
    const before = recorder.calls().length;
    const status = await runJson("status", inventoryFile);
    expect(status.code, status.stdout + status.stderr).toBe(0);
    // Counted where restic ran: one read per distinct repository, not one per host.
    expect(snapshotReads(before)).toEqual(
      [repos.sftp, repos.rest, ...HOSTS.map((h) => repos.local[h])].sort(),
    );
    expectLatest(status, HOSTS);
    // Every host's latest in a shared repository is its own: three hosts' snapshots are not one host's.
    const sftpLatest = HOSTS.map((h) => status.host(h)?.jobs[0]?.latest[1]?.snapshot_id);
    expect(new Set(sftpLatest).size).toBe(HOSTS.length);
    // The report says who read which repository, once for every host (for_host null).
    for (const url of [repos.sftp, repos.rest]) {
      const entry = status.report.repositories.find((r) => r.url === url);
      expect(entry?.hosts.map((h) => h.host)).toEqual(HOSTS);
      expect(entry?.actions).toHaveLength(1);
      expect(entry?.actions[0]).toMatchObject({
        action: "snapshots",
        for_host: null,
        status: "ok",
        error: null,
      });
      expect(HOSTS).toContain(entry?.actions[0]?.host);
    }
    // Different shared repositories are read by different hosts, side by side.
    const readers = [repos.sftp, repos.rest].map(
      (url) => status.report.repositories.find((r) => r.url === url)?.actions[0]?.host,
    );
    expect(new Set(readers).size).toBe(2);
  });

  it("status with the reader of a shared repository unreachable: it stays unreachable, another host reads it, once, and every other host gets its status", async () => {
    const first = await runJson("status", inventoryFile);
    const reader = first.report.repositories.find((r) => r.url === repos.sftp)?.actions[0]?.host ?? "?";
    expect(HOSTS).toContain(reader);
    const before = recorder.calls().length;
    await fleet.stopHost(reader);
    let status;
    try {
      status = await runJson("status", inventoryFile);
    } finally {
      await fleet.startHost(reader);
    }
    expect(status.code, status.stdout + status.stderr).toBe(4);
    expect(status.host(reader)).toMatchObject({ status: "unreachable" });
    const others = HOSTS.filter((h) => h !== reader);
    expect(snapshotReads(before)).toEqual(
      [repos.sftp, repos.rest, ...others.map((h) => repos.local[h])].sort(),
    );
    expectLatest(status, others);
    const sftp = status.report.repositories.find((r) => r.url === repos.sftp);
    expect(sftp?.actions).toHaveLength(1);
    expect(others).toContain(sftp?.actions[0]?.host);
  });

  it("one host unreachable: its snapshots stay, each repository is pruned once, exit 4 and missing_forgets names it", async () => {
    const before = recorder.calls().length;
    await fleet.stopHost("sr4");
    let prune;
    try {
      prune = await runJson("prune", inventoryFile);
    } finally {
      await fleet.startHost("sr4");
    }
    expect(prune.code, prune.stdout + prune.stderr).toBe(4);
    expect(prune.host("sr4")?.status).toBe("unreachable");
    const prunes = recorder
      .calls()
      .slice(before)
      .filter((c) => c.command === "prune")
      .map((c) => c.repository);
    expect(prunes.sort()).toEqual(
      [repos.sftp, repos.rest, repos.local["sr1"], repos.local["sr2"], repos.local["sr3"]].sort(),
    );
    for (const url of [repos.sftp, repos.rest]) {
      const entry = prune.report.repositories.find((r) => r.url === url);
      expect(entry?.missing_forgets, url).toEqual(["sr4"]);
    }
    for (const repo of [sftpPath, repos.rest]) {
      expect(snapshotsOf(repo, "sr4"), `${repo}: sr4 untouched`).toHaveLength(3);
      expect(snapshotsOf(repo, "sr1"), `${repo}: sr1 keeps 2 and its protected one`).toHaveLength(3);
      expect(snapshotsOf(repo, "sr2")).toHaveLength(1);
      expect(snapshotsOf(repo, "sr3")).toHaveLength(2);
    }
    expect(snapshotsOf(repos.local["sr4"] as string, "sr4")).toHaveLength(3);
  }, 180_000);

  it("every host reachable: each distinct repository pruned exactly once; each host keeps its own retention", async () => {
    const before = recorder.calls().length;
    const prune = await runJson("prune", inventoryFile);
    expect(prune.code, prune.stdout + prune.stderr).toBe(0);
    const calls = recorder.calls().slice(before);
    const prunes = calls.filter((c) => c.command === "prune").map((c) => c.repository);
    expect(prunes.sort()).toEqual([repos.sftp, repos.rest, ...HOSTS.map((h) => repos.local[h])].sort());
    // Phase 1 previews each host's forgets (--dry-run, no lock); then one host per repository runs the
    // forgets there, scoped to each host with its own retention: one forget per keep value, so no forget
    // ever waits for another's lock.
    const hostsOf = (args: string) => [...args.matchAll(/--host (\S+)/g)].map((m) => m[1]);
    const previews = calls.filter((c) => c.command === "forget" && c.args.includes("--dry-run"));
    const forgets = calls.filter((c) => c.command === "forget" && !c.args.includes("--dry-run"));
    const pairs = (list: typeof calls) =>
      list.flatMap((c) => hostsOf(c.args).map((h) => `${h} ${c.repository}`)).sort();
    const expected = HOSTS.flatMap((h) => [repos.local[h], repos.sftp, repos.rest].map((r) => `${h} ${r}`));
    expect(pairs(previews)).toEqual([...expected].sort());
    expect(pairs(forgets)).toEqual([...expected].sort());
    for (const c of forgets)
      for (const host of hostsOf(c.args)) expect(c.args).toContain(`--keep-last ${keepOf(host ?? "")}`);
    for (const url of [repos.sftp, repos.rest])
      expect(
        forgets
          .filter((c) => c.repository === url)
          .map((c) => hostsOf(c.args).length)
          .sort(),
      ).toEqual([1, 3]);
    expect(
      calls.some(
        (c) => c.command === "forget" && !c.args.includes("--dry-run") && c.args.includes("--no-lock"),
      ),
    ).toBe(false);
    for (const repo of readable()) {
      for (const host of HOSTS) {
        const kept = snapshotsOf(repo, host);
        if (repo === sftpPath || repo === repos.rest) {
          expect(kept, `${repo} ${host}`).toHaveLength(keepOf(host) + (host === "sr1" ? 1 : 0));
        } else if (repo === repos.local[host]) {
          expect(kept).toHaveLength(keepOf(host));
        }
      }
      // Every protected snapshot is still there, and restic finds the repository intact.
      if (repo === sftpPath || repo === repos.rest) {
        expect(snapshotsOf(repo, "sr1").filter((s) => s.tags?.includes("protected"))).toHaveLength(1);
      }
      restic(repo, "check", "--no-lock");
    }
  }, 180_000);

  it("status --max-age: within one read of each shared repository, only the hosts with no recent snapshot are stale", async () => {
    // A host's latest snapshot in each of its repositories (a backup writes them one after another).
    const latestOf = (host: string) =>
      [repos.local[host] as string, sftpPath, repos.rest].map((repo) =>
        Math.max(...snapshotsOf(repo, host).map((snapshot) => Date.parse(snapshot.time))),
      );
    // sr3's oldest latest snapshot, against the others' newest.
    const newestIn = (host: string) => Math.min(...latestOf(host));
    // sr3 backs up again at least 30 s after the others' latest snapshots (the tests above may take
    // less than that), so that their ages differ by more than twice the status run (checked below).
    const othersNewest = Math.max(...["sr1", "sr2", "sr4"].flatMap(latestOf));
    const waitMs = othersNewest + 30_000 - Date.now();
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
    writeFileSync(join(dir, "src", "sr3", "late.txt"), "late\n");
    const backup = await runJson("backup", inventoryFile, "--limit", "sr3");
    expect(backup.code, backup.stdout + backup.stderr).toBe(0);
    const gapS = (newestIn("sr3") - othersNewest) / 1000;
    expect(gapS).toBeGreaterThan(30);
    // Halfway between sr3's age and the others' (they grow alike while the run lasts).
    const started = Date.now();
    const maxAgeS = Math.ceil((started - newestIn("sr3")) / 1000 + gapS / 2);
    const before = recorder.calls().length;
    const status = await runJson("status", inventoryFile, "--max-age", `${maxAgeS}s`);
    // sr3's age grew by the run's duration: below half the gap, it is still within --max-age.
    expect((Date.now() - started) / 1000).toBeLessThan(gapS / 2);
    expect(status.code, status.stdout + status.stderr).toBe(1);
    expect(snapshotReads(before)).toEqual(
      [repos.sftp, repos.rest, ...HOSTS.map((h) => repos.local[h])].sort(),
    );
    expect(status.host("sr3")).toMatchObject({ status: "ok", error: null });
    expect(status.host("sr3")?.jobs[0]?.latest.map((l) => l.stale)).toEqual([false, false, false]);
    for (const host of ["sr1", "sr2", "sr4"]) {
      expect(status.host(host)).toMatchObject({ status: "failed", error: { code: "stale" } });
      expect(status.host(host)?.jobs[0]?.latest.map((l) => l.stale)).toEqual([true, true, true]);
    }
    const fresh = await runJson("status", inventoryFile, "--max-age", "1h");
    expect(fresh.code, fresh.stdout + fresh.stderr).toBe(0);
    expectLatest(fresh, HOSTS);
  }, 120_000);
});
