import { homedir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadInventory } from "../../../src/inventory/load-inventory.js";
import { writeTree } from "../../helpers/run-cli.js";

let cleanup = () => {};
afterEach(() => cleanup());

function load(inventory: string) {
  const tree = writeTree({ "inv/inventory.toml": inventory });
  cleanup = tree.cleanup;
  const result = loadInventory(join(tree.dir, "inv/inventory.toml"));
  return { dir: tree.dir, result };
}

describe("loadInventory", () => {
  it("applies defaults < group vars < host, a child group over its parent", () => {
    const { result } = load(`
[defaults]
user = "d"
port = 2200
connect_timeout = 5
config = "configs/{host}.toml"

[groups.eu]
children = ["web"]
vars = { user = "eu", port = 2201, keepalive_interval = 30 }

[groups.web]
hosts = ["web1", "web2"]
vars = { user = "web" }

[hosts.web1]
[hosts.web2]
user = "own"
[hosts.db1]
address = "10.0.0.5"
`);
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    const [web1, web2, db1] = result.inventory.hosts;
    expect(web1).toMatchObject({
      name: "web1",
      address: "web1",
      user: "web",
      port: 2201,
      keepalive_interval_s: 30,
      connect_timeout_s: 5,
      groups: ["eu", "web"],
    });
    expect(web2?.user).toBe("own");
    expect(db1).toMatchObject({
      address: "10.0.0.5",
      user: "d",
      port: 2200,
      keepalive_interval_s: 15,
      groups: [],
    });
  });

  it("resolves local paths against the inventory, expands ~ and {host}", () => {
    const { dir, result } = load(`
[defaults]
config = "configs/{host}.toml"
identity_file = "~/.ssh/id_fleet"
known_hosts = "/etc/ssh/ssh_known_hosts"
become_password_file = "secrets/sudo"
restic_env_file = "/etc/rlvm-fleet/restic.env"
[hosts.h1]
`);
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    expect(result.inventory.hosts[0]).toMatchObject({
      config: join(dir, "inv/configs/h1.toml"),
      identity_file: join(homedir(), ".ssh/id_fleet"),
      known_hosts: "/etc/ssh/ssh_known_hosts",
      become_password_file: join(dir, "inv/secrets/sudo"),
      restic_env_file: "/etc/rlvm-fleet/restic.env",
      verify_sample: 0,
    });
  });

  it("has the documented defaults", () => {
    const { result } = load(`[defaults]\nconfig = "c.toml"\n[hosts.h1]\n`);
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    expect(result.inventory.hosts[0]).toMatchObject({
      port: 22,
      known_hosts: join(homedir(), ".ssh/known_hosts"),
      host_key_policy: "strict",
      become: "sudo",
      connect_timeout_s: 15,
      connect_retries: 2,
      keepalive_interval_s: 15,
      run_timeout_s: 6 * 3600,
      identity_file: null,
      restic_env_file: null,
      verify_sample: 0,
    });
  });

  it("refuses legacy host-key algorithms unless a host opts in with legacy_host_key_algorithms", () => {
    const { result } = load(
      `[defaults]\nconfig = "c.toml"\n[hosts.h1]\n[hosts.h2]\nlegacy_host_key_algorithms = true\n`,
    );
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    expect(result.inventory.hosts.map((h) => h.legacy_host_key_algorithms)).toEqual([false, true]);
    const bad = load(`[defaults]\nconfig = "c.toml"\nlegacy_host_key_algorithms = "yes"\n[hosts.h1]\n`);
    expect(bad.result.ok).toBe(false);
    if (!bad.result.ok) expect(JSON.stringify(bad.result.problems)).toMatch(/expected true or false/);
  });

  it('uploads the agent unless a host says agent = "installed"; anything else is refused at its path', () => {
    const { result } = load(`[defaults]\nconfig = "c.toml"\n[hosts.h1]\n[hosts.h2]\nagent = "installed"\n`);
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    expect(result.inventory.hosts.map((h) => h.agent)).toEqual(["upload", "installed"]);
    const bad = load(`[defaults]\nconfig = "c.toml"\n[hosts.h1]\nagent = "preinstalled"\n`);
    expect(bad.result.ok).toBe(false);
    if (!bad.result.ok)
      expect(bad.result.problems).toEqual([
        expect.objectContaining({
          path: "hosts.h1.agent",
          message: expect.stringMatching(/expected "upload" or "installed"/),
        }),
      ]);
  });

  it("takes verify_sample from defaults, group vars or the host (0 unless set); out of range is refused at its path", () => {
    const { result } = load(
      `[defaults]\nconfig = "c.toml"\n[groups.db]\nhosts = ["h2"]\nvars = { verify_sample = 5 }\n[hosts.h1]\n[hosts.h2]\n[hosts.h3]\nverify_sample = 1000\n`,
    );
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    expect(result.inventory.hosts.map((h) => h.verify_sample)).toEqual([0, 5, 1000]);
    for (const [value, message] of [
      ["1001", /expected at most 1000 files/],
      ["2.5", /expected a whole number/],
      ["-1", /too small/i],
      ['"5"', /expected a number/],
    ] as const) {
      const bad = load(`[defaults]\nconfig = "c.toml"\n[hosts.h1]\nverify_sample = ${value}\n`);
      expect(bad.result.ok, value).toBe(false);
      if (!bad.result.ok)
        expect(bad.result.problems, value).toEqual([
          expect.objectContaining({
            path: "hosts.h1.verify_sample",
            message: expect.stringMatching(message),
          }),
        ]);
    }
  });

  it("accepts two unrelated groups that agree, and a host in no group", () => {
    const { result } = load(`
[defaults]
config = "c.toml"
[groups.a]
hosts = ["h1"]
vars = { user = "same" }
[groups.b]
hosts = ["h1"]
vars = { user = "same" }
[hosts.h1]
[hosts.lonely]
`);
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    expect(result.inventory.hosts.map((h) => [h.name, h.user])).toEqual([
      ["h1", "same"],
      ["lonely", expect.any(String)],
    ]);
  });

  it("lets the host settle a conflict between unrelated groups", () => {
    const { result } = load(`
[defaults]
config = "c.toml"
[groups.a]
hosts = ["h1"]
vars = { port = 1 }
[groups.b]
hosts = ["h1"]
vars = { port = 2 }
[hosts.h1]
port = 3
`);
    expect(result.ok && result.inventory.hosts[0]?.port).toBe(3);
  });

  it("refuses a group named all or ungrouped, and a name used for a host and a group", () => {
    const { result } = load(`
[defaults]
config = "c.toml"
[groups.all]
hosts = ["h1"]
[groups.ungrouped]
[groups.h1]
[hosts.h1]
`);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.map((p) => p.message)).toEqual([
      '"h1" is both a host and a group, which makes --limit ambiguous',
      'the group "all" is implicit and cannot be defined (as in Ansible)',
      'the group "ungrouped" is implicit and cannot be defined (as in Ansible)',
    ]);
  });
});
