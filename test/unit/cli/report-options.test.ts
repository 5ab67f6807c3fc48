// Each connecting command records its typed options in the report: run through the real CLI against a
// host that refuses the connection (a real run, no sshd needed), then read back through the schema.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { freePort } from "../../../src/demo/free-port.js";
import { reportOptionsSchema, type ReportOptions } from "../../../src/report/report-options.js";
import { reportSchema } from "../../../src/report/report-schema.js";
import { DEFAULT_OPTIONS as DEFAULTS } from "../../helpers/report-fixture.js";
import { runCli, writeTree } from "../../helpers/run-cli.js";

const CONFIG = `
[logical_volume_nonroot.data]
vg_name = "vg0"
lv_name = "lv_data"
snapshot_size = "2G"
backup_source_path = "/data"

[[logical_volume_nonroot.data.repositories]]
repo_path = "/srv/backup/data"
password_file = "/etc/rlvm/pw"
prune_keep_last = 7
`;

describe("the report's options", () => {
  let tree: ReturnType<typeof writeTree>;
  beforeAll(async () => {
    // Nothing listens on this port: every run ends with the host unreachable.
    const port = await freePort();
    tree = writeTree({
      "host.toml": CONFIG,
      "inventory.toml": `
[defaults]
user = "rlvm"
config = "host.toml"
known_hosts = "known_hosts"
connect_timeout = 5
connect_retries = 0

[hosts.h1]
address = "127.0.0.1"
port = ${port}
`,
    });
  });
  afterAll(() => tree.cleanup());

  it.each<[string, string[], Partial<ReportOptions>]>([
    ["ping", [], {}],
    ["ping", ["--limit", "h1", "--forks", "3"], { limit: "h1", forks: 3 }],
    ["check", ["--category", "lv_nonroot", "--name", "data"], { category: ["lv_nonroot"], name: ["data"] }],
    ["backup", ["--dry-run", "--name", "data,data"], { dry_run: true, name: ["data", "data"] }],
    ["backup", [], {}],
    ["prune", ["--dry-run", "--category", "lv_nonroot"], { dry_run: true, category: ["lv_nonroot"] }],
    ["status", ["--max-age", "26h"], { max_age_s: 93_600 }],
    ["backup", ["--shard", "1/1"], { shard: { k: 1, n: 1 } }],
  ])("%s %j", async (command, args, expected) => {
    const result = await runCli(
      [command, "--inventory", "inventory.toml", "--format", "json", "--quiet", ...args],
      { cwd: tree.dir },
    );
    const json: unknown = JSON.parse(result.stdout);
    const report = reportSchema.parse(json);
    expect(report.command).toBe(command);
    expect(report.hosts.map((h) => h.status)).toEqual(["unreachable"]);
    expect(report.options).toEqual({ ...DEFAULTS, ...expected });
    // The JSON as written: exactly these fields, in this order, as the report has always had them.
    const written = z.object({ options: z.record(z.string(), z.unknown()) }).parse(json).options;
    expect(Object.keys(written)).toEqual(Object.keys(DEFAULTS));
    expect(written).toEqual({ ...DEFAULTS, ...expected });
  });

  it.each<[string, string[], RegExp, RegExp | null]>([
    ["status", ["--max-age", "26h"], /max 1d2h/, null],
    ["status", [], /latest/, /max /],
    ["prune", ["--dry-run"], /would remove/, null],
    ["prune", [], /removed/, /would remove/],
    ["backup", ["--dry-run", "--format", "markdown"], /^## rlvm-fleet backup \(dry run\)$/m, null],
    ["backup", ["--format", "markdown"], /^## rlvm-fleet backup$/m, /dry run/],
  ])("the renderers read them: %s %j", async (command, args, shown, notShown) => {
    const result = await runCli([command, "--inventory", "inventory.toml", "--quiet", ...args], {
      cwd: tree.dir,
    });
    expect(result.stdout).toMatch(shown);
    if (notShown !== null) expect(result.stdout).not.toMatch(notShown);
  });

  it("the schema refuses options that are missing or of the wrong type", () => {
    expect(reportOptionsSchema.safeParse(DEFAULTS).success).toBe(true);
    const { max_age_s: _dropped, ...missing } = DEFAULTS;
    expect(reportOptionsSchema.safeParse(missing).success).toBe(false);
    expect(reportOptionsSchema.safeParse({ ...DEFAULTS, forks: "10" }).success).toBe(false);
    expect(reportOptionsSchema.safeParse({ ...DEFAULTS, forks: 0 }).success).toBe(false);
    expect(reportOptionsSchema.safeParse({ ...DEFAULTS, dry_run: "true" }).success).toBe(false);
    expect(reportOptionsSchema.safeParse({ ...DEFAULTS, category: "lv_root" }).success).toBe(false);
  });
});
