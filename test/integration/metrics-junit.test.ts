// --metrics and --junit end to end: the real CLI against real sshd hosts and real restic; every file
// written is checked by promtool (Prometheus' own checker) or xmllint against the JUnit schema, and
// the freshness metric against what restic itself says of the repository.
import { execFileSync, spawnSync } from "node:child_process";
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import type { Report } from "../../src/report/report-schema.js";
import { runCli, type CliRun } from "../helpers/run-cli.js";
import { skipOrFail, type SkippableContext } from "../helpers/skip-or-fail.js";
import { describeIntegration } from "./harness/describe-integration.js";
import { startFleet, type Fleet } from "./harness/fleet.js";
import { leftoverRunDirs, resticInit, writeInventory, writePasswordFile } from "./helpers/test-fleet.js";

const HOSTS = ["mj1", "mj2", "mj3"];
const XSD = join(import.meta.dirname, "../fixtures/junit/junit-10.xsd");
const PASSWORD = "metrics junit test password";
const REST_SECRET = "rest-secret-77";

interface Snapshot {
  hostname: string;
  tags?: string[];
  time: string;
}

/** Runs a checker: skipped (or, where required, failed) when the tool is missing. */
function tool(
  ctx: SkippableContext,
  argv: string[],
  install: string,
  input?: string,
): { code: number | null; output: string } {
  const run = spawnSync(argv[0] ?? "", argv.slice(1), { encoding: "utf8", input });
  const missing = (run.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT";
  skipOrFail(
    ctx,
    "integration",
    missing ? `${argv[0]} is not installed (Debian: apt-get install ${install})` : undefined,
  );
  return { code: run.status, output: `${run.stdout}${run.stderr}` };
}

const promtool = (ctx: SkippableContext, file: string) =>
  tool(ctx, ["promtool", "check", "metrics"], "prometheus", readFileSync(file, "utf8"));
const xmllint = (ctx: SkippableContext, file: string) =>
  tool(ctx, ["xmllint", "--noout", "--schema", XSD, file], "libxml2-utils");

/** The samples of a metrics file: "name{labels}" → value. */
function samples(file: string): Map<string, number> {
  const map = new Map<string, number>();
  for (const line of readFileSync(file, "utf8").trimEnd().split("\n")) {
    if (line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    map.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return map;
}

const attribute = (xml: string, element: string, name: string) =>
  new RegExp(`<${element}\\b[^>]*\\s${name}="([^"]*)"`).exec(xml)?.[1];

describeIntegration("--metrics and --junit over real sshd and restic", () => {
  let fleet: Fleet;
  let dir: string;
  let out: string;
  let password: string;
  let repo: string;
  let copyRepo: string;
  let inventoryFile: string;
  let server: Server;
  let restUrl: string;
  let counter = 0;

  const restic = (...args: string[]) =>
    execFileSync("restic", ["-r", repo, "--password-file", password, ...args], { encoding: "utf8" });
  /** The paths of a new --metrics, --junit and --report file for one run. */
  const files = () => {
    const n = ++counter;
    return {
      metrics: join(out, `run${n}.prom`),
      junit: join(out, `run${n}.xml`),
      report: join(out, `run${n}.json`),
    };
  };
  const run = (command: string, f: ReturnType<typeof files>, ...args: string[]): Promise<CliRun> =>
    runCli([
      command,
      "--inventory",
      inventoryFile,
      "--quiet",
      "--metrics",
      f.metrics,
      "--junit",
      f.junit,
      "--report",
      f.report,
      ...args,
    ]);

  beforeAll(async () => {
    fleet = await startFleet({ hosts: HOSTS });
    dir = mkdtempSync(join(fleet.dir, "metrics-"));
    chmodSync(dir, 0o755);
    out = join(dir, "out");
    mkdirSync(out);
    password = writePasswordFile(join(dir, "restic-password"), PASSWORD);
    repo = resticInit(join(dir, "repo"), password);
    copyRepo = resticInit(join(dir, "copy"), password);
    // A rest: repository that answers 404 to everything: its backup fails, so mj2 fails, and its URL
    // holds a password that must appear in no file.
    server = createServer((_req, res) => res.writeHead(404).end());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    restUrl = `rest:http://fleet:${REST_SECRET}@127.0.0.1:${(server.address() as { port: number }).port}/mj2/`;
    for (const host of HOSTS) {
      const source = join(dir, "src", host);
      mkdirSync(source, { recursive: true });
      writeFileSync(join(source, "file.txt"), `${host}\n`);
      // mj1 copies its snapshots into a copy_to destination; mj2 also backs up into a dead REST server.
      const extra =
        host === "mj1"
          ? `
[[standard_path.data.repositories.copy_to]]
repo = ${JSON.stringify(copyRepo)}
password_file = ${JSON.stringify(password)}
`
          : host === "mj2"
            ? `
[[standard_path.data.repositories]]
repo_path = ${JSON.stringify(restUrl)}
password_file = ${JSON.stringify(password)}
`
            : "";
      writeFileSync(
        join(dir, `${host}.toml`),
        `[standard_path.data]
backup_source_path = ${JSON.stringify(source)}

[[standard_path.data.repositories]]
repo_path = ${JSON.stringify(repo)}
password_file = ${JSON.stringify(password)}
prune_keep_last = 1
${extra}`,
      );
    }
    inventoryFile = writeInventory(fleet, join(dir, "inventory.toml"), {
      defaults: { config: join(dir, "{host}.toml") },
    });
  }, 120_000);

  afterAll(async () => {
    server?.close();
    await fleet?.stop();
  });

  afterEach(() => {
    expect(leftoverRunDirs(fleet)).toEqual([]);
  });

  it("backup with a failed and an unreachable host: valid metrics and JUnit with the right counts, no secret", async (ctx) => {
    const f = files();
    await fleet.stopHost("mj3");
    let backup: CliRun;
    try {
      backup = await run("backup", f);
    } finally {
      await fleet.startHost("mj3");
    }
    expect(backup.code, backup.stdout + backup.stderr).toBe(1);

    expect(promtool(ctx, f.metrics)).toEqual({ code: 0, output: "" });
    const m = samples(f.metrics);
    const finished =
      Date.parse((JSON.parse(readFileSync(f.report, "utf8")) as { finished_at: string }).finished_at) / 1000;
    const local = (host: string) => `host="${host}",job="data",repository="${repo}"`;
    const masked = restUrl.replace(REST_SECRET, "***");
    expect(Object.fromEntries(m)).toMatchObject({
      'rlvm_fleet_run_exit_code{command="backup"}': 1,
      'rlvm_fleet_host_status{host="mj1",command="backup",status="ok"}': 1,
      'rlvm_fleet_host_status{host="mj2",command="backup",status="failed"}': 1,
      'rlvm_fleet_host_status{host="mj3",command="backup",status="unreachable"}': 1,
      'rlvm_fleet_host_error{host="mj3",command="backup",code="refused"}': 1,
      [`rlvm_fleet_backup_last_success_timestamp_seconds{${local("mj1")}}`]: finished,
      [`rlvm_fleet_backup_last_success_timestamp_seconds{${local("mj2")}}`]: finished,
      [`rlvm_fleet_backup_files_new{${local("mj1")}}`]: 1,
      [`rlvm_fleet_backup_status{host="mj2",job="data",repository="${masked}",status="failed"}`]: 1,
      [`rlvm_fleet_copy_status{${local("mj1")},destination="${copyRepo}",status="ok"}`]: 1,
      [`rlvm_fleet_copy_last_success_timestamp_seconds{${local("mj1")},destination="${copyRepo}"}`]: finished,
    });
    expect(
      m.get(`rlvm_fleet_copy_duration_seconds{${local("mj1")},destination="${copyRepo}"}`),
    ).toBeGreaterThan(0);
    expect(m.get(`rlvm_fleet_backup_data_added_bytes{${local("mj1")}}`)).toBeGreaterThan(0);
    expect(
      m.has(`rlvm_fleet_backup_last_success_timestamp_seconds{host="mj2",job="data",repository="${masked}"}`),
    ).toBe(false);
    // node_exporter reads the file as its own user; the report stays private.
    expect(statSync(f.metrics).mode & 0o777).toBe(0o644);
    expect(statSync(f.junit).mode & 0o777).toBe(0o600);

    expect(xmllint(ctx, f.junit)).toMatchObject({ code: 0 });
    const xml = readFileSync(f.junit, "utf8");
    // mj1 data, mj2 data, mj3 (unreachable, no jobs): one failure, one error.
    expect(attribute(xml, "testsuite", "tests")).toBe("3");
    expect(attribute(xml, "testsuite", "failures")).toBe("1");
    expect(attribute(xml, "testsuite", "errors")).toBe("1");
    expect(attribute(xml, "testsuite", "skipped")).toBe("0");
    expect(xml).toMatch(
      /<testcase classname="rlvm-fleet\.backup\.mj2" name="data"[^>]*>\s*<failure type="backup_failed"/,
    );
    expect(xml).toMatch(
      /<testcase classname="rlvm-fleet\.backup\.mj3" name="mj3"[^>]*>\s*<error type="refused"/,
    );
    expect(xml).toContain(masked);

    // No piece of the password anywhere: whole, percent-encoded, or a long part of it.
    for (const file of [f.metrics, f.junit]) {
      const text = readFileSync(file, "utf8");
      for (const piece of [REST_SECRET, encodeURIComponent(REST_SECRET), "secret-77", "rest-secret"])
        expect(text, file).not.toContain(piece);
    }
    // Temporary files renamed away, nothing else beside them.
    expect(readdirSync(out).filter((name) => name.includes(".tmp-"))).toEqual([]);
  });

  it("check with an unreachable host: one case per host, the unreachable one an error", async (ctx) => {
    const f = files();
    await fleet.stopHost("mj3");
    let check: CliRun;
    try {
      check = await run("check", f);
    } finally {
      await fleet.startHost("mj3");
    }
    expect(check.code, check.stdout).toBe(1);
    expect(xmllint(ctx, f.junit)).toMatchObject({ code: 0 });
    const xml = readFileSync(f.junit, "utf8");
    expect([...xml.matchAll(/<testcase classname="[^"]*" name="([^"]*)"/g)].map((m) => m[1])).toEqual(HOSTS);
    expect(attribute(xml, "testsuite", "failures")).toBe("1"); // mj2: its rest: repository does not open
    expect(attribute(xml, "testsuite", "errors")).toBe("1");
    expect(xml).toMatch(/name="mj2"[^>]*>\s*<failure type="preflight"/);
    expect(promtool(ctx, f.metrics)).toEqual({ code: 0, output: "" });
    expect(samples(f.metrics).get('rlvm_fleet_host_status{host="mj1",command="check",status="ok"}')).toBe(1);
  });

  it("status: the freshness metric is the repository's real latest snapshot time, and its age", async (ctx) => {
    const backup = await runCli(["backup", "--inventory", inventoryFile, "--quiet", "--limit", "mj1,mj3"]);
    expect(backup.code, backup.stdout).toBe(0);
    const f = files();
    const before = Date.now();
    const status = await run("status", f, "--limit", "mj1,mj3");
    const after = Date.now();
    expect(status.code, status.stdout).toBe(0);
    expect(promtool(ctx, f.metrics)).toEqual({ code: 0, output: "" });
    const m = samples(f.metrics);
    const snapshots = JSON.parse(restic("snapshots", "--json", "--no-lock")) as Snapshot[];
    for (const host of ["mj1", "mj3"]) {
      const latest = Math.max(
        ...snapshots
          .filter((s) => s.hostname === host && s.tags?.includes("job:data"))
          .map((s) => Date.parse(s.time)),
      );
      const key = `{host="${host}",job="data",repository="${repo}"}`;
      // restic's time to the millisecond (JavaScript's precision), as Unix seconds.
      expect(m.get(`rlvm_fleet_latest_snapshot_timestamp_seconds${key}`)).toBeCloseTo(latest / 1000, 3);
      const age = m.get(`rlvm_fleet_latest_snapshot_age_seconds${key}`) ?? NaN;
      expect(age).toBeGreaterThanOrEqual(Math.floor((before - latest) / 1000));
      expect(age).toBeLessThanOrEqual(Math.ceil((after - latest) / 1000));
      expect(m.get(`rlvm_fleet_latest_snapshot_stale${key}`)).toBe(0);
    }
    expect(xmllint(ctx, f.junit)).toMatchObject({ code: 0 });
    expect(attribute(readFileSync(f.junit, "utf8"), "testsuite", "tests")).toBe("2");

    // A failed run: every job stale after a second.
    await new Promise((r) => setTimeout(r, 1500));
    const g = files();
    const stale = await run("status", g, "--limit", "mj1,mj3", "--max-age", "1s");
    expect(stale.code).toBe(1);
    expect(promtool(ctx, g.metrics)).toEqual({ code: 0, output: "" });
    const s = samples(g.metrics);
    expect(s.get(`rlvm_fleet_latest_snapshot_stale{host="mj1",job="data",repository="${repo}"}`)).toBe(1);
    expect(s.get('rlvm_fleet_host_error{host="mj1",command="status",code="stale"}')).toBe(1);
    expect(xmllint(ctx, g.junit)).toMatchObject({ code: 0 });
    const xml = readFileSync(g.junit, "utf8");
    expect(attribute(xml, "testsuite", "failures")).toBe("2");
    expect(xml).toContain('<failure type="stale"');
  });

  it("prune: kept and removed per host, job and repository, as restic left the repository", async (ctx) => {
    for (let i = 0; i < 2; i++)
      expect((await runCli(["backup", "--inventory", inventoryFile, "--quiet", "--limit", "mj1"])).code).toBe(
        0,
      );
    const count = () =>
      (JSON.parse(restic("snapshots", "--json", "--no-lock")) as Snapshot[]).filter(
        (s) => s.hostname === "mj1",
      ).length;
    const before = count();
    expect(before).toBeGreaterThanOrEqual(3);
    const f = files();
    const prune = await run("prune", f, "--limit", "mj1");
    expect(prune.code, prune.stdout).toBe(0);
    expect(count()).toBe(1);
    expect(promtool(ctx, f.metrics)).toEqual({ code: 0, output: "" });
    const m = samples(f.metrics);
    const key = `{host="mj1",job="data",repository="${repo}"}`;
    expect(m.get(`rlvm_fleet_prune_snapshots_kept${key}`)).toBe(1);
    expect(m.get(`rlvm_fleet_prune_snapshots_removed${key}`)).toBe(before - 1);
    expect(m.get(`rlvm_fleet_prune_status${key.replace("}", ',status="ok"}')}`)).toBe(1);
    // The repository's one prune, by its restic id, whoever ran it.
    const id = (JSON.parse(restic("cat", "config", "--no-lock")) as { id: string }).id;
    const r = `{repository="${repo}",repository_id="${id}"}`;
    expect(m.get(`rlvm_fleet_repository_prune_status${r.replace("}", ',host="mj1",status="ok"}')}`)).toBe(1);
    expect(m.get(`rlvm_fleet_repository_prune_status${r.replace("}", ',host="mj1",status="failed"}')}`)).toBe(
      0,
    );
    expect(m.get(`rlvm_fleet_repository_last_prune_timestamp_seconds${r}`)).toBe(
      Date.parse((JSON.parse(readFileSync(f.report, "utf8")) as Report).finished_at) / 1000,
    );
    expect(m.get(`rlvm_fleet_repository_prune_duration_seconds${r}`)).toBeGreaterThan(0);
    expect(m.get(`rlvm_fleet_repository_missing_forgets${r}`)).toBe(0);
    expect(xmllint(ctx, f.junit)).toMatchObject({ code: 0 });
  });

  it("refuses an output in a directory that does not exist before anything connects (exit 2)", async () => {
    for (const option of ["--metrics", "--junit"]) {
      const result = await runCli([
        "ping",
        "--inventory",
        inventoryFile,
        "--quiet",
        option,
        join(dir, "nowhere", "x"),
      ]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`${option} ${join(dir, "nowhere", "x")}: the directory`);
      expect(result.stderr).not.toMatch(/internal error|\n\s+at /);
    }
  });
});
