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
import { resticInit, writeInventory, writePasswordFile, standardPathConfig } from "./helpers/test-fleet.js";

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
        standardPathConfig({ source: source(host), repo: repo(host), passwordFile: password }),
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

  /** The most SSH sessions the hosts' sshds had open at once while `run` ran, read from their logs. */
  async function mostAtOnce(run: () => Promise<unknown>): Promise<number> {
    const offsets = new Map(HOSTS.map((name) => [name, statSync(fleet.host(name).logFile).size]));
    const open = new Map(HOSTS.map((name) => [name, new Set<string>()]));
    let most = 0;
    const seen: string[] = [];
    const poll = () => {
      for (const name of HOSTS) {
        const text = readFileSync(fleet.host(name).logFile, "utf8").slice(offsets.get(name));
        seen.push(text);
        offsets.set(name, (offsets.get(name) ?? 0) + text.length);
        const ports = open.get(name) ?? new Set<string>();
        for (const line of text.split("\n")) {
          const accepted = /Accepted publickey for \S+ from \S+ port (\d+)/.exec(line);
          if (accepted !== null) ports.add(accepted[1] ?? "");
          const ended =
            /(?:Disconnected from|Connection closed by|Connection reset by|Received disconnect from).* port (\d+)/.exec(
              line,
            );
          if (ended !== null) ports.delete(ended[1] ?? "");
        }
        // Lines are read in order per host; one poll's lines of different hosts are counted together,
        // so a poll every 10 ms only ever counts as open what a host had open in that window.
      }
      most = Math.max(
        most,
        [...open.values()].reduce((sum, ports) => sum + ports.size, 0),
      );
    };
    const timer = setInterval(poll, 10);
    try {
      await run();
    } finally {
      clearInterval(timer);
    }
    // The sshds log a session's end just after the controller has closed it.
    const allEnded = () => [...open.values()].every((ports) => ports.size === 0);
    for (let i = 0; i < 100 && (poll(), !allEnded()); i++) await new Promise((r) => setTimeout(r, 50));
    expect(
      allEnded(),
      `sessions still open: ${JSON.stringify([...open].map(([h, p]) => [h, [...p]]))}\n${seen.join("")}`,
    ).toBe(true);
    return most;
  }

  it("--serial 2: never more than 2 hosts at once, where without it all 5 run together", async () => {
    const serial = await mostAtOnce(async () => {
      const run = await runJson("backup", inventory, "--serial", "2");
      expect(run.code, run.stdout).toBe(0);
      expect(run.report.options.serial).toBe("2");
    });
    expect(serial).toBe(2);
    const together = await mostAtOnce(async () => {
      const run = await runJson("backup", inventory);
      expect(run.code, run.stdout).toBe(0);
    });
    expect(together).toBeGreaterThan(2);
  }, 240_000);

  it("--max-fail-percent: no more hosts after the threshold; they are skipped (max_fail), exit 5", async () => {
    await fleet.stopHost("rb1");
    await fleet.stopHost("rb2");
    const before = HOSTS.map(snapshotCount);
    try {
      // With --serial 2: the first batch fails entirely (100 % > 50 %), so no later batch starts.
      const batched = await runJson("backup", inventory, "--serial", "2", "--max-fail-percent", "50");
      expect(batched.code, batched.stdout).toBe(5);
      expect(batched.report.hosts.map((h) => [h.name, h.status, h.error?.code])).toEqual([
        ["rb1", "unreachable", "refused"],
        ["rb2", "unreachable", "refused"],
        ["rb3", "skipped", "max_fail"],
        ["rb4", "skipped", "max_fail"],
        ["rb5", "skipped", "max_fail"],
      ]);
      expect(batched.host("rb3")?.error?.message).toMatch(/2 of 2 host\(s\) in the previous batch/);
      // Without --serial, over the hosts finished so far: one at a time, rb1 alone is 100 %.
      const single = await runJson("backup", inventory, "--forks", "1", "--max-fail-percent", "30");
      expect(single.code).toBe(5);
      expect(single.report.summary).toMatchObject({ unreachable: 1, skipped: 4 });
      const table = await runCli([
        "backup",
        "-i",
        inventory,
        "--forks",
        "1",
        "--max-fail-percent",
        "30",
        "--quiet",
      ]);
      expect(table.code).toBe(5);
      expect(table.stdout).toContain("max_fail");
    } finally {
      await fleet.startHost("rb1");
      await fleet.startHost("rb2");
    }
    // The skipped hosts really never ran: no snapshot anywhere.
    expect(HOSTS.map(snapshotCount)).toEqual(before);
  }, 240_000);

  it("--splay: each host starts after its own random delay below the splay, reported per host", async () => {
    const started = Date.now();
    const run = await runJson("ping", inventory, "--splay", "3s");
    expect(run.code, run.stdout).toBe(0);
    expect(run.report.options.splay_s).toBe(3);
    const delays = run.report.hosts.map((h) => h.splay_ms ?? -1);
    for (const delay of delays) {
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThan(3000);
    }
    expect(new Set(delays).size).toBeGreaterThan(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(Math.max(...delays));
    const plain = await runJson("ping", inventory);
    expect(plain.report.hosts.every((h) => h.splay_ms === undefined)).toBe(true);
  }, 120_000);
});
