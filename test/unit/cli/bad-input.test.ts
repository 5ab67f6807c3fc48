// Table-driven bad input: every case must exit 2 and name the place (file and TOML path) and the problem.
import { afterEach, describe, expect, it } from "vitest";
import { runCli, writeTree } from "../../helpers/run-cli.js";

const GOOD_CONFIG = `
[logical_volume_nonroot.data]
vg_name = "vg0"
lv_name = "lv_data"
snapshot_size = "2G"
backup_source_path = "/data"
exclude_paths = ["/data/cache"]

[[logical_volume_nonroot.data.repositories]]
repo_path = "/srv/backup/data"
password_file = "/etc/rlvm/pw"
prune_keep_last = 7
prune_keep_daily = 7

  [[logical_volume_nonroot.data.repositories.copy_to]]
  repo = "sftp:backup@vault.example.com:/backups/data"
  password_file = "/etc/rlvm/pw"
  prune_keep_daily = 30
`;

const GOOD_VOLUME_CONFIG = `
[prune_policy.local]
keep_last = 7

[volume.root]
volume_type = "lv_root"
vg_name = "vg0"
lv_name = "lv_root"
snapshot_size = "2G"
backup_source_path = "/"
exclude_paths = ["/tmp"]

  [[volume.root.repositories]]
  repo_path = "/srv/backup/root"
  password_file = "/etc/rlvm/pw"
  prune_policy = "local"
`;

const GOOD_INVENTORY = `
[defaults]
user = "rlvm"
config = "host.toml"

[hosts.h1]
address = "127.0.0.2"
`;

interface Case {
  name: string;
  config?: string;
  inventory?: string;
  args?: string[];
  /** Where the problem is: "FILE: PATH" as printed, or just the file for whole-file problems. */
  where: string;
  message: RegExp;
}

const edit = (base: string, from: string | RegExp, to: string) => {
  const result = base.replace(from, to);
  if (result === base) throw new Error(`test setup: ${String(from)} not found`);
  return result;
};
const cfg = (from: string | RegExp, to: string) => edit(GOOD_CONFIG, from, to);
const vol = (from: string | RegExp, to: string) => edit(GOOD_VOLUME_CONFIG, from, to);
const inv = (from: string | RegExp, to: string) => edit(GOOD_INVENTORY, from, to);
const JOB = "logical_volume_nonroot.data";
const REPO = `${JOB}.repositories[0]`;

