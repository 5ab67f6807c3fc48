// The least-privilege mode end to end: install-agent over real sshd (as root, --root-login), then a
// login user whose only sudo rule is the installed agent's backs up with agent = "installed". It cannot
// get a root shell through sudo, a tampered agent is refused before it runs, and the agent keeps to the
// host's repository allow-list.
import { execFileSync } from "node:child_process";
import {
  appendFileSync,
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { allowListPath, INSTALLED_AGENT, sudoersDropIn } from "../../src/agent/installed-agent.js";
import { runCli, runJson } from "../helpers/run-cli.js";
import { describeOrSkip } from "../helpers/skip-or-fail.js";
import { describeIntegration } from "./harness/describe-integration.js";
import { needsRoot } from "./harness/prerequisites.js";
import { RESTRICTED_USER, startFleet, type Fleet } from "./harness/fleet.js";
import {
  leftoverRunDirs,
  makeDir,
  resticInit,
  writeInventory,
  writePasswordFile,
} from "./helpers/test-fleet.js";

const HOSTS = ["lp1", "lp2"];

describeIntegration('least-privilege mode: install-agent and agent = "installed" over real sshd', () => {
  describeOrSkip("integration", "with real sudo and a restricted login user", needsRoot(), body);
});

function body(): void {
  let fleet: Fleet;
  let dir: string;
  let password: string;
  let repoA: string;
  let repoB: string;
  let config: string;

  const removeInstalled = () => {
    for (const file of [INSTALLED_AGENT, sudoersDropIn(RESTRICTED_USER), ...HOSTS.map(allowListPath)])
      rmSync(file, { force: true });
  };

  beforeAll(async () => {
    fleet = await startFleet({ hosts: HOSTS });
    removeInstalled();
    dir = mkdtempSync(join(fleet.dir, "installed-"));
    chmodSync(dir, 0o755);
    password = writePasswordFile(join(dir, "restic-password"), "correct horse battery staple");
    repoA = resticInit(join(dir, "repo-a"), password);
    repoB = resticInit(join(dir, "repo-b"), password);
    const data = makeDir(join(dir, "data"));
    writeFileSync(join(data, "file.txt"), "hello from the least-privilege mode\n");
    config = writeConfig("host.toml", [repoA, repoB]);
  }, 120_000);

  afterAll(async () => {
    removeInstalled();
    await fleet?.stop();
  });

  afterEach(() => {
    expect(leftoverRunDirs(fleet)).toEqual([]);
  });

  function writeConfig(name: string, repos: string[]): string {
    const file = join(dir, name);
    const repositories = repos
      .map(
        (repo) => `[[standard_path.data.repositories]]
repo_path = ${JSON.stringify(repo)}
password_file = ${JSON.stringify(password)}
prune_keep_last = 3
`,
      )
      .join("\n");
    writeFileSync(
      file,
      `[standard_path.data]
backup_source_path = ${JSON.stringify(join(dir, "data"))}
exclude_paths = []

${repositories}`,
    );
    return file;
  }

  const inventory = (name: string, settings: Record<string, string> = {}) =>
    writeInventory(fleet, join(dir, name), {
      defaults: { user: RESTRICTED_USER, become: "sudo", agent: "installed", config, ...settings },
    });

  const snapshotCount = (repo: string) =>
    (
      JSON.parse(
        execFileSync("restic", ["snapshots", "--json", "--repo", repo, "--password-file", password], {
          encoding: "utf8",
        }),
      ) as unknown[]
    ).length;

  const sudoAs = (command: string) => fleet.sshExec("lp1", RESTRICTED_USER, command);

  it("the restricted user has no sudo rule before the rollout: a run says to install the agent", async () => {
    expect((await sudoAs("sudo -n true")).code).not.toBe(0);
    const run = await runJson("backup", inventory("before.toml"));
    expect(run.code, run.stdout + run.stderr).toBe(1);
    for (const host of run.report.hosts) {
      expect(host.status).toBe("failed");
      expect(host.error).toMatchObject({ code: "agent_not_installed" });
      expect(host.error?.message).toContain(`${INSTALLED_AGENT} is missing`);
      expect(host.error?.hint).toContain("rlvm-fleet install-agent");
    }
    expect(snapshotCount(repoA)).toBe(0);
  });

  it("install-agent --dry-run says what it would write, checks the rule with visudo, and writes nothing", async () => {
    const run = await runJson("install-agent", inventory("dry.toml"), "--root-login", "--dry-run");
    expect(run.code, run.stdout + run.stderr).toBe(0);
    for (const host of run.report.hosts) {
      expect(host.status).toBe("ok");
      const details = Object.fromEntries(host.checks.map((c) => [c.name, c.detail]));
      expect(details["install:agent"]).toMatch(`would install ${INSTALLED_AGENT} (sha256 `);
      expect(details["install:allow_list"]).toBe(`would write ${allowListPath(host.name)}: 2 repositories`);
      expect(details["install:sudoers"]).toBe(
        `would write ${sudoersDropIn(RESTRICTED_USER)}: ${RESTRICTED_USER} ALL=(root) NOPASSWD: ${INSTALLED_AGENT} installed * (visudo -c: ok)`,
      );
    }
    expect(existsSync(INSTALLED_AGENT)).toBe(false);
    expect(existsSync(sudoersDropIn(RESTRICTED_USER))).toBe(false);
    expect(HOSTS.map((h) => existsSync(allowListPath(h)))).toEqual([false, false]);
  });

  it("installs with --root-login; then the user backs up through the installed agent but gets no root shell", async () => {
    const install = await runCli(["install-agent", "--inventory", inventory("install.toml"), "--root-login"]);
    expect(install.code, install.stdout + install.stderr).toBe(0);
    expect(install.stdout).toMatch(/✓ install:sudoers: /);
    expect(install.stdout).toMatch(/RECAP install-agent 2 hosts: ok=2/);

    const agent = statSync(INSTALLED_AGENT);
    expect([agent.uid, agent.mode & 0o7777]).toEqual([0, 0o755]);
    expect(readFileSync(sudoersDropIn(RESTRICTED_USER), "utf8")).toContain(
      `\n${RESTRICTED_USER} ALL=(root) NOPASSWD: ${INSTALLED_AGENT} installed *\n`,
    );
    expect(statSync(sudoersDropIn(RESTRICTED_USER)).mode & 0o7777).toBe(0o440);
    const list = readFileSync(allowListPath("lp1"), "utf8");
    expect(list.split("\n").filter((l) => /^[0-9a-f]{64} /.test(l))).toHaveLength(2);
    expect(list).not.toContain("correct horse");

    // The rule allows exactly the agent's entry: no shell, no other program, not even the agent on a directory.
    for (const command of [
      "sudo -n bash -c id",
      "sudo -n /bin/sh -c id",
      "sudo -n true",
      `sudo -n ${INSTALLED_AGENT} /tmp`,
    ]) {
      const refused = await sudoAs(command);
      expect(refused.code, `${command}: ${refused.stdout}`).not.toBe(0);
      expect(refused.stdout).not.toMatch(/uid=0/);
    }
    const listed = await sudoAs("sudo -n -l");
    expect(listed.stdout).toContain(`${INSTALLED_AGENT} installed *`);
    expect(listed.stdout).not.toMatch(/\(root\) NOPASSWD: ALL|\(ALL\) ALL/);

    const backup = await runJson("backup", inventory("backup.toml"));
    expect(backup.code, backup.stdout + backup.stderr).toBe(0);
    for (const host of backup.report.hosts) {
      expect(host.status).toBe("ok");
      expect(host.facts?.user).toBe("root");
      expect(host.jobs[0]?.repos.map((r) => r.status)).toEqual(["ok", "ok"]);
    }
    expect(snapshotCount(repoA)).toBe(2);
    expect(snapshotCount(repoB)).toBe(2);
    // check and status run through the installed agent too; this user has no other sudo rule.
    const check = await runJson("check", inventory("backup.toml"));
    expect(check.code, check.stdout + check.stderr).toBe(0);
    for (const host of check.report.hosts)
      expect(host.warnings.map((w) => w.code)).not.toContain("sudo_broad");
  });

  it("refuses a repository the host's allow-list does not name, before restic opens it", async () => {
    const repoC = resticInit(join(dir, "repo-c"), password);
    const other = writeConfig("other.toml", [repoA, repoC]);
    const run = await runJson("backup", inventory("other-inv.toml", { config: other }), "--limit", "lp1");
    expect(run.code, run.stdout + run.stderr).toBe(1);
    expect(run.host("lp1")?.error).toMatchObject({ code: "repository_not_allowed" });
    expect(run.host("lp1")?.error?.message).toContain(
      `is not in this host's allow-list ${allowListPath("lp1")}`,
    );
    expect(run.host("lp1")?.error?.hint).toContain("install-agent");
    expect(snapshotCount(repoC)).toBe(0);
    expect(snapshotCount(repoA)).toBe(2);
  });

  it("refuses a tampered or unsafe installed agent before it runs, until install-agent puts it back", async () => {
    const inv = inventory("tamper.toml");
    const before = snapshotCount(repoA);
    appendFileSync(INSTALLED_AGENT, "\n# tampered\n");
    const tampered = await runJson("backup", inv, "--limit", "lp1");
    expect(tampered.code).toBe(1);
    expect(tampered.host("lp1")?.error).toMatchObject({ code: "agent_not_installed" });
    expect(tampered.host("lp1")?.error?.message).toMatch(
      /is not this controller's \(sha256 [0-9a-f]{64}, expected [0-9a-f]{64}\); it was not run/,
    );
    expect(tampered.host("lp1")?.facts).toBeNull();
    expect(snapshotCount(repoA)).toBe(before);

    const reinstall = await runJson("install-agent", inv, "--root-login", "--limit", "lp1");
    expect(reinstall.code, reinstall.stdout + reinstall.stderr).toBe(0);
    chmodSync(INSTALLED_AGENT, 0o775);
    const writable = await runJson("backup", inv, "--limit", "lp1");
    expect(writable.host("lp1")?.error?.message).toBe(
      `${INSTALLED_AGENT} has mode 775: group or others may write to it; the installed agent is not run`,
    );
    chmodSync(INSTALLED_AGENT, 0o755);
    const again = await runJson("backup", inv, "--limit", "lp1");
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(snapshotCount(repoA)).toBe(before + 1);
  });

  it("with become_password_file: the rule asks for the password, and the installed agent runs once sudo has it", async () => {
    const user = fleet.passwordUser as string;
    const passwordFile = writePasswordFile(join(dir, "sudo-password"), fleet.sudoPassword as string);
    const inv = inventory("password.toml", { user, become_password_file: passwordFile });
    try {
      // Through the user's broad rule (with its password), as a rollout would.
      const install = await runJson("install-agent", inv, "--limit", "lp1");
      expect(install.code, install.stdout + install.stderr).toBe(0);
      expect(readFileSync(sudoersDropIn(user), "utf8")).toContain(
        `\n${user} ALL=(root) ${INSTALLED_AGENT} installed *\n`,
      );
      const before = snapshotCount(repoA);
      const backup = await runJson("backup", inv, "--limit", "lp1");
      expect(backup.code, backup.stdout + backup.stderr).toBe(0);
      expect(backup.host("lp1")?.facts?.user).toBe("root");
      expect(snapshotCount(repoA)).toBe(before + 1);
      // The broad rule is still there: check says so, and the host stays ok.
      const check = await runJson("check", inv, "--limit", "lp1");
      expect(check.code, check.stdout + check.stderr).toBe(0);
      const host = check.host("lp1");
      expect(host?.status).toBe("ok");
      const broad = host?.warnings.find((w) => w.code === "sudo_broad");
      // The harness gives this user `ALL=(root) ALL` (with its password).
      expect(broad?.message).toMatch(new RegExp(`^${user} may also run through sudo: \\(root\\) ALL; `));
      expect(broad?.message).not.toContain(`${INSTALLED_AGENT} installed`);
    } finally {
      rmSync(sudoersDropIn(user), { force: true });
    }
  });

  it("the installed agent does not install: its own rule cannot widen itself or the allow-list", async () => {
    // As the restricted user, through its one rule, with a hand-written install plan.
    const plan = [
      "plan 2",
      "run_id r1",
      "host lp1",
      "command install",
      `install ${RESTRICTED_USER} nopasswd`,
      "allow_any_repository",
      "end",
    ];
    const run = await fleet.sshExec("lp1", RESTRICTED_USER, `sudo -n ${INSTALLED_AGENT} installed r1 lp1`, {
      input: `RLVM-FLEET-AGENT r1\n${plan.join("\n")}\n`,
    });
    expect(run.stdout).toMatch(
      /"event":"result","code":"agent_unsupported","message":"the installed agent does not install/,
    );
    expect(readFileSync(allowListPath("lp1"), "utf8")).not.toMatch(/^any$/m);
  });
}
