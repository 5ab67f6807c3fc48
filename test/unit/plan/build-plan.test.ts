// [repositories.NAME] in the inventory: which hosts' jobs use each declared repository, and the mistakes
// refused with their path.
import { afterEach, describe, expect, it } from "vitest";
import { UsageError } from "../../../src/errors.js";
import { loadInventory } from "../../../src/inventory/load-inventory.js";
import { buildPlan } from "../../../src/plan/build-plan.js";
import { runCli, writeTree } from "../../helpers/run-cli.js";

let cleanup = () => {};
afterEach(() => cleanup());

const OFFSITE = "rest:https://fleet:s3cret@vault.example.com/fleet/";

const CONFIG = `[standard_path.data]
backup_source_path = "/data"

[[standard_path.data.repositories]]
repo_path = "/srv/backup/local"
password_file = "/etc/restic/pw"
prune_keep_last = 3

[[standard_path.data.repositories.copy_to]]
repo = "${OFFSITE}"
password_file = "/etc/restic/pw"
prune_keep_daily = 7
`;

/** Hosts web1 and web2 use host.toml; vault has no config of its own (set per host below). */
const HOSTS = `[hosts.web1]\nconfig = "host.toml"\n[hosts.web2]\nconfig = "host.toml"\n[hosts.vault]\n`;

function inventoryWith(repositories: string, hosts = HOSTS) {
  const written = writeTree({ "inventory.toml": `${hosts}\n${repositories}`, "host.toml": CONFIG });
  cleanup = written.cleanup;
  return `${written.dir}/inventory.toml`;
}

function problemsOf(run: () => unknown) {
  try {
    run();
  } catch (error) {
    if (error instanceof UsageError) return error.problems.map((p) => `${p.path}: ${p.message}`);
    throw error;
  }
  throw new Error("expected a UsageError");
}

