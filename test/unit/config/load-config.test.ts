import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadResticConfig } from "../../../src/config/load-config.js";
import { maskRepository, repositorySecrets } from "../../../src/config/rules.js";
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
    // A password holding '@', ':' or '/', or percent-encoded: the user-info ends at the last '@'.
    ["rest:https://user:p@ss@host/", "rest:https://user:***@host/"],
    ["rest:https://u:p@ss:w@rd@host:8000/r", "rest:https://u:***@host:8000/r"],
    ["rest:https://u:p/ss@host/r", "rest:https://u:***@host/r"],
    ["rest:https://u:p%40ss%2Fw@host/r", "rest:https://u:***@host/r"],
    ["rest:https://token@host/r", "rest:https://***@host/r"],
    ["sftp://backup@host//srv/repo", "sftp://backup@host//srv/repo"],
    ["sftp://backup:pw@x@host//srv/repo", "sftp://backup:***@host//srv/repo"],
    ["s3:https://s3.amazonaws.com/bucket/repo", "s3:https://s3.amazonaws.com/bucket/repo"],
    ["s3:s3.amazonaws.com/bucket", "s3:s3.amazonaws.com/bucket"],
    ["azure:container:/repo", "azure:container:/repo"],
    ["gs:bucket:/repo", "gs:bucket:/repo"],
    ["b2:bucket:repo", "b2:bucket:repo"],
    ["swift:container:/repo", "swift:container:/repo"],
    ["rclone:remote:path/repo", "rclone:remote:path/repo"],
    // rclone's inline connection strings: every value, quoted or not, on a remote or on the fly.
    [
      "rclone::s3,access_key_id=AKIA1,secret_access_key=Y2s3cret:bucket/path",
      "rclone::s3,access_key_id=***,secret_access_key=***:bucket/path",
    ],
    ['rclone::s3,secret_access_key="a:b,""c@d":bucket', "rclone::s3,secret_access_key=***:bucket"],
    ["rclone:remote,pass=zz:path", "rclone:remote,pass=***:path"],
    ["rclone::s3,env_auth,key=v:b", "rclone::s3,env_auth,key=***:b"],
    ["rclone::s3,key='unterminated:b", "rclone::s3,key=***"],
  ])("%s is shown as %s", (repo, shown) => {
    expect(maskRepository(repo)).toBe(shown);
  });

  it.each([
    ["rest:https://u:p%40ss@h/r", ["p%40ss", "p@ss"]],
    ["rest:https://u:p@ss@h/r", ["p@ss"]],
    ["rclone::s3,access_key_id=X1,secret_access_key=Y2:b", ["X1", "Y2"]],
    ['rclone::s3,secret_access_key="a""b":b', ['"a""b"', 'a"b']],
    ["sftp:backup@host:/srv/repo", []],
  ])("%s holds the secrets %j", (repo, secrets) => {
    expect(repositorySecrets(repo)).toEqual(secrets);
  });
});

describe("validate never shows a repository's credentials", () => {
  const PASSWORD = "Zq7Secr@Wk9Part:Xy5Tail";
  const URL = `rest:https://fleet:${PASSWORD}@vault.example:8000/db1`;
  const RCLONE = "rclone::s3,access_key_id=AKIAQQQQ,secret_access_key=VerySecretKey77:bucket/db1";
  const pieces = (text: string) =>
    [...PASSWORD.split(/[@:]/), "AKIAQQQQ", "VerySecretKey77"].filter((piece) => text.includes(piece));

  async function validate(config: string) {
    const tree = writeTree({
      "inventory.toml": `[hosts.h1]\naddress = "127.0.0.2"\nconfig = "restic.toml"\n`,
      "restic.toml": config,
    });
    try {
      return await runCli(["validate", "--inventory", "inventory.toml"], { cwd: tree.dir });
    } finally {
      tree.cleanup();
    }
  }
  const job = (repositories: string) => `[standard_path.etc]\nbackup_source_path = "/etc"\n${repositories}`;
  const entry = (repo: string, extra = "") =>
    `[[standard_path.etc.repositories]]\nrepo_path = ${JSON.stringify(repo)}\npassword_file = "/etc/pw"\n${extra}`;

  it.each([
    ["listed twice", job(entry(URL) + entry(URL))],
    ["listed twice, rclone inline credentials", job(entry(RCLONE) + entry(RCLONE))],
    [
      "copy_to listed twice",
      job(
        entry(
          "/srv/r",
          `[[standard_path.etc.repositories.copy_to]]\nrepo = ${JSON.stringify(URL)}\npassword_file = "/etc/pw"\n`.repeat(
            2,
          ),
        ),
      ),
    ],
    ["a bad field beside it", job(entry(URL, "prune_keep_last = -1\n"))],
    ["not a backend URL", job(entry(`x${URL}`))],
    ["in a key that wants a path", job(entry("/srv/r").replace('"/etc/pw"', JSON.stringify(URL)))],
    ["in a key that wants a table", job(entry("/srv/r", `copy_to = ${JSON.stringify(URL)}\n`))],
    ["a job with rclone and a bad field", job(entry(RCLONE, "prune_keep_last = 1.5\n"))],
  ])("%s", async (_name, config) => {
    const result = await validate(config);
    expect(result.code).not.toBe(0);
    const output = result.stdout + result.stderr;
    expect(output).toMatch(/etc/); // the problem is reported...
    expect(pieces(output)).toEqual([]); // ...with no piece of any secret
  });

  it("names the masked repository in the duplicate message", async () => {
    const result = await validate(job(entry(URL) + entry(URL)));
    expect(result.stdout + result.stderr).toContain(
      'repository "rest:https://fleet:***@vault.example:8000/db1" is listed twice',
    );
  });
});
