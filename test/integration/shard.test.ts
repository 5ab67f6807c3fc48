// --shard over real sshd hosts: three shards run in parallel and merged with `report merge` give the
// same host results and exit code as one run of the whole fleet, with one host unreachable.
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { reportSchema } from "../../src/report/report-schema.js";
import { runCli, runJson } from "../helpers/run-cli.js";
import { describeIntegration } from "./harness/describe-integration.js";
import { startFleet, type Fleet } from "./harness/fleet.js";
import { writeInventory, standardPathConfig } from "./helpers/test-fleet.js";

// By sha256 mod 3: shard 1 holds shard2 and shard5, shard 2 shard1, shard 3 shard3 and shard4.
const HOSTS = ["shard1", "shard2", "shard3", "shard4", "shard5"];
const DOWN = "shard4";

describeIntegration("--shard K/N and report merge, over real sshd", () => {
  let fleet: Fleet;
  let dir: string;
  let inventory: string;

  beforeAll(async () => {
    fleet = await startFleet({ hosts: HOSTS });
    dir = mkdtempSync(join(fleet.dir, "shard-"));
    chmodSync(dir, 0o755);
    writeFileSync(
      join(dir, "host.toml"),
      standardPathConfig({
        source: dir,
        repo: join(dir, "repo"),
        passwordFile: join(dir, "password"),
        keepLast: null,
      }),
    );
    inventory = writeInventory(fleet, join(dir, "inventory.toml"), {
      defaults: { config: join(dir, "host.toml") },
    });
    await fleet.stopHost(DOWN);
  }, 120_000);

  afterAll(async () => {
    await fleet?.stop();
  });

  it("merges 3 parallel shards into the results and exit code of one run", async () => {
    const whole = await runJson("ping", inventory);
    const results = (hosts: { name: string; status: string; error: { code: string } | null }[]) =>
      hosts.map((h) => [h.name, h.status, h.error?.code ?? null]).sort();
    expect(results(whole.report.hosts)).toEqual([
      ["shard1", "ok", null],
      ["shard2", "ok", null],
      ["shard3", "ok", null],
      ["shard4", "unreachable", "refused"],
      ["shard5", "ok", null],
    ]);
    expect(whole.code).toBe(4);

    const shards = await Promise.all(
      [1, 2, 3].map((k) =>
        runJson("ping", inventory, "--shard", `${k}/3`, "--report", join(dir, `shard-${k}.json`)),
      ),
    );
    expect(shards.map((s) => s.report.hosts.map((h) => h.name))).toEqual([
      ["shard2", "shard5"],
      ["shard1"],
      ["shard3", "shard4"],
    ]);
    expect(shards.map((s) => s.code)).toEqual([0, 0, 4]);
    // In parallel: the shards' runs overlap in time.
    const spans = shards.map((s) => [Date.parse(s.report.started_at), Date.parse(s.report.finished_at)]);
    expect(Math.max(...spans.map((s) => s[0]!))).toBeLessThan(Math.min(...spans.map((s) => s[1]!)));

    const merged = await runCli(
      ["report", "merge", ...[1, 2, 3].map((k) => join(dir, `shard-${k}.json`)), "--format", "json"],
      { cwd: dir },
    );
    expect(merged.stderr).toBe("");
    const report = reportSchema.parse(JSON.parse(merged.stdout));
    expect(results(report.hosts)).toEqual(results(whole.report.hosts));
    expect(report.hosts.map((h) => h.name)).toEqual(HOSTS);
    expect(report.summary).toEqual(whole.report.summary);
    expect(report.exit_code).toBe(whole.report.exit_code);
    expect(merged.code).toBe(whole.code);
    expect(report.warnings).toEqual([]);
  }, 180_000);
});
