// A repository declared in the inventory with a maintenance host (issue 14, point 3): three hosts back
// up into a REST repository through an append-only endpoint (`rclone serve restic --append-only`);
// the maintenance host, which backs up nothing, reaches the same directory through a second, full
// endpoint and runs every forget and the one prune there. restic's calls are counted by a wrapper,
// not taken from the report.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { runCli, runJson } from "../helpers/run-cli.js";
import { describeIntegration } from "./harness/describe-integration.js";
import { startFleet, type Fleet } from "./harness/fleet.js";
import { requireExecutable } from "./harness/prerequisites.js";
import {
  createResticRecorder,
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

const HOSTS = ["mh1", "mh2", "mh3"];
const KEEPER = "keeper";
/** mh2 keeps one snapshot, the others two. */
const keepOf = (host: string) => (host === "mh2" ? 1 : 2);

interface Snapshot {
  short_id: string;
  hostname: string;
}

describeIntegration("a shared repository maintained on its maintenance host, the hosts append-only", () => {
  let fleet: Fleet;
  let appendOnly: RestServer;
  let full: RestServer;
  let recorder: ResticRecorder;
  let dir: string;
  let password: string;
  let inventoryFile: string;
  /** The hosts' URL (append-only) and the maintenance host's (full access) of one repository. */
  let hostsUrl: string;
  let keeperUrl: string;
  const local: Record<string, string> = {};

  const restic = (repo: string, ...args: string[]) =>
    execFileSync("restic", ["-r", repo, "--password-file", password, ...args], { encoding: "utf8" });
  const snapshotsOf = (host: string): Snapshot[] =>
    (JSON.parse(restic(keeperUrl, "snapshots", "--json", "--no-lock")) as Snapshot[]).filter(
      (s) => s.hostname === host,
    );
  const inventory = (file: string, maintenanceUrl: string) =>
    writeInventory(fleet, join(dir, file), {
      host: Object.fromEntries(HOSTS.map((h) => [h, { config: join(dir, `${h}.toml`) }])),
      extra: `
[repositories.fleet]
url = ${JSON.stringify(hostsUrl)}
maintenance_host = "${KEEPER}"
maintenance_url = ${JSON.stringify(maintenanceUrl)}
password_file = ${JSON.stringify(password)}
`,
    });

  beforeAll(async () => {
    requireExecutable("rclone");
    dir = mkdtempSync("/tmp/rlvm-maintenance-");
    chmodSync(dir, 0o755);
    password = writePasswordFile(join(dir, "restic-password"), "maintenance host test password");
    recorder = createResticRecorder(dir);
    full = await startRestServer(join(dir, "rest"));
    keeperUrl = resticInit(full.url("fleet"), password, full.path("fleet"));
    appendOnly = await startRestServer(join(dir, "rest"), { appendOnly: true });
    hostsUrl = appendOnly.url("fleet");
    fleet = await startFleet({ hosts: [...HOSTS, KEEPER], binds: [recorder.bind] });
    for (const host of HOSTS) {
      local[host] = resticInit(join(dir, `local-${host}`), password);
      writeSharingHost(dir, host, {
        repos: [local[host], hostsUrl],
        passwordFile: password,
        keepLast: keepOf(host),
      });
    }
    inventoryFile = inventory("inventory.toml", keeperUrl);
    for (let i = 0; i < 3; i++) {
      // One host at a time: rclone serve restic (1.60) writes uploads in place, so a host that lists
      // the repository while another uploads can read a half-written index (rclone issue 6329).
      const backup = await runJson("backup", inventoryFile, "--forks", "1");
      expect(backup.code, backup.stdout + backup.stderr).toBe(0);
      // The maintenance host backs up nothing.
      expect(backup.host(KEEPER)).toBeUndefined();
    }
  }, 300_000);

  afterAll(async () => {
    await fleet?.stop();
    await appendOnly?.stop();
    await full?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  afterEach(() => {
    expect(leftoverRunDirs(fleet)).toEqual([]);
  });

  it("plan names the maintenance host and its endpoint", async () => {
    const plan = await runCli(["plan", "--inventory", inventoryFile]);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toContain(
      `repository fleet (${hostsUrl}): maintained on ${KEEPER} via ${keeperUrl}, for 3 jobs of 3 hosts`,
    );
  });

  it("a host's own forget on the append-only endpoint fails, and is reported as failed", async () => {
    // What prune does without the declaration: mh1 forgets in the shared repository itself, through
    // its append-only URL. restic 0.14 retries the refused deletes for about 43 s and fails; 0.18 gives
    // up at once and exits 0 ("unable to remove"). Either way nothing is gone, and the agent says so.
    const own = writeInventory(fleet, join(dir, "own.toml"), {
      hosts: ["mh1"],
      host: { mh1: { config: join(dir, "mh1.toml") } },
    });
    const prune = await runJson("prune", own);
    expect(prune.code, prune.stdout + prune.stderr).toBe(1);
    const entry = prune.host("mh1")?.jobs[0]?.prunes.find((p) => p.repo === hostsUrl);
    expect(entry).toMatchObject({ status: "failed", removed: null });
    expect(entry?.error).toMatch(/^restic forget failed \(exit \d+\): /);
    // Nothing was forgotten there, so nothing is pruned (restic 0.14 would retry the deletes again).
    expect(
      prune.report.repositories.find((r) => r.url === hostsUrl)?.actions.filter((a) => a.action === "prune"),
    ).toMatchObject([{ host: "mh1", status: "failed", error: "not pruned: none of its forgets succeeded" }]);
    expect(snapshotsOf("mh1")).toHaveLength(3);
  }, 180_000);

  it("prune --dry-run says the maintenance host would forget and prune, and removes nothing", async () => {
    const before = recorder.calls().length;
    const dry = await runJson("prune", inventoryFile, "--dry-run");
    expect(dry.code, dry.stdout + dry.stderr).toBe(0);
    const entry = dry.report.repositories.find((r) => r.url === hostsUrl);
    expect(entry?.actions.filter((a) => a.action === "prune")).toEqual([
      { action: "prune", host: KEEPER, for_host: null, status: "planned", duration_ms: null, error: null },
    ]);
    const calls = recorder.calls().slice(before);
    expect(calls.filter((c) => c.command === "prune")).toEqual([]);
    for (const c of calls.filter((c) => c.command === "forget")) expect(c.args).toContain("--dry-run");
    for (const host of HOSTS) expect(snapshotsOf(host)).toHaveLength(3);
  });

  it("prune: every forget and the one prune on the maintenance host, through its endpoint", async () => {
    const before = recorder.calls().length;
    const prune = await runJson("prune", inventoryFile);
    expect(prune.code, prune.stdout + prune.stderr).toBe(0);
    const calls = recorder.calls().slice(before);
    // Nothing but reads and new files through the hosts' append-only URL.
    expect(calls.filter((c) => c.repository === hostsUrl && /^(forget|prune)$/.test(c.command))).toEqual([]);
    const forgets = calls.filter((c) => c.command === "forget" && c.repository === keeperUrl);
    // One forget per keep value, with a --host per host that has it.
    const hostsOf = (args: string) => [...args.matchAll(/--host (\S+)/g)].map((m) => m[1] ?? "?");
    expect(forgets.flatMap((c) => hostsOf(c.args)).sort()).toEqual([...HOSTS].sort());
    for (const c of forgets)
      for (const host of hostsOf(c.args)) expect(c.args).toContain(`--keep-last ${keepOf(host)}`);
    expect(
      calls
        .filter((c) => c.command === "prune")
        .map((c) => c.repository)
        .sort(),
    ).toEqual([keeperUrl, ...HOSTS.map((h) => local[h])].sort());
    for (const host of HOSTS) {
      expect(snapshotsOf(host), host).toHaveLength(keepOf(host));
      const job = prune.host(host)?.jobs[0];
      expect(job?.prunes.find((p) => p.repo === hostsUrl)).toMatchObject({
        status: "ok",
        removed: 3 - keepOf(host),
        error: null,
      });
    }
    expect(prune.host(KEEPER)).toMatchObject({ status: "ok", jobs: [] });
    const entry = prune.report.repositories.find((r) => r.url === hostsUrl);
    expect(entry?.missing_forgets).toEqual([]);
    expect(
      entry?.actions
        .filter((a) => a.action === "forget")
        .map((a) => [a.host, a.for_host, a.status])
        .sort(),
    ).toEqual(HOSTS.map((h) => [KEEPER, h, "ok"]));
    expect(entry?.actions.filter((a) => a.action === "prune").map((a) => [a.host, a.status])).toEqual([
      [KEEPER, "ok"],
    ]);
    restic(keeperUrl, "check", "--no-lock");
  });

  it("status works with the hosts on append-only access: one read of the shared repository", async () => {
    const before = recorder.calls().length;
    const status = await runJson("status", inventoryFile, "--max-age", "1h");
    expect(status.code, status.stdout + status.stderr).toBe(0);
    const reads = recorder
      .calls()
      .slice(before)
      .filter((c) => c.command === "snapshots");
    expect(reads.filter((c) => c.repository === hostsUrl)).toHaveLength(1);
    for (const host of HOSTS) {
      const latest = status.host(host)?.jobs[0]?.latest.find((l) => l.repo === hostsUrl);
      expect(latest, host).toMatchObject({ stale: false, error: null });
      expect(latest?.snapshot_id).toMatch(/^[0-9a-f]{8}$/);
    }
    // The maintenance host backs up nothing, so status has nothing to read there.
    expect(status.host(KEEPER)).toBeUndefined();
  });

  it("a maintenance_url that opens another repository is never maintained", async () => {
    const otherUrl = resticInit(full.url("other"), password, full.path("other"));
    const wrong = inventory("wrong.toml", otherUrl);
    const counts = HOSTS.map((h) => snapshotsOf(h).length);
    const before = recorder.calls().length;
    const prune = await runJson("prune", wrong);
    expect(prune.code, prune.stdout + prune.stderr).toBe(1);
    expect(prune.host(KEEPER)?.status).toBe("failed");
    expect(prune.host(KEEPER)?.error?.message).toContain("is not the one the hosts back up into");
    const calls = recorder.calls().slice(before);
    expect(calls.filter((c) => c.repository === otherUrl && /^(forget|prune)$/.test(c.command))).toEqual([]);
    expect(HOSTS.map((h) => snapshotsOf(h).length)).toEqual(counts);
  });

  it("the maintenance host unreachable: nothing forgotten, exit 4, missing_forgets names every host", async () => {
    const backup = await runJson("backup", inventoryFile, "--forks", "1"); // as in beforeAll
    expect(backup.code, backup.stdout + backup.stderr).toBe(0);
    const counts = HOSTS.map((h) => snapshotsOf(h).length);
    await fleet.stopHost(KEEPER);
    let prune;
    try {
      prune = await runJson("prune", inventoryFile);
    } finally {
      await fleet.startHost(KEEPER);
    }
    expect(prune.code, prune.stdout + prune.stderr).toBe(4);
    expect(prune.host(KEEPER)?.status).toBe("unreachable");
    for (const host of HOSTS) expect(prune.host(host)?.status).toBe("ok");
    const entry = prune.report.repositories.find((r) => r.url === hostsUrl);
    expect(entry?.missing_forgets).toEqual(HOSTS);
    expect(HOSTS.map((h) => snapshotsOf(h).length)).toEqual(counts);
  }, 180_000);
});
