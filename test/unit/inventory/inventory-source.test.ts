// Ansible sources through the real ansible-inventory, and an inventory script: the same fleet as
// TOML, YAML, INI and a script must give the same plan.
import { chmodSync, cpSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { detectInventoryFormat } from "../../../src/inventory/inventory-source.js";
import { loadInventory } from "../../../src/inventory/load-inventory.js";
import { runCli, writeTree } from "../../helpers/run-cli.js";

const ROOT = join(import.meta.dirname, "../../..");

const TOML = `[defaults]
user = "rlvm"
become = "sudo"
run_timeout = "4h"
config = "configs/{host}.toml"

[groups.db]
hosts = ["db1", "db2"]
vars = { user = "dbbackup", identity_file = "keys/db" }

[groups.eu]
children = ["db", "web"]
vars = { connect_timeout = 20 }

[groups.web]
hosts = ["web1", "web2"]
vars = { user = "webbackup", config = "configs/web.toml" }

[hosts.db1]
address = "192.0.2.21"

[hosts.db2]
address = "192.0.2.22"
config = "configs/db1.toml"

[hosts.web1]
address = "192.0.2.11"

[hosts.web2]
address = "192.0.2.12"
port = 2222
`;

const YAML = `all:
  vars:
    ansible_user: rlvm
    ansible_become: true
    ansible_python_interpreter: /usr/bin/python3
    rlvm_run_timeout: 4h
    rlvm_config: "configs/{host}.toml"
  children:
    eu:
      vars:
        rlvm_connect_timeout: 20
      children:
        db:
          vars:
            ansible_user: dbbackup
            ansible_ssh_private_key_file: keys/db
          hosts:
            db1: { ansible_host: 192.0.2.21 }
            db2: { ansible_host: 192.0.2.22, rlvm_config: configs/db1.toml }
        web:
          vars:
            ansible_user: webbackup
            rlvm_config: configs/web.toml
          hosts:
            web1: { ansible_host: 192.0.2.11 }
            web2: { ansible_host: 192.0.2.12, ansible_port: 2222 }
`;

const INI = `[all:vars]
ansible_user=rlvm
ansible_become=true
rlvm_run_timeout=4h
rlvm_config=configs/{host}.toml

[db]
db1 ansible_host=192.0.2.21
db2 ansible_host=192.0.2.22 rlvm_config=configs/db1.toml

[db:vars]
ansible_user=dbbackup
ansible_ssh_private_key_file=keys/db

[web]
web1 ansible_host=192.0.2.11
web2 ansible_host=192.0.2.12 ansible_port=2222

[web:vars]
ansible_user=webbackup
rlvm_config=configs/web.toml

[eu:children]
db
web

[eu:vars]
rlvm_connect_timeout=20
`;

// No _meta: the protocol then asks each host with --host NAME; group vars are merged here.
const LIST = {
  all: {
    vars: {
      ansible_user: "rlvm",
      ansible_become: true,
      rlvm_run_timeout: "4h",
      rlvm_config: "configs/{host}.toml",
    },
  },
  eu: { children: ["db", "web"], vars: { rlvm_connect_timeout: 20 } },
  db: { hosts: ["db1", "db2"], vars: { ansible_user: "dbbackup", ansible_ssh_private_key_file: "keys/db" } },
  web: { hosts: ["web1", "web2"], vars: { ansible_user: "webbackup", rlvm_config: "configs/web.toml" } },
};
const HOSTVARS: Record<string, object> = {
  db1: { ansible_host: "192.0.2.21" },
  db2: { ansible_host: "192.0.2.22", rlvm_config: "configs/db1.toml" },
  web1: { ansible_host: "192.0.2.11" },
  web2: { ansible_host: "192.0.2.12", ansible_port: 2222 },
};
const SCRIPT = `#!/bin/sh
dir=$(dirname "$0")
case "$1" in
  --list) cat "$dir/list.json" ;;
  --host) cat "$dir/host-$2.json" ;;
  *) echo "usage: $0 --list | --host NAME" >&2; exit 2 ;;
esac
`;

const tree = writeTree({
  "inventory.toml": TOML,
  "hosts.yml": YAML,
  "hosts.ini": INI,
  "inventory-script": SCRIPT,
  "list.json": JSON.stringify(LIST),
  ...Object.fromEntries(Object.entries(HOSTVARS).map(([h, v]) => [`host-${h}.json`, JSON.stringify(v)])),
});
chmodSync(join(tree.dir, "inventory-script"), 0o755);
cpSync(join(ROOT, "examples/fleet-groups/configs"), join(tree.dir, "configs"), { recursive: true });
afterAll(() => tree.cleanup());
const at = (name: string) => join(tree.dir, name);

async function plan(file: string, ...args: string[]) {
  const run = await runCli(["plan", "--inventory", file, "--format", "json", ...args]);
  expect(run.code, run.stderr).toBe(0);
  const { inventory, ...rest } = JSON.parse(run.stdout) as { inventory: string };
  expect(inventory).toBe(file);
  return rest;
}

describe("the same fleet as TOML, Ansible YAML, INI and an inventory script", () => {
  it("detects each format", () => {
    expect(detectInventoryFormat(at("inventory.toml"))).toBe("toml");
    expect(detectInventoryFormat(at("hosts.yml"))).toBe("ansible");
    expect(detectInventoryFormat(at("hosts.ini"))).toBe("ansible");
    expect(detectInventoryFormat(at("inventory-script"))).toBe("script");
    expect(detectInventoryFormat(tree.dir)).toBe("ansible");
  });

  it("detects TOML and INI content without an extension", () => {
    const t = writeTree({ a: TOML, b: INI });
    try {
      expect(detectInventoryFormat(join(t.dir, "a"))).toBe("toml");
      expect(detectInventoryFormat(join(t.dir, "b"))).toBe("ansible");
    } finally {
      t.cleanup();
    }
  });

  it("gives the same plan --format json", async () => {
    const expected = await plan(at("inventory.toml"));
    expect(JSON.stringify(expected)).toContain("192.0.2.12");
    expect(await plan(at("hosts.yml"))).toEqual(expected);
    expect(await plan(at("hosts.ini"))).toEqual(expected);
    expect(await plan(at("inventory-script"))).toEqual(expected);
    // Forced, and with --limit on the groups the Ansible source defined.
    expect(await plan(at("hosts.ini"), "--inventory-format", "ansible", "--limit", "eu:&web")).toEqual(
      await plan(at("inventory.toml"), "--limit", "eu:&web"),
    );
  });

  it("resolves every host setting the same (groups, key file relative to the source, timeouts)", () => {
    const hosts = (file: string) => {
      const result = loadInventory(at(file), { env: process.env });
      if (!result.ok) throw new Error(JSON.stringify(result.problems));
      return result.inventory.hosts.map(({ origins: _origins, ...host }) => host);
    };
    const expected = hosts("inventory.toml");
    expect(expected.find((h) => h.name === "db1")).toMatchObject({
      identity_file: join(tree.dir, "keys/db"),
      connect_timeout_s: 20,
      groups: ["db", "eu"],
    });
    for (const file of ["hosts.yml", "hosts.ini", "inventory-script"])
      expect(hosts(file), file).toEqual(expected);
  });

  it("merges a script's group vars as ansible-inventory does with the same script", () => {
    const ours = loadInventory(at("inventory-script"), { format: "script", env: process.env });
    const theirs = loadInventory(at("inventory-script"), { format: "ansible", env: process.env });
    if (!ours.ok || !theirs.ok) throw new Error("not loaded");
    expect(ours.inventory.hosts).toEqual(theirs.inventory.hosts);
  });
});

// Ansible skips .ini files in a directory source (INVENTORY_IGNORE_EXTS): the INI file is `hosts`.
it("reads a directory source with group_vars, paths relative to that directory", () => {
  const t = writeTree({
    "inv/hosts": "[web]\nweb1 ansible_host=192.0.2.11\n",
    "inv/group_vars/web.yml": "rlvm_config: configs/web.toml\nansible_ssh_private_key_file: keys/web\n",
  });
  try {
    const result = loadInventory(join(t.dir, "inv"), { env: process.env });
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    expect(result.inventory.hosts).toEqual([
      expect.objectContaining({
        name: "web1",
        address: "192.0.2.11",
        config: join(t.dir, "inv/configs/web.toml"),
        identity_file: join(t.dir, "inv/keys/web"),
        groups: ["web"],
      }),
    ]);
  } finally {
    t.cleanup();
  }
});

// -J and -o ProxyJump in ansible_ssh_*_args become proxy_jump, resolved like the TOML key: an
// inventory host name is that host (its own address and user), anything else a literal hop.
it("follows -J and -o ProxyJump from ansible_ssh_common_args and ansible_ssh_extra_args", () => {
  const t = writeTree({
    "inv.yml": `all:
  vars:
    rlvm_config: c.toml
  hosts:
    bastion:
      ansible_host: 192.0.2.1
      ansible_user: jumper
    web1:
      ansible_ssh_common_args: "-J ops@198.51.100.7:2222"
    web2:
      ansible_ssh_extra_args: "-o ProxyJump=bastion"
`,
  });
  try {
    const result = loadInventory(join(t.dir, "inv.yml"), { env: process.env });
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    const hops = (name: string) =>
      result.inventory.hosts
        .find((h) => h.name === name)
        ?.jump.map((hop) => `${hop.user}@${hop.address}:${hop.port}`);
    expect(hops("web1")).toEqual(["ops@198.51.100.7:2222"]);
    expect(hops("web2")).toEqual(["jumper@192.0.2.1:22"]);
    expect(hops("bastion")).toEqual([]);
  } finally {
    t.cleanup();
  }
});

describe("errors", () => {
  const broken = (files: Record<string, string>) => {
    const t = writeTree(files);
    cpSync(join(ROOT, "examples/fleet-groups/configs"), join(t.dir, "configs"), { recursive: true });
    return t;
  };

  it("names the host, the variable and the source for unknown rlvm_* and unsupported ansible_*", async () => {
    const t = broken({
      "hosts.yml": `all:
  vars: { rlvm_config: "configs/web.toml" }
  hosts:
    web1: { rlvm_run_timout: 3h }
    web2: { ansible_connection: winrm }
    web3: { ansible_ssh_common_args: "-o ProxyCommand='nc %h %p'" }
    web4: { ansible_become_password: secret }
`,
    });
    try {
      const run = await runCli(["validate", "--inventory", join(t.dir, "hosts.yml")]);
      expect(run.code).toBe(2);
      expect(run.stdout).toBe("");
      const file = join(t.dir, "hosts.yml");
      for (const [host, variable, text] of [
        ["web1", "rlvm_run_timout", 'unknown variable "rlvm_run_timout" (did you mean "rlvm_run_timeout"?)'],
        ["web2", "ansible_connection", 'ansible_connection "winrm" is not supported'],
        ["web3", "ansible_ssh_common_args", "ProxyCommand=nc %h %p changes how ssh connects"],
        ["web4", "ansible_become_password", "is refused"],
      ]) {
        expect(run.stderr).toContain(`hosts.${host}.${variable}`);
        expect(run.stderr).toContain(`host "${host}": `);
        expect(run.stderr).toContain(text);
      }
      expect(run.stderr).toContain(file);
      // A bad value is checked by our schema, and named by its variable.
      const value = join(t.dir, "value.yml");
      writeFileSync(
        value,
        "all:\n  hosts:\n    web5: { rlvm_config: configs/web.toml, ansible_port: nine, rlvm_run_timeout: x }\n",
      );
      const bad = await runCli(["validate", "--inventory", value]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain("hosts.web5.ansible_port");
      expect(bad.stderr).toContain("hosts.web5.rlvm_run_timeout");
      expect(bad.stderr).not.toMatch(/hosts\.web5\.(port|run_timeout)\b/);
    } finally {
      t.cleanup();
    }
  });

  it("refuses a host name our names do not allow, naming it", async () => {
    const t = broken({
      "hosts.ini": '[web]\nweb1 rlvm_config=configs/web.toml\n"a b" rlvm_config=configs/web.toml\n',
    });
    try {
      const result = loadInventory(join(t.dir, "hosts.ini"), { env: process.env });
      expect(result.ok).toBe(false);
      if (result.ok) return;
      expect(result.problems.map((p) => p.message).join("\n")).toContain('host name "a b"');
    } finally {
      t.cleanup();
    }
  });

  it("says how to install ansible-inventory when it is missing", async () => {
    const run = await runCli(["plan", "--inventory", at("hosts.yml")], { env: { PATH: "/nonexistent" } });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("ansible-inventory is not installed");
    expect(run.stderr).toContain("apt install ansible-core");
    expect(run.stderr).toContain("pipx install ansible-core");
  });

  it("reports a source ansible-inventory cannot parse, and a failing script with its stderr", async () => {
    const t = broken({ "bad.yml": "all: [\n", script: "#!/bin/sh\necho boom >&2\nexit 3\n" });
    chmodSync(join(t.dir, "script"), 0o755);
    try {
      const bad = await runCli(["plan", "--inventory", join(t.dir, "bad.yml")], {
        env: { ...process.env } as Record<string, string>,
      });
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain("ansible-inventory -i");
      const script = await runCli(["plan", "--inventory", join(t.dir, "script")]);
      expect(script.code).toBe(2);
      expect(script.stderr).toContain("inventory script --list exited with status 3: boom");
    } finally {
      t.cleanup();
    }
  });
});
