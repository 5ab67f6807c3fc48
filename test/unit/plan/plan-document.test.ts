import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCli, writeTree } from "../../helpers/run-cli.js";

const PAIRS = join(import.meta.dirname, "../../fixtures/pairs");
const tree = writeTree({
  "inventory.toml": `
[defaults]
user = "rlvm"
config = ${JSON.stringify(join(PAIRS, "mixed-category.toml"))}
[groups.db]
hosts = ["db1"]
[hosts.db1]
address = "127.0.0.2"
[hosts.web1]
config = ${JSON.stringify(join(PAIRS, "legacy-category.toml"))}
`,
  "secret.toml": `
[standard_path.etc]
backup_source_path = "/etc"
[[standard_path.etc.repositories]]
repo_path = "rest:https://fleet:hunter2@vault.example.com:8000/etc"
password_file = "/etc/rlvm/pw"
prune_keep_last = 3
`,
  "secret-inventory.toml": `[hosts.h1]\nconfig = "secret.toml"\n`,
  "jump-inventory.toml": `
[defaults]
user = "rlvm"
config = ${JSON.stringify(join(PAIRS, "mixed-category.toml"))}
[jump_hosts.edge]
address = "edge.example.com"
user = "hop"
port = 2222
[hosts.db1]
address = "10.0.0.5"
proxy_jump = ["edge", "ops@inner.example.com:2200"]
[hosts.web1]
address = "10.0.0.6"
`,
});
afterAll(() => tree.cleanup());

describe("plan", () => {
  it("prints the hosts[].jobs[] document alone on stdout with --format json", async () => {
    const result = await runCli(["plan", "-i", "inventory.toml", "--format", "json"], { cwd: tree.dir });
    expect(result.code).toBe(0);
    const doc = JSON.parse(result.stdout);
    expect(doc.schema).toBe("rlvm-fleet/plan@1");
    expect(doc.hosts.map((h: { name: string }) => h.name)).toEqual(["db1", "web1"]);
    const root = doc.hosts[0].jobs[0];
    expect(root).toMatchObject({
      name: "root",
      category: "logical_volume_root",
      source_path: "/",
      volume: { vg_name: "vg0", lv_name: "lv_root", snapshot_size: "2G" },
      repos: [{ repo: "/backups/root", retention: { last: 7, daily: 7, weekly: 0, monthly: 0, yearly: 0 } }],
      copies: [{ from: "/backups/root", to: "rest:http://vault.example.com:8000/root" }],
    });
    // Every snapshot first, then backups, each snapshot removed after its job, copies last.
    expect(doc.hosts[0].steps.map((s: { action: string; job: string }) => `${s.action}:${s.job}`)).toEqual([
      "snapshot:root",
      "snapshot:data",
      "backup:root",
      "remove_snapshot:root",
      "backup:data",
      "remove_snapshot:data",
      "backup:boot",
      "copy:root",
    ]);
  });

  it("filters by --limit, --category (with 0.10 aliases) and --name", async () => {
    const json = async (...args: string[]) =>
      JSON.parse(
        (await runCli(["plan", "-i", "inventory.toml", "--format", "json", ...args], { cwd: tree.dir }))
          .stdout,
      );
    expect((await json("--limit", "db")).hosts.map((h: { name: string }) => h.name)).toEqual(["db1"]);
    const byAlias = await json("--limit", "db1", "--category", "lv_root,lv_nonroot");
    expect(byAlias.hosts[0].jobs.map((j: { name: string }) => j.name)).toEqual(["root", "data"]);
    const byName = await json("--limit", "db1", "--name", "boot");
    expect(byName.hosts[0].jobs.map((j: { name: string }) => j.name)).toEqual(["boot"]);
  });

  it("masks a password inside a repository URL in every format", async () => {
    for (const format of ["table", "json"]) {
      const result = await runCli(["plan", "-i", "secret-inventory.toml", "--format", format], {
        cwd: tree.dir,
      });
      expect(result.code).toBe(0);
      expect(result.stdout).not.toContain("hunter2");
      expect(result.stdout).toContain("rest:https://fleet:***@vault.example.com:8000/etc");
    }
    const validate = await runCli(["validate", "-i", "secret-inventory.toml", "--format", "json"], {
      cwd: tree.dir,
    });
    expect(validate.stdout).not.toContain("hunter2");
  });

  it("shows a sysadmin the jobs, snapshots, repositories, retention and order as a table", async () => {
    const result = await runCli(["plan", "-i", "inventory.toml", "--limit", "db1"], { cwd: tree.dir });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^db1 {2}rlvm@127\.0\.0\.2:22 {2}as root via sudo/);
    expect(result.stdout).toContain("vg0/lv_root");
    expect(result.stdout).toContain("↳ copy to rest:http://vault.example.com:8000/root");
    expect(result.stdout).toContain("keep daily 30, monthly 12");
    expect(result.stdout).toMatch(/1\. snapshot root: vg0\/lv_root as lv_root_rlvm_<runid> \(2G COW\)/);
    expect(result.stdout).toContain("nothing was run (plan makes no connection)");
  });

  it("shows the bastions a host is reached through, outermost first, in the table and the JSON", async () => {
    const table = await runCli(["plan", "-i", "jump-inventory.toml"], { cwd: tree.dir });
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(
      /^db1 {2}rlvm@10\.0\.0\.5:22 {2}as root via sudo {2}through edge \(hop@edge\.example\.com:2222\) → ops@inner\.example\.com:2200$/m,
    );
    expect(table.stdout).toMatch(/^web1 {2}rlvm@10\.0\.0\.6:22 {2}as root via sudo$/m);
    const json = await runCli(["plan", "-i", "jump-inventory.toml", "--format", "json"], { cwd: tree.dir });
    const doc = JSON.parse(json.stdout) as { hosts: { name: string; jump: unknown[] }[] };
    expect(doc.hosts.map((h) => [h.name, h.jump])).toEqual([
      [
        "db1",
        [
          { name: "edge", user: "hop", address: "edge.example.com", port: 2222 },
          { name: "ops@inner.example.com:2200", user: "ops", address: "inner.example.com", port: 2200 },
        ],
      ],
      ["web1", []],
    ]);
  });
});
