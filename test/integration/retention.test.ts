// `prune` and `status` over real sshd and restic, checked with the restic CLI itself.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { runCli, runJson } from "../helpers/run-cli.js";
import { describeIntegration } from "./harness/describe-integration.js";
import { startFleet, type Fleet } from "./harness/fleet.js";
import { leftoverRunDirs, resticInit, writeInventory, writePasswordFile } from "./helpers/test-fleet.js";

const HOSTS = ["rt1", "rt2"];
const JOBS = ["alpha", "beta"];

interface Snapshot {
  id: string;
  short_id: string;
  hostname: string;
  tags?: string[];
  time: string;
}

describeIntegration("prune and status over real sshd and restic", () => {
  let fleet: Fleet;
  let dir: string;
  let password: string;
  let shared: string;
  let copies: string;
  let inventoryFile: string;

  const restic = (repo: string, ...args: string[]) =>
    execFileSync("restic", ["-r", repo, "--password-file", password, ...args], { encoding: "utf8" });
  const snapshots = (repo: string): Snapshot[] =>
    JSON.parse(restic(repo, "snapshots", "--json", "--no-lock")) as Snapshot[];
  const count = (repo: string, host: string, job: string) =>
    snapshots(repo).filter((s) => s.hostname === host && s.tags?.includes(`job:${job}`)).length;
  const run = (command: string, ...args: string[]) => runJson(command, inventoryFile, ...args);

  beforeAll(async () => {
    fleet = await startFleet({ hosts: HOSTS });
    dir = mkdtempSync(join(fleet.dir, "retention-"));
    chmodSync(dir, 0o755);
    password = writePasswordFile(join(dir, "restic-password"), "retention test password");
    // Two hosts, two jobs each, one shared repository (keep_last 1) with a copy_to (keep_last 2).
    shared = resticInit(join(dir, "shared"), password);
    copies = resticInit(join(dir, "copies"), password);
    for (const host of HOSTS) {
      const jobs = JOBS.map((job) => {
        const source = join(dir, "src", host, job);
        mkdirSync(source, { recursive: true });
        writeFileSync(join(source, "file.txt"), `${host} ${job}\n`);
        return `[standard_path.${job}]
backup_source_path = ${JSON.stringify(source)}

[[standard_path.${job}.repositories]]
repo_path = ${JSON.stringify(shared)}
password_file = ${JSON.stringify(password)}
prune_keep_last = 1

  [[standard_path.${job}.repositories.copy_to]]
  repo = ${JSON.stringify(copies)}
  password_file = ${JSON.stringify(password)}
  prune_keep_last = 2
`;
      });
      writeFileSync(join(dir, `${host}.toml`), jobs.join("\n"));
    }
    inventoryFile = writeInventory(fleet, join(dir, "inventory.toml"), {
      defaults: { config: join(dir, "{host}.toml") },
    });
    for (let i = 0; i < 3; i++) {
      const backup = await runJson("backup", inventoryFile);
      expect(backup.code, backup.stdout).toBe(0);
    }
  }, 300_000);

  afterAll(async () => {
    await fleet?.stop();
  });

  afterEach(() => {
    expect(leftoverRunDirs(fleet)).toEqual([]);
  });

  it("status lists every host, job and repository with the age of its latest snapshot", async () => {
    const status = await run("status");
    expect(status.code, status.stdout).toBe(0);
    for (const host of HOSTS) {
      const jobs = status.report.hosts.find((h) => h.name === host)?.jobs ?? [];
      expect(jobs.map((j) => j.name)).toEqual(JOBS);
      for (const job of jobs) {
        expect(job.latest.map((l) => l.repo)).toEqual([shared, copies]);
        for (const latest of job.latest) {
          expect(latest.snapshot_id).toMatch(/^[0-9a-f]{8}$/);
          expect(latest.age_s).toBeGreaterThanOrEqual(0);
          expect(latest.age_s).toBeLessThan(600);
          expect(latest.stale).toBe(false);
        }
      }
    }
    const table = await runCli(["status", "--inventory", inventoryFile, "--quiet", "--no-color"]);
    expect(table.stdout).toMatch(/rt1\s+│\s+alpha\s+│/);
    expect(table.stdout).toMatch(/RECAP status 2 hosts: ok=2/);
  });

  it("reports each shared repository once, with every host that uses it, in check, status and prune --dry-run", async () => {
    const configId = (repo: string) =>
      (JSON.parse(restic(repo, "cat", "config", "--no-lock")) as { id: string }).id;
    const jobs = (...hosts: string[]) => hosts.map((host) => ({ host, jobs: JOBS }));
    for (const command of ["check", "status", ["prune", "--dry-run"]]) {
      const [name, ...args] = typeof command === "string" ? [command] : command;
      const result = await run(name!, ...args);
      expect(result.code, result.stdout).toBe(0);
      const entries = result.report.repositories;
      expect(
        entries.map(({ actions: _, ...entry }) => entry),
        name,
      ).toEqual([
        { id: configId(copies), url: copies, hosts: jobs(...HOSTS), missing_forgets: [] },
        { id: configId(shared), url: shared, hosts: jobs(...HOSTS), missing_forgets: [] },
      ]);
      if (name === "status") {
        // Local paths are host-local to the plan: each host reads its own path once, whole; the ids
        // make one repository of them afterwards.
        for (const entry of entries)
          expect(entry.actions.map((a) => [a.action, a.host, a.for_host, a.status, a.error]).sort()).toEqual(
            [...HOSTS].sort().map((host) => ["snapshots", host, null, "ok", null]),
          );
        continue;
      }
      if (name !== "prune") {
        expect(entries.flatMap((entry) => entry.actions)).toEqual([]);
        continue;
      }
      // A dry run: every host's forget ran (--dry-run), and it says which host would prune each one.
      for (const entry of entries) {
        const forgets = entry.actions.filter((a) => a.action === "forget");
        expect(forgets.map((a) => [a.host, a.status]).sort()).toEqual(
          HOSTS.flatMap((host) => JOBS.map(() => [host, "ok"])),
        );
        expect(entry.actions.filter((a) => a.action === "prune").map((a) => a.status)).toEqual(["planned"]);
      }
      // Two repositories, two hosts that reached both: one prune each.
      const pruners = entries.map((entry) => entry.actions.find((a) => a.action === "prune")?.host);
      expect(new Set(pruners).size).toBe(2);
    }
    expect((await run("ping")).report.repositories).toEqual([]);
  });

  it("makes one repository of one path spelled two ways (a symlink), by its id", async () => {
    const link = join(dir, "shared-link");
    symlinkSync(shared, link);
    const config = (repo: string) => {
      const file = join(dir, `alias-${repo === shared ? "direct" : "link"}.toml`);
      writeFileSync(
        file,
        `[standard_path.alpha]
backup_source_path = ${JSON.stringify(join(dir, "src", "rt1", "alpha"))}

[[standard_path.alpha.repositories]]
repo_path = ${JSON.stringify(repo)}
password_file = ${JSON.stringify(password)}
`,
      );
      return file;
    };
    const file = writeInventory(fleet, join(dir, "alias.toml.inv"), {
      defaults: { config: config(shared) },
      host: { rt2: { config: config(link) } },
    });
    const check = await runJson("check", file);
    expect(check.code, check.stdout).toBe(0);
    const id = (JSON.parse(restic(shared, "cat", "config", "--no-lock")) as { id: string }).id;
    expect(check.report.repositories).toEqual([
      {
        id,
        url: shared < link ? shared : link,
        hosts: HOSTS.map((host) => ({ host, jobs: ["alpha"] })),
        actions: [],
        missing_forgets: [],
      },
    ]);
  });

  it("status --max-age 1s marks every job stale after a second, exit 1 with code stale", async () => {
    await new Promise((r) => setTimeout(r, 1500));
    const status = await run("status", "--max-age", "1s");
    expect(status.code).toBe(1);
    for (const host of status.report.hosts) {
      expect(host).toMatchObject({ status: "failed", error: { code: "stale" } });
      expect(host.jobs.flatMap((j) => j.latest.map((l) => l.stale))).toEqual([true, true, true, true]);
    }
    const table = await runCli([
      "status",
      "--inventory",
      inventoryFile,
      "--quiet",
      "--no-color",
      "--max-age",
      "1s",
    ]);
    expect(table.stdout).toContain("STALE");
    expect((await run("status", "--max-age", "1h")).code).toBe(0);
  });

  it("prune --dry-run deletes nothing and lists what it would remove (upstream pruned for real)", async () => {
    const before = snapshots(shared).length + snapshots(copies).length;
    const dry = await run("prune", "--dry-run");
    expect(dry.code, dry.stdout).toBe(0);
    expect(snapshots(shared).length + snapshots(copies).length).toBe(before);
    for (const host of dry.report.hosts) {
      for (const job of host.jobs) {
        expect(job.prunes.map((p) => [p.repo, p.dry_run, p.kept, p.removed])).toEqual([
          [shared, true, 1, 2],
          [copies, true, 2, 1],
        ]);
        expect(job.prunes[0]?.removed_ids).toHaveLength(2);
      }
    }
  });

  it("prune keeps one per host and job in the repository, two in the copy (upstream never pruned copies), and every protected snapshot", async () => {
    // Protect the oldest snapshot of rt1/alpha: --keep-tag protected must keep it.
    const oldest = snapshots(shared)
      .filter((s) => s.hostname === "rt1" && s.tags?.includes("job:alpha"))
      .sort((a, b) => Date.parse(a.time) - Date.parse(b.time))[0];
    restic(shared, "tag", "--add", "protected", oldest?.id ?? "");
    const pruned = await run("prune");
    expect(pruned.code, pruned.stdout).toBe(0);
    for (const host of HOSTS) {
      for (const job of JOBS) {
        // Two jobs of one host, and two hosts, share these repositories: none prunes another's.
        expect(count(shared, host, job), `${host}/${job} in the shared repository`).toBe(
          host === "rt1" && job === "alpha" ? 2 : 1,
        );
        expect(count(copies, host, job), `${host}/${job} in the copy destination`).toBe(2);
      }
    }
    // Each repository pruned once, after every forget (phase 2), on one of the hosts that forgot in it.
    for (const entry of pruned.report.repositories) {
      const prunes = entry.actions.filter((a) => a.action === "prune");
      expect(
        prunes.map((a) => a.status),
        entry.url,
      ).toEqual(["ok"]);
      expect(HOSTS).toContain(prunes[0]?.host);
      expect(entry.missing_forgets).toEqual([]);
    }
    expect(snapshots(shared).filter((s) => s.tags?.includes("protected"))).toHaveLength(1);
    expect(restic(shared, "check")).toMatch(/no errors were found/);
  });

  it("prune of a repository with nothing of this host and job (a new copy destination) succeeds, forgetting nothing", async () => {
    const fresh = resticInit(join(dir, "fresh-copy"), password);
    const config = join(dir, "rt1-fresh.toml");
    writeFileSync(
      config,
      `[standard_path.alpha]
backup_source_path = ${JSON.stringify(join(dir, "src", "rt1", "alpha"))}

[[standard_path.alpha.repositories]]
repo_path = ${JSON.stringify(shared)}
password_file = ${JSON.stringify(password)}
prune_keep_last = 1

  [[standard_path.alpha.repositories.copy_to]]
  repo = ${JSON.stringify(fresh)}
  password_file = ${JSON.stringify(password)}
  prune_keep_last = 2
`,
    );
    const file = writeInventory(fleet, join(dir, "fresh.toml.inv"), {
      hosts: ["rt1"],
      defaults: { config },
    });
    for (const args of [["--dry-run"], []]) {
      const prune = await runJson("prune", file, ...args);
      expect(prune.code, prune.stdout + prune.stderr).toBe(0);
      const job = prune.host("rt1")?.jobs[0];
      expect(job?.status).toBe("ok");
      expect(job?.prunes.map((p) => [p.repo, p.status, p.kept, p.removed])).toEqual([
        [shared, "ok", expect.any(Number), expect.any(Number)],
        [fresh, "ok", 0, 0],
      ]);
    }
    expect(snapshots(fresh)).toEqual([]);
  });

  it("status fails a host whose repository cannot be opened, with the reason", async () => {
    const broken = join(dir, "rt2-broken.toml");
    const source = join(dir, "src", "rt2", "alpha");
    writeFileSync(
      broken,
      `[standard_path.alpha]
backup_source_path = ${JSON.stringify(source)}

[[standard_path.alpha.repositories]]
repo_path = ${JSON.stringify(join(dir, "no-such-repository"))}
password_file = ${JSON.stringify(password)}
prune_keep_last = 1
`,
    );
    const file = writeInventory(fleet, join(dir, "broken.toml.inv"), {
      defaults: { config: join(dir, "{host}.toml") },
      host: { rt2: { config: broken } },
    });
    const status = await runJson("status", file);
    expect(status.code).toBe(1);
    expect(status.host("rt1")?.status).toBe("ok");
    const rt2 = status.host("rt2");
    expect(rt2).toMatchObject({ status: "failed", error: { code: "repo_unreadable" } });
    expect(rt2?.jobs[0]?.latest[0]?.error).toMatch(/unable to open config file|does not exist/);
  });

  it("prune with a host unreachable: its snapshots stay, the repositories are still pruned once, exit 4, missing_forgets names it", async () => {
    const backup = await run("backup");
    expect(backup.code, backup.stdout).toBe(0);
    const before = HOSTS.flatMap((host) => JOBS.map((job) => count(shared, host, job)));
    expect(before.every((n) => n >= 2)).toBe(true);
    await fleet.stopHost("rt2");
    try {
      const pruned = await run("prune");
      expect(pruned.code, pruned.stdout).toBe(4);
      expect(pruned.host("rt1")?.status).toBe("ok");
      expect(pruned.host("rt2")?.status).toBe("unreachable");
      // rt2 read no id, and a local path is host-local unless ids say otherwise: its entries stand
      // apart (id null), with their forgets missing; rt1's are pruned, once each.
      const [known, unknown] = [
        pruned.report.repositories.filter((e) => e.id !== null),
        pruned.report.repositories.filter((e) => e.id === null),
      ];
      expect(known.map((e) => e.url).sort()).toEqual([copies, shared].sort());
      for (const entry of known) {
        expect(entry.actions.filter((a) => a.action === "prune").map((a) => [a.host, a.status])).toEqual([
          ["rt1", "ok"],
        ]);
        expect(entry.missing_forgets).toEqual([]);
      }
      expect(unknown.map((e) => [e.url, e.missing_forgets])).toEqual([
        [copies, ["rt2"]],
        [shared, ["rt2"]],
      ]);
      for (const entry of unknown)
        expect(entry.actions.map((a) => [a.action, a.host, a.status])).toEqual(
          JOBS.map(() => ["forget", "rt2", "skipped"]),
        );
      // rt2's snapshots are untouched; rt1 is down to its retention (rt1/alpha keeps its protected one).
      for (const job of JOBS)
        expect(count(shared, "rt2", job), `rt2/${job}`).toBe(before[2 + JOBS.indexOf(job)]);
      expect(count(shared, "rt1", "alpha")).toBe(2);
      expect(count(shared, "rt1", "beta")).toBe(1);
      expect(restic(shared, "check")).toMatch(/no errors were found/);
    } finally {
      await fleet.startHost("rt2");
    }
  });
});