const cases: Case[] = [
  // Missing keys and wrong types.
  {
    name: "missing backup_source_path",
    config: cfg(/backup_source_path = .*\n/, ""),
    where: `host.toml: ${JOB}.backup_source_path`,
    message: /missing required key \(expected a string\)/,
  },
  {
    name: "missing repositories",
    config: GOOD_CONFIG.slice(0, GOOD_CONFIG.indexOf("[[")),
    where: `host.toml: ${JOB}.repositories`,
    message: /missing required key/,
  },
  {
    name: "snapshot_size as a number",
    config: cfg('snapshot_size = "2G"', "snapshot_size = 2"),
    where: `host.toml: ${JOB}.snapshot_size`,
    message: /expected a string, got number 2/,
  },
  {
    name: "keep value as a string",
    config: cfg("prune_keep_daily = 7", 'prune_keep_daily = "7"'),
    where: `host.toml: ${REPO}.prune_keep_daily`,
    message: /expected a number, got the string "7"/,
  },
  {
    name: "keep value fractional",
    config: cfg("prune_keep_daily = 7", "prune_keep_daily = 1.5"),
    where: `host.toml: ${REPO}.prune_keep_daily`,
    message: /whole number/,
  },
  {
    name: "keep value negative",
    config: cfg("prune_keep_last = 7", "prune_keep_last = -1"),
    where: `host.toml: ${REPO}.prune_keep_last`,
    message: /≥ 0/,
  },
  {
    name: "copy_to without password_file",
    config: cfg(/password_file = "\/etc\/rlvm\/pw"\n {2}prune_keep_daily = 30/, "prune_keep_daily = 30"),
    where: `host.toml: ${REPO}.copy_to[0].password_file`,
    message: /missing required key/,
  },
  // LVM names and sizes.
  {
    name: "VG name with a space",
    config: cfg('vg_name = "vg0"', 'vg_name = "vg 0"'),
    where: `host.toml: ${JOB}.vg_name`,
    message: /VG name must use only LVM's characters/,
  },
  {
    name: "VG name with a slash",
    config: cfg('vg_name = "vg0"', 'vg_name = "vg/0"'),
    where: `host.toml: ${JOB}.vg_name`,
    message: /VG name must use only LVM's characters/,
  },
  {
    name: "LV name with a space",
    config: cfg('lv_name = "lv_data"', 'lv_name = "lv data"'),
    where: `host.toml: ${JOB}.lv_name`,
    message: /LV name must use only LVM's characters/,
  },
  {
    name: "LV name with a slash",
    config: cfg('lv_name = "lv_data"', 'lv_name = "vg0/lv_data"'),
    where: `host.toml: ${JOB}.lv_name`,
    message: /LV name must use only LVM's characters/,
  },
  {
    name: "LV name starting with a dash",
    config: cfg('lv_name = "lv_data"', 'lv_name = "-lv"'),
    where: `host.toml: ${JOB}.lv_name`,
    message: /must not start with '-'/,
  },
  {
    name: "snapshot size with a space and two letters",
    config: cfg('"2G"', '"2 GB"'),
    where: `host.toml: ${JOB}.snapshot_size`,
    message: /expected an LVM size such as "2G"/,
  },
  {
    name: "negative snapshot size",
    config: cfg('"2G"', '"-1G"'),
    where: `host.toml: ${JOB}.snapshot_size`,
    message: /expected an LVM size/,
  },
  {
    name: "zero snapshot size",
    config: cfg('"2G"', '"0G"'),
    where: `host.toml: ${JOB}.snapshot_size`,
    message: /a positive number/,
  },
  // Paths.
  {
    name: "relative source path",
    config: cfg('backup_source_path = "/data"', 'backup_source_path = "data"'),
    where: `host.toml: ${JOB}.backup_source_path`,
    message: /expected an absolute path/,
  },
  {
    name: "relative password file",
    config: cfg('password_file = "/etc/rlvm/pw"', 'password_file = "pw.txt"'),
    where: `host.toml: ${REPO}.password_file`,
    message: /expected an absolute path/,
  },
  {
    name: "relative local repository",
    config: cfg('repo_path = "/srv/backup/data"', 'repo_path = "backups/data"'),
    where: `host.toml: ${REPO}.repo_path`,
    message: /expected an absolute local path or a restic backend URL/,
  },
  {
    name: "exclude path outside the source",
    config: cfg('["/data/cache"]', '["/etc"]'),
    where: `host.toml: ${JOB}.exclude_paths[0]`,
    message: /exclude path "\/etc" is outside the backup source "\/data"/,
  },
  {
    name: "exclude path escaping with ..",
    config: cfg('["/data/cache"]', '["/data/../etc"]'),
    where: `host.toml: ${JOB}.exclude_paths[0]`,
    message: /not normalised/,
  },
  // Repositories and retention.
  {
    name: "a repository twice in one job",
    config: GOOD_CONFIG + GOOD_CONFIG.slice(GOOD_CONFIG.indexOf("[[logical"), GOOD_CONFIG.indexOf("  [[")),
    where: `host.toml: ${JOB}.repositories[1].repo_path`,
    message: /listed twice for this job \(also repositories\[0\]\)/,
  },
  {
    name: "a repository twice, once with a trailing slash",
    config:
      GOOD_CONFIG +
      GOOD_CONFIG.slice(GOOD_CONFIG.indexOf("[[logical"), GOOD_CONFIG.indexOf("  [[")).replace(
        'data"',
        'data/"',
      ),
    where: `host.toml: ${JOB}.repositories[1].repo_path`,
    message: /listed twice/,
  },
  {
    name: "all-zero retention",
    config: cfg("prune_keep_last = 7\nprune_keep_daily = 7", "prune_keep_last = 0\nprune_keep_daily = 0"),
    where: `host.toml: ${REPO}.prune_keep_last`,
    message: /every keep value of this retention policy is 0/,
  },
  {
    name: "all-zero retention on a copy_to",
    config: cfg("prune_keep_daily = 30", "prune_keep_daily = 0"),
    where: `host.toml: ${REPO}.copy_to[0].prune_keep_daily`,
    message: /every keep value/,
  },
  {
    name: "typo in a keep key",
    config: cfg("prune_keep_daily = 7", "prune_keep_dayly = 7"),
    where: `host.toml: ${REPO}.prune_keep_dayly`,
    message: /unknown key "prune_keep_dayly" \(did you mean "prune_keep_daily"\?\)/,
  },
  {
    name: "typo in a job key",
    config: cfg("exclude_paths", "exlude_paths"),
    where: `host.toml: ${JOB}.exlude_paths`,
    message: /did you mean "exclude_paths"/,
  },
  {
    name: "typo in a category",
    config: GOOD_CONFIG.replaceAll("logical_volume_nonroot", "logical_volume_nonrot"),
    where: "host.toml: logical_volume_nonrot",
    message: /did you mean "logical_volume_nonroot"/,
  },
  // Values that must never reach a shell.
  {
    name: "newline in a value",
    config: cfg('backup_source_path = "/data"', 'backup_source_path = "/data\\nrm -rf /"'),
    where: `host.toml: ${JOB}.backup_source_path`,
    message: /NUL, newline or carriage return/,
  },
  {
    name: "NUL in a value",
    config: cfg('password_file = "/etc/rlvm/pw"', 'password_file = "/etc/rlvm/pw\\u0000x"'),
    where: `host.toml: ${REPO}.password_file`,
    message: /NUL, newline or carriage return/,
  },
  // Job names.
  {
    name: "job name with a space",
    config: GOOD_CONFIG.replaceAll(`${JOB}`, 'logical_volume_nonroot."my data"'),
    where: 'host.toml: logical_volume_nonroot."my data"',
    message: /job name "my data" may use only/,
  },
  {
    name: "job name repeated across categories",
    config: `${GOOD_CONFIG}\n[standard_path.data]\nbackup_source_path = "/srv"\nrestic_repo = "/srv/backup/srv"\nrestic_password_file = "/etc/rlvm/pw"\n`,
    where: "host.toml: standard_path.data",
    message: /also used under logical_volume_nonroot; job names must be unique/,
  },
  {
    name: "legacy keys mixed with repositories",
    config: cfg("exclude_paths", 'restic_repo = "/srv/x"\nexclude_paths'),
    where: `host.toml: ${JOB}.restic_repo`,
    message: /cannot be combined with \[\[repositories\]\]/,
  },
  // The 0.10 volume format.
  {
    name: "unknown prune policy",
    config: vol('prune_policy = "local"', 'prune_policy = "locl"'),
    where: "host.toml: volume.root.repositories[0].prune_policy",
    message: /prune policy "locl", which is not defined \(did you mean "local"\?\)/,
  },
  {
    name: "lv_root volume without vg_name",
    config: vol('vg_name = "vg0"\n', ""),
    where: "host.toml: volume.root.vg_name",
    message: /missing required key for volume_type "lv_root"/,
  },
  {
    name: "standard_path volume with a snapshot size",
    config: vol(
      'volume_type = "lv_root"\nvg_name = "vg0"\nlv_name = "lv_root"\n',
      'volume_type = "standard_path"\n',
    ),
    where: "host.toml: volume.root.snapshot_size",
    message: /does not apply to a standard_path volume/,
  },
  {
    name: "all-zero prune policy",
    config: vol("keep_last = 7", "keep_last = 0\nkeep_daily = 0"),
    where: "host.toml: prune_policy.local.keep_last",
    message: /every keep value/,
  },
  {
    name: "volume_type typo",
    config: vol('"lv_root"', '"lv_rot"'),
    where: "host.toml: volume.root.volume_type",
    message: /expected one of "standard_path", "lv_root"/,
  },
  {
    name: "formats mixed in one file",
    config: GOOD_CONFIG + GOOD_VOLUME_CONFIG,
    where: "host.toml",
    message: /mixes the category format/,
  },
  {
    name: "broken TOML",
    config: cfg('vg_name = "vg0"', 'vg_name = "vg0'),
    where: "host.toml:3:",
    message: /invalid TOML/,
  },
  // The inventory.
  {
    name: "missing config file",
    inventory: inv('config = "host.toml"', 'config = "missing.toml"'),
    where: "missing.toml",
    message: /ResticLVM config does not exist/,
  },
  {
    name: "unknown inventory key",
    inventory: inv("address =", "adress ="),
    where: "inventory.toml: hosts.h1.adress",
    message: /unknown key "adress" \(did you mean "address"\?\)/,
  },
  {
    name: "cycle in group children",
    inventory: `${GOOD_INVENTORY}\n[groups.a]\nchildren = ["b"]\n[groups.b]\nchildren = ["a"]\n`,
    where: "inventory.toml: groups.a.children",
    message: /groups form a cycle: a → b → a/,
  },
  {
    name: "group naming an undefined host",
    inventory: `${GOOD_INVENTORY}\n[groups.web]\nhosts = ["h1", "h2"]\n`,
    where: "inventory.toml: groups.web.hosts[1]",
    message: /names host "h2", which is not defined \(did you mean "h1"\?\)/,
  },
  {
    name: "two unrelated groups disagree",
    inventory: `${GOOD_INVENTORY}\n[groups.a]\nhosts = ["h1"]\nvars = { user = "x" }\n[groups.b]\nhosts = ["h1"]\nvars = { user = "y" }\n`,
    where: "inventory.toml: hosts.h1",
    message: /groups "a" and "b" both set user for host "h1", to different values/,
  },
  {
    name: "port out of range",
    inventory: inv('address = "127.0.0.2"', 'address = "127.0.0.2"\nport = 70000'),
    where: "inventory.toml: hosts.h1.port",
    message: /<=65535|65535/,
  },
  {
    name: "unknown host key policy",
    inventory: inv('user = "rlvm"', 'user = "rlvm"\nhost_key_policy = "accept"'),
    where: "inventory.toml: defaults.host_key_policy",
    message: /expected "strict" or "accept-new"/,
  },
  {
    name: "run_timeout not a duration",
    inventory: inv('user = "rlvm"', 'user = "rlvm"\nrun_timeout = "6 hours"'),
    where: "inventory.toml: defaults.run_timeout",
    message: /expected a duration/,
  },
  {
    name: "relative restic_env_file",
    inventory: inv('user = "rlvm"', 'user = "rlvm"\nrestic_env_file = "restic.env"'),
    where: "inventory.toml: defaults.restic_env_file",
    message: /expected an absolute path/,
  },
  {
    name: "host without config",
    inventory: inv('config = "host.toml"\n', ""),
    where: "inventory.toml: hosts.h1",
    message: /has no ResticLVM config/,
  },
  {
    name: "address that looks like an option",
    inventory: inv('"127.0.0.2"', '"-oProxyCommand=x"'),
    where: "inventory.toml: hosts.h1.address",
    message: /expected a hostname or an IP address/,
  },
  // Options.
  {
    name: "limit that matches nothing",
    args: ["--limit", "h2"],
    where: "inventory.toml",
    message: /--limit: "h2" matches no host or group \(did you mean "h1"\?\)/,
  },
  {
    name: "unknown category",
    args: ["--category", "lv_rot"],
    where: "inventory.toml",
    message: /--category: unknown category "lv_rot" \(did you mean "lv_root"\?\)/,
  },
  {
    name: "unknown job name",
    args: ["--name", "dta"],
    where: "inventory.toml",
    message: /no selected host has a job "dta" \(did you mean "data"\?\)/,
  },
];

