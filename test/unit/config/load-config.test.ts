import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadResticConfig } from "../../../src/config/load-config.js";
import { maskRepository } from "../../../src/config/rules.js";
import { runCli, writeTree } from "../../helpers/run-cli.js";

const UPSTREAM = join(import.meta.dirname, "../../fixtures/upstream-configs");
const PAIRS = join(import.meta.dirname, "../../fixtures/pairs");
const upstreamFiles = readdirSync(UPSTREAM).filter((f) => f.endsWith(".toml"));

describe("upstream ResticLVM configs", () => {
  it("are all present", () => {
    expect(upstreamFiles.length).toBe(10);
  });

  it.each(upstreamFiles)("%s validates unchanged through an inventory", async (file) => {
    const tree = writeTree({
      "inventory.toml": `[hosts.h1]\naddress = "127.0.0.2"\nconfig = ${JSON.stringify(join(UPSTREAM, file))}\n`,
    });
    try {
      const result = await runCli(["validate", "--inventory", "inventory.toml"], { cwd: tree.dir });
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^✓ h1 /);
    } finally {
      tree.cleanup();
    }
  });

  it("normalises the volume format's policies by name", () => {
    const result = loadResticConfig(join(UPSTREAM, "v0.10-format-example.toml"));
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    const root = result.config.jobs.find((j) => j.name === "root");
    expect(root?.category).toBe("logical_volume_root");
    expect(root?.repositories[0]?.retention).toEqual({ last: 7, daily: 7, weekly: 4, monthly: 3, yearly: 1 });
    expect(root?.repositories[0]?.copy_to[0]?.retention).toEqual({
      last: 30,
      daily: 30,
      weekly: 12,
      monthly: 12,
      yearly: 3,
    });
    expect(result.config.jobs.map((j) => j.name)).toEqual(["boot-efi", "boot", "root", "home"]);
  });

  it("keeps jobs in file order and reads every category of the seed", () => {
    const result = loadResticConfig(join(UPSTREAM, "mixed-backup-types.toml"));
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    expect(result.config.jobs.map((j) => [j.name, j.category])).toEqual([
      ["root", "logical_volume_root"],
      ["data", "logical_volume_nonroot"],
      ["boot", "standard_path"],
    ]);
    expect(result.config.jobs[2]?.remount_readonly).toBe(true);
    expect(result.config.jobs[0]?.volume).toEqual({
      vg_name: "vg0",
      lv_name: "lv_root",
      snapshot_size: "2G",
    });
  });
});

describe("snapshot_settings defaults", () => {
  const lvJob = (table: string, typeLine: string) =>
    `[${table}.data]\n${typeLine}vg_name = "vg0"\nlv_name = "lv_data"\nsnapshot_size = "1G"\nbackup_source_path = "/data"\n` +
    `[[${table}.data.repositories]]\nrepo_path = "/srv/r"\npassword_file = "/etc/pw"\n`;

  it("a 0.10 config without [snapshot_settings] gets ResticLVM 0.10's: 1G kept free per VG, COW warning at 70 %", () => {
    const tree = writeTree({ "c.toml": lvJob("volume", 'volume_type = "lv_nonroot"\n') });
    try {
      const result = loadResticConfig(join(tree.dir, "c.toml"));
      if (!result.ok) throw new Error(JSON.stringify(result.problems));
      expect(result.config.snapshot_settings).toEqual({
        min_vg_free_after_snapshots: "1G",
        snapshot_cow_warn_percent: 70,
      });
    } finally {
      tree.cleanup();
    }
  });

  it("the category format keeps no margin unless it sets one (the seed's format never had one)", () => {
    const tree = writeTree({ "c.toml": lvJob("logical_volume_nonroot", "") });
    try {
      const result = loadResticConfig(join(tree.dir, "c.toml"));
      if (!result.ok) throw new Error(JSON.stringify(result.problems));
      expect(result.config.snapshot_settings).toEqual({
        min_vg_free_after_snapshots: null,
        snapshot_cow_warn_percent: 70,
      });
    } finally {
      tree.cleanup();
    }
  });
});

describe("the two formats normalise to equal models", () => {
  it.each([
    ["mixed-category.toml", "mixed-volume.toml"],
    ["legacy-category.toml", "legacy-volume.toml"],
  ])("%s equals %s", (category, volume) => {
    const a = loadResticConfig(join(PAIRS, category));
    const b = loadResticConfig(join(PAIRS, volume));
    if (!a.ok || !b.ok) throw new Error(JSON.stringify([a, b]));
    expect(a.config.format).toBe("category");
    expect(b.config.format).toBe("volume");
    expect(a.config.jobs).toEqual(b.config.jobs);
    expect(a.config.snapshot_settings).toEqual(b.config.snapshot_settings);
    expect(a.config.jobs.length).toBeGreaterThan(0);
  });
});

describe("repository URLs", () => {
  it("keep their // (rest:http:// is not collapsed)", () => {
    const result = loadResticConfig(join(PAIRS, "mixed-category.toml"));
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    expect(result.config.jobs[0]?.repositories[0]?.copy_to[0]?.repo).toBe(
      "rest:http://vault.example.com:8000/root",
    );
  });

  it.each([
    ["rest:https://user:secret@host:8000/repo", "rest:https://user:***@host:8000/repo"],
    ["rest:http://host:8000/repo", "rest:http://host:8000/repo"],
    ["s3:https://key:pw@s3.example.com/bucket", "s3:https://key:***@s3.example.com/bucket"],
    ["sftp:backup@host:/srv/repo", "sftp:backup@host:/srv/repo"],
    ["/srv/backup/repo", "/srv/backup/repo"],
  ])("%s is shown as %s", (repo, shown) => {
    expect(maskRepository(repo)).toBe(shown);
  });
});
