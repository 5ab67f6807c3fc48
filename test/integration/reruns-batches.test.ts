// --retry-file with --limit @FILE, --serial, --max-fail-percent and --splay over real sshd and restic.
// How many hosts run at once is read off the hosts themselves: each sshd's log, as its sessions open
// and close.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Report } from "../../src/report/report-schema.js";
import { runCli, runJson } from "../helpers/run-cli.js";
import { describeIntegration } from "./harness/describe-integration.js";
import { startFleet, type Fleet } from "./harness/fleet.js";
import { resticInit, writeInventory, writePasswordFile } from "./helpers/test-fleet.js";

const HOSTS = ["rb1", "rb2", "rb3", "rb4", "rb5"];

describeIntegration("reruns, batches and splay over real sshd", () => {
  let fleet: Fleet;
  let dir: string;
  let password: string;
  let inventory: string;
  const source = (host: string) => join(dir, "src", host);
  const repo = (host: string) => join(dir, "repo", host);

  beforeAll(async () => {
    fleet = await startFleet({ hosts: HOSTS });
    dir = mkdtempSync(join(fleet.dir, "reruns-"));
    chmodSync(dir, 0o755);
    password = writePasswordFile(join(dir, "password"), "reruns test password");
    for (const host of HOSTS) {
      mkdirSync(source(host), { recursive: true });
      writeFileSync(join(source(host), "file.txt"), `${host}\n`);
      mkdirSync(join(dir, "repo"), { recursive: true });
      resticInit(repo(host), password);
      writeFileSync(
        join(dir, `${host}.toml`),
        `[standard_path.data]
backup_source_path = ${JSON.stringify(source(host))}

[[standard_path.data.repositories]]
repo_path = ${JSON.stringify(repo(host))}
password_file = ${JSON.stringify(password)}
prune_keep_last = 3
`,
      );
    }
    inventory = writeInventory(fleet, join(dir, "inventory.toml"), {
      defaults: { config: join(dir, "{host}.toml") },
    });
  }, 120_000);

  afterAll(async () => {
    await fleet?.stop();
  });

  const snapshotCount = (host: string) =>
    (
      JSON.parse(
        execFileSync("restic", ["-r", repo(host), "--password-file", password, "snapshots", "--json"], {
          encoding: "utf8",
        }),
      ) as unknown[]
    ).length;

  it("--retry-file names the failed and unreachable hosts; --limit @FILE reruns exactly them", async () => {
    await fleet.stopHost("rb2");
    rmSync(source("rb4"), { recursive: true });
    const retry = join(dir, "retry.txt");
    const before = HOSTS.map(snapshotCount);
    try {
      const first = await runJson("backup", inventory, "--retry-file", retry);
      expect(first.code, first.stdout).toBe(1);
      expect(first.host("rb2")?.status).toBe("unreachable");
      expect(first.host("rb4")?.status).toBe("failed");
      expect(readFileSync(retry, "utf8")).toBe("rb2\nrb4\n");
      // Readable by the cron job or CI step that reruns, as the report is.
      expect(statSync(retry).mode & 0o777).toBe(0o644);
    } finally {
      await fleet.startHost("rb2");
      mkdirSync(source("rb4"), { recursive: true });
      writeFileSync(join(source("rb4"), "file.txt"), "rb4\n");
    }
    const midway = HOSTS.map(snapshotCount);
    // A relative @FILE is read from the working directory, as Ansible reads it.
    const rerun = await runCli(
      [
        "backup",
        "-i",
        inventory,
        "--limit",
        "@retry.txt",
        "--retry-file",
        retry,
        "--format",
        "json",
        "--quiet",
      ],
      { cwd: dir },
    );
    expect(rerun.code, rerun.stdout + rerun.stderr).toBe(0);
    const report = JSON.parse(rerun.stdout) as Report;
    expect(report.hosts.map((h) => [h.name, h.status])).toEqual([
      ["rb2", "ok"],
      ["rb4", "ok"],
    ]);
    expect(report.options.limit).toBe("@retry.txt");
    // Exactly the failed hosts got their backup: one new snapshot each; the others none.
    const after = HOSTS.map(snapshotCount);
    expect(after.map((n, i) => n - (before[i] ?? 0))).toEqual([1, 1, 1, 1, 1]);
    expect(after.map((n, i) => n - (midway[i] ?? 0))).toEqual([0, 1, 0, 1, 0]);
    // Nothing left to retry: the file is empty, and reading it is refused rather than taken as "all".
    expect(readFileSync(retry, "utf8")).toBe("");
    const empty = await runCli(["backup", "--inventory", inventory, "--limit", `@${retry}`]);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain(`--limit @${retry}: ${retry} names no host`);
    expect(empty.stdout).toBe("");
  }, 240_000);
});