describe("bad input exits 2 naming the place and the problem", () => {
  let cleanup = () => {};
  afterEach(() => cleanup());

  it.each(cases)("$name", async (c) => {
    const tree = writeTree({
      "inventory.toml": c.inventory ?? GOOD_INVENTORY,
      "host.toml": c.config ?? GOOD_CONFIG,
    });
    cleanup = tree.cleanup;
    const command = c.args?.some((a) => a === "--category" || a === "--name") ? "plan" : "validate";
    const result = await runCli([command, "--inventory", "inventory.toml", ...(c.args ?? [])], {
      cwd: tree.dir,
    });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    const line = result.stderr.split("\n").find((l) => l.trimStart().startsWith(c.where));
    expect(line, `no line starting with "${c.where}" in:\n${result.stderr}`).toBeDefined();
    expect(result.stderr).toMatch(c.message);
    expect(result.stderr).not.toMatch(/\n\s+at /); // never a stack trace
  });

  it("lists every problem, not just the first", async () => {
    const config = cfg('vg_name = "vg0"', 'vg_name = "vg 0"')
      .replace("prune_keep_daily = 7", "prune_keep_dayly = 7")
      .replace('["/data/cache"]', '["/etc"]');
    const tree = writeTree({ "inventory.toml": GOOD_INVENTORY, "host.toml": config });
    cleanup = tree.cleanup;
    const result = await runCli(["validate", "--inventory", "inventory.toml"], { cwd: tree.dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/3 problems/);
    expect(result.stderr).toMatch(/vg_name/);
    expect(result.stderr).toMatch(/prune_keep_dayly/);
    expect(result.stderr).toMatch(/exclude_paths\[0\]/);
  });

  it("install-agent refuses a host that logs in as root, before anything connects", async () => {
    const tree = writeTree({
      "inventory.toml": GOOD_INVENTORY.replace('user = "rlvm"', 'user = "root"'),
      "host.toml": GOOD_CONFIG,
    });
    cleanup = tree.cleanup;
    const result = await runCli(["install-agent", "-i", "inventory.toml", "--no-color"], { cwd: tree.dir });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(
      /install-agent: host \S+ logs in as "root"; the sudo rule it writes is for a login user other than root/,
    );
    expect(result.stderr).toMatch(/--root-login logs in as root for the install itself/);
    expect(result.stderr).not.toMatch(/connecting/);
  });

  it("the sample config is valid, so every case above fails for its own reason", async () => {
    const tree = writeTree({
      "inventory.toml": GOOD_INVENTORY,
      "host.toml": GOOD_CONFIG,
      "vol.toml": GOOD_VOLUME_CONFIG,
    });
    cleanup = tree.cleanup;
    expect((await runCli(["validate", "-i", "inventory.toml"], { cwd: tree.dir })).code).toBe(0);
    const volume = writeTree({ "inventory.toml": GOOD_INVENTORY, "host.toml": GOOD_VOLUME_CONFIG });
    try {
      expect((await runCli(["validate", "-i", "inventory.toml"], { cwd: volume.dir })).code).toBe(0);
    } finally {
      volume.cleanup();
    }
  });
});
