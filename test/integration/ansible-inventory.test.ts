// A backup from an Ansible YAML inventory, read by the real ansible-inventory, over real sshd and restic.
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { runJson } from "../helpers/run-cli.js";
import { describeIntegration } from "./harness/describe-integration.js";
import { startFleet, type Fleet } from "./harness/fleet.js";
import { resticInit, writePasswordFile, standardPathConfig } from "./helpers/test-fleet.js";

const HOSTS = ["ans1", "ans2"];

describeIntegration("backup from an Ansible inventory, over real sshd", () => {
  let fleet: Fleet;
  let dir: string;
  let repo: string;
  let passwordFile: string;

  beforeAll(async () => {
    fleet = await startFleet({ hosts: HOSTS });
    dir = mkdtempSync(join(fleet.dir, "ansible-"));
    chmodSync(dir, 0o755);
    passwordFile = writePasswordFile(join(dir, "restic-password"), "ansible inventory test");
    repo = resticInit(join(dir, "repo"), passwordFile);
    mkdirSync(join(dir, "configs"));
    for (const host of HOSTS) {
      const source = join(dir, `src-${host}`);
      mkdirSync(source);
      writeFileSync(join(source, "notes.txt"), `data of ${host}\n`);
      writeFileSync(
        join(dir, "configs", `${host}.toml`),
        standardPathConfig({ source: source, repo: repo, passwordFile: passwordFile }),
      );
    }
  }, 120_000);

  afterAll(async () => {
    await fleet?.stop();
  });

  it("backs up every host of a YAML inventory (exit 0, a snapshot per host)", async () => {
    const hostLines = HOSTS.map((name) => {
      const host = fleet.host(name);
      return `        ${name}: { ansible_host: ${JSON.stringify(host.address)}, ansible_port: ${host.port} }`;
    });
    const inventory = join(dir, "hosts.yml");
    writeFileSync(
      inventory,
      `all:
  vars:
    ansible_user: ${JSON.stringify(fleet.loginUser)}
    ansible_become: ${fleet.mode === "root" ? "true" : "false"}
    ansible_ssh_private_key_file: ${JSON.stringify(fleet.clientKey.privateKeyPath)}
    ansible_ssh_common_args: "-o ControlMaster=auto -o ControlPersist=60s"
    ansible_python_interpreter: /usr/bin/python3
    rlvm_known_hosts: ${JSON.stringify(fleet.knownHostsFile)}
    rlvm_config: "configs/{host}.toml"
    rlvm_connect_retries: 0
  children:
    backup_fleet:
      hosts:
${hostLines.join("\n")}
`,
    );
    const run = await runJson("backup", inventory, "--limit", "backup_fleet");
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.report.summary).toMatchObject({ hosts: 2, ok: 2 });
    const snapshots = JSON.parse(
      execFileSync(
        "restic",
        ["-r", repo, "--password-file", passwordFile, "snapshots", "--json", "--no-lock"],
        {
          encoding: "utf8",
        },
      ),
    ) as { hostname: string; paths: string[] }[];
    for (const host of HOSTS) {
      const mine = snapshots.filter((snap) => snap.hostname === host);
      expect(mine, host).toHaveLength(1);
      expect(mine[0]?.paths).toEqual([join(dir, `src-${host}`)]);
    }
  });
});
