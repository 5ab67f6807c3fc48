// ssh_config end to end: an inventory of bare aliases reaches real sshd hosts through what OpenSSH's
// own resolver (ssh -G) makes of a config with Host wildcards, Match, Include and IdentityFile.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { runCli, runJson } from "../helpers/run-cli.js";
import { describeIntegration } from "./harness/describe-integration.js";
import { standardPathConfig } from "./helpers/test-fleet.js";
import { startFleet, type Fleet } from "./harness/fleet.js";

const HOSTS = ["sshc1", "sshc2", "sshc3"];

describeIntegration("ssh_config resolved by ssh -G, over real sshd", () => {
  let fleet: Fleet;
  let dir: string;
  let inventory: string;
  let sshConfig: string;

  beforeAll(async () => {
    fleet = await startFleet({ hosts: HOSTS });
    dir = mkdtempSync(join(fleet.dir, "ssh-config-"));
    chmodSync(dir, 0o755);
    writeFileSync(
      join(dir, "host.toml"),
      standardPathConfig({ source: dir, repo: join(dir, "repo"), passwordFile: join(dir, "password") }),
    );
    const [h1, h2, h3] = HOSTS.map((name) => fleet.host(name));
    if (h1 === undefined || h2 === undefined || h3 === undefined) throw new Error("fleet without its hosts");
    // sshc1 and sshc2 come from an included file; sshc3 from a Match block; the rest from a wildcard.
    mkdirSync(join(dir, "conf.d"));
    writeFileSync(
      join(dir, "conf.d/hosts.conf"),
      `Host sshc1\n  HostName ${h1.address}\n  Port ${h1.port}\nHost sshc2\n  HostName ${h2.address}\n  Port ${h2.port}\n`,
    );
    sshConfig = join(dir, "ssh_config");
    writeFileSync(
      sshConfig,
      `Include ${dir}/conf.d/*.conf
Match originalhost sshc3
  HostName ${h3.address}
  Port ${h3.port}
Host sshc*
  User ${fleet.loginUser}
  IdentityFile ${dir}/no-such-key-%r
  IdentityFile ${fleet.clientKey.privateKeyPath}
  UserKnownHostsFile ${dir}/known_hosts_first ${fleet.knownHostsFile}
  StrictHostKeyChecking yes
  ConnectTimeout 10
  Port 1
`,
    );
    inventory = join(dir, "inventory.toml");
    writeFileSync(
      inventory,
      [
        "[defaults]",
        'ssh_config = "ssh_config"',
        'config = "host.toml"',
        `become = ${JSON.stringify(fleet.mode === "root" ? "sudo" : "none")}`,
        "connect_retries = 0",
        ...HOSTS.map((name) => `[hosts.${name}]`),
        "",
      ].join("\n"),
    );
  }, 120_000);

  afterAll(async () => {
    await fleet?.stop();
  });

  it("pings a fleet whose inventory names only aliases", async () => {
    const run = await runJson("ping", inventory);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.report.summary).toMatchObject({ hosts: 3, ok: 3, failed: 0, unreachable: 0 });
    for (const name of HOSTS) expect(run.host(name)?.status).toBe("ok");
  });

  it("validate --verbose says each address, port and key came from that ssh_config", async () => {
    const run = await runCli(["validate", "--inventory", inventory, "--verbose", "--limit", "sshc3"]);
    expect(run.code, run.stderr).toBe(0);
    const h3 = fleet.host("sshc3");
    expect(run.stdout).toMatch(new RegExp(`address +${h3.address.replaceAll(".", "\\.")} +\\(ssh_config `));
    expect(run.stdout).toMatch(new RegExp(`port +${h3.port} +\\(ssh_config `));
    expect(run.stdout).toMatch(/identity_file +\S+ +\(ssh_config /);
    expect(run.stdout).toMatch(/connect_timeout +10 s +\(ssh_config /);
    expect(run.stdout).toMatch(/user +\S+ +\(ssh_config /);
  });

  it("follows a ProxyJump naming another host of the inventory (its login shows in that sshd's log)", async () => {
    const withJump = join(dir, "ssh_config_jump");
    // At the end: before the Include it would make that Include part of its Host block.
    writeFileSync(withJump, readFileSync(sshConfig, "utf8") + `Host sshc1\n  ProxyJump sshc2\n`);
    const file = join(dir, "inventory-jump.toml");
    writeFileSync(
      file,
      readFileSync(inventory, "utf8").replace('ssh_config = "ssh_config"', 'ssh_config = "ssh_config_jump"'),
    );
    const bastionLog = fleet.host("sshc2").logFile;
    const before = readFileSync(bastionLog, "utf8").length;
    const run = await runJson("ping", file, "--limit", "sshc1");
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.host("sshc1")?.status).toBe("ok");
    const logins =
      readFileSync(bastionLog, "utf8")
        .slice(before)
        .match(/Accepted publickey/g) ?? [];
    expect(logins).toHaveLength(1);
    const shown = await runCli(["validate", "--inventory", file, "--verbose", "--limit", "sshc1"]);
    expect(shown.stdout).toMatch(/proxy_jump +sshc2 \(\S+\) +\(ssh_config /);
  });

  it("refuses the same file with a ProxyCommand, naming it (exit 2, nothing ran)", async () => {
    const withProxy = join(dir, "ssh_config_proxy");
    writeFileSync(withProxy, `Host sshc2\n  ProxyCommand nc %h %p\n` + readFileSync(sshConfig, "utf8"));
    const file = join(dir, "inventory-proxy.toml");
    writeFileSync(
      file,
      readFileSync(inventory, "utf8").replace('ssh_config = "ssh_config"', 'ssh_config = "ssh_config_proxy"'),
    );
    const run = await runCli(["ping", "--inventory", file, "--no-color"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('host "sshc2": ProxyCommand from ssh_config');
    expect(run.stderr).not.toContain("sshc1");
    expect(run.stdout).toBe("");
  });
});