describe("buildPlan with [repositories]", () => {
  it("gives each declared repository its maintainer and every planned job that writes to it", () => {
    const file = inventoryWith(`[repositories.offsite]
url = "rest:https://fleet:s3cret@vault.example.com/fleet"
maintenance_host = "vault"
maintenance_url = "rest:https://admin:other@vault.example.com:8443/fleet/"
password_file = "/etc/rlvm-fleet/offsite.pw"
env_file = "/etc/rlvm-fleet/offsite.env"
`);
    const plan = buildPlan(file);
    // The maintenance host has no config: it is never planned to back up.
    expect(plan.hosts.map((h) => h.host.name)).toEqual(["web1", "web2"]);
    expect(plan.repositories).toHaveLength(1);
    const [offsite] = plan.repositories ?? [];
    expect(offsite?.maintainer.name).toBe("vault");
    expect(offsite?.declaration).toMatchObject({
      name: "offsite",
      maintenance_url: "rest:https://admin:other@vault.example.com:8443/fleet/",
      password_file: "/etc/rlvm-fleet/offsite.pw",
      env_file: "/etc/rlvm-fleet/offsite.env",
    });
    // The trailing slash differs from the config's spelling: one repository all the same.
    // Each use with the keep values of that entry: the forget its maintenance host runs.
    const keep = { last: 0, daily: 7, weekly: 0, monthly: 0, yearly: 0 };
    expect(offsite?.uses).toEqual([
      { host: "web1", job: "data", copy: true, keep },
      { host: "web2", job: "data", copy: true, keep },
    ]);
    // --limit narrows the uses, not the declaration's validity.
    expect(buildPlan(file, { limit: "web2" }).repositories?.[0]?.uses).toEqual([
      { host: "web2", job: "data", copy: true, keep },
    ]);
    // Without maintenance_url the maintenance host uses url.
    const plain = inventoryWith(
      `[repositories.offsite]\nurl = "${OFFSITE}"\nmaintenance_host = "vault"\npassword_file = "/etc/pw"\n`,
    );
    expect(buildPlan(plain).repositories?.[0]?.declaration.maintenance_url).toBe(OFFSITE);
  });

  it("refuses a url that no config names, with the masked url and the path", () => {
    const file = inventoryWith(`[repositories.offsite]
url = "rest:https://fleet:s3cret@vault.example.com/flet/"
maintenance_host = "vault"
password_file = "/etc/pw"
`);
    const problems = problemsOf(() => buildPlan(file));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^repositories\.offsite\.url: repository "rest:https:\/\/fleet:\*+@vault/);
    expect(problems[0]).toContain("is not a repository or copy_to destination of any host's config");
    expect(problems[0]).toContain("did you mean");
    expect(problems.join("\n")).not.toContain("s3cret");
    // Checked against every host's config, not only the selected ones.
    const limited = inventoryWith(
      `[repositories.offsite]\nurl = "${OFFSITE}"\nmaintenance_host = "vault"\npassword_file = "/etc/pw"\n`,
      `[hosts.web1]\nconfig = "host.toml"\n[hosts.db1]\nconfig = "other.toml"\n[hosts.vault]\n`,
    );
    expect(() => buildPlan(limited, { limit: "vault" })).not.toThrow();
  });

  it("refuses an unknown maintenance host, a repository declared twice, and a host without config that maintains nothing", () => {
    const file = inventoryWith(`[repositories.offsite]
url = "${OFFSITE}"
maintenance_host = "vualt"
password_file = "/etc/pw"

[repositories.again]
url = "${OFFSITE.replace(/\/$/, "")}"
maintenance_host = "web1"
password_file = "relative/pw"
`);
    const result = loadInventory(file);
    expect(result.ok).toBe(false);
    const problems = result.ok ? [] : result.problems.map((p) => `${p.path}: ${p.message}`);
    expect(problems).toEqual([
      'repositories.again.password_file: expected an absolute path (starting with "/"), got "relative/pw"',
    ]);
    const fixed = inventoryWith(
      `[repositories.offsite]
url = "${OFFSITE}"
maintenance_host = "vualt"
password_file = "/etc/pw"

[repositories.again]
url = "${OFFSITE.replace(/\/$/, "")}"
maintenance_host = "web1"
password_file = "/etc/pw"
`,
      `[hosts.web1]\nconfig = "host.toml"\n[hosts.vault]\nconfig = "host.toml"\n`,
    );
    const second = loadInventory(fixed);
    const texts = second.ok ? [] : second.problems.map((p) => `${p.path}: ${p.message}`);
    expect(texts).toEqual([
      'repositories.offsite.maintenance_host: maintenance_host "vualt" is not a host of the inventory (did you mean "vault"?)',
      'repositories.again.url: repository "rest:https://fleet:***@vault.example.com/fleet" is already declared in [repositories.offsite]',
    ]);
    // Only a maintenance host may go without a config.
    const orphan = loadInventory(
      inventoryWith(
        `[repositories.offsite]\nurl = "${OFFSITE}"\nmaintenance_host = "web1"\npassword_file = "/etc/pw"\n`,
      ),
    );
    expect(orphan.ok ? [] : orphan.problems.map((p) => `${p.path}: ${p.message}`)).toEqual([
      'hosts.vault: host "vault" has no ResticLVM config',
    ]);
  });

  it("validate and plan show each declared repository, masked, and exit 2 on a mistake", async () => {
    const declaration = `[repositories.offsite]
url = "${OFFSITE}"
maintenance_host = "vault"
maintenance_url = "rest:https://admin:other@vault.example.com:8443/fleet/"
password_file = "/etc/pw"
`;
    const file = inventoryWith(declaration);
    const validate = await runCli(["validate", "--inventory", file]);
    expect(validate.code).toBe(0);
    expect(validate.stdout).toContain(
      "repository offsite (rest:https://fleet:***@vault.example.com/fleet/): maintained on vault via rest:https://admin:***@vault.example.com:8443/fleet/, for 2 jobs of 2 hosts",
    );
    const plan = await runCli(["plan", "--inventory", file]);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain("repository offsite (");
    const json = await runCli(["plan", "--inventory", file, "--format", "json"]);
    const document = JSON.parse(json.stdout) as { hosts: { name: string }[]; repositories: unknown[] };
    expect(document.hosts.map((h) => h.name)).toEqual(["web1", "web2"]);
    expect(document.repositories).toEqual([
      {
        name: "offsite",
        url: "rest:https://fleet:***@vault.example.com/fleet/",
        maintenance_host: "vault",
        maintenance_url: "rest:https://admin:***@vault.example.com:8443/fleet/",
        uses: [
          { host: "web1", job: "data", copy: true },
          { host: "web2", job: "data", copy: true },
        ],
      },
    ]);
    for (const output of [validate.stdout, plan.stdout, json.stdout]) {
      expect(output).not.toContain("s3cret");
      expect(output).not.toContain("other@");
    }
    const wrong = await runCli([
      "validate",
      "--inventory",
      inventoryWith(declaration.replace("/fleet/", "/flet/")),
    ]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain("repositories.offsite.url");
    expect(wrong.stderr).not.toMatch(/\n\s+at /);
  });

  it("refuses two repositories of one maintenance host with different env_file settings", () => {
    const config = CONFIG.replace("prune_keep_last = 3", "prune_keep_last = 3\n").replace(
      "[[standard_path.data.repositories.copy_to]]",
      `[[standard_path.data.repositories.copy_to]]
repo = "sftp:vault:/srv/other"
password_file = "/etc/restic/pw"

[[standard_path.data.repositories.copy_to]]`,
    );
    const written = writeTree({
      "inventory.toml": `${HOSTS}
[repositories.offsite]
url = "${OFFSITE}"
maintenance_host = "vault"
password_file = "/etc/pw"
env_file = "/etc/a.env"

[repositories.other]
url = "sftp:vault:/srv/other"
maintenance_host = "vault"
password_file = "/etc/pw"
`,
      "host.toml": config,
    });
    cleanup = written.cleanup;
    expect(problemsOf(() => buildPlan(`${written.dir}/inventory.toml`))).toEqual([
      "repositories.other.env_file: [repositories.offsite] and [repositories.other] are both maintained on vault with different env_file settings",
    ]);
  });
});
