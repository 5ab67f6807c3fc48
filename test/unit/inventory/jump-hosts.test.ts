// proxy_jump and [jump_hosts]: names, literals, chains, inheritance, cycles and unknown names.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadInventory, type HostSpec } from "../../../src/inventory/load-inventory.js";
import { parseSshProxyJump } from "../../../src/inventory/jump-hosts.js";
import { runCli, writeTree } from "../../helpers/run-cli.js";

let cleanup = () => {};
afterEach(() => cleanup());

function load(inventory: string) {
  const tree = writeTree({ "inv/inventory.toml": `[defaults]\nconfig = "c.toml"\n${inventory}` });
  cleanup = tree.cleanup;
  return { dir: tree.dir, result: loadInventory(join(tree.dir, "inv/inventory.toml")) };
}

function hosts(result: ReturnType<typeof loadInventory>): Map<string, HostSpec> {
  if (!result.ok) throw new Error(JSON.stringify(result.problems, null, 2));
  return new Map(result.inventory.hosts.map((h) => [h.name, h]));
}

function problems(result: ReturnType<typeof loadInventory>): string[] {
  if (result.ok) throw new Error("expected the inventory to be refused");
  return result.problems.map((p) => `${p.path}: ${p.message}`);
}

const hops = (spec: HostSpec | undefined) =>
  spec?.jump.map((h) => `${h.name}=${h.user}@${h.address}:${h.port}`) ?? ["(no host)"];

describe("proxy_jump", () => {
  it("resolves a [jump_hosts] name with its own settings, inheriting [defaults] connection keys", () => {
    const { dir, result } = load(`user = "ops"
identity_file = "keys/fleet"
proxy_jump = "bastion"
[jump_hosts.bastion]
address = "203.0.113.7"
port = 2222
known_hosts = "bastion_known_hosts"
[hosts.web1]
[hosts.web2]
`);
    const all = hosts(result);
    expect(hops(all.get("web1"))).toEqual(["bastion=ops@203.0.113.7:2222"]);
    const bastion = all.get("web2")?.jump[0];
    expect(bastion?.identity_file).toBe(join(dir, "inv/keys/fleet"));
    expect(bastion?.known_hosts).toBe(join(dir, "inv/bastion_known_hosts"));
    // The bastion is no host of the run.
    expect([...all.keys()]).toEqual(["web1", "web2"]);
  });

  it("a literal hop takes the key, known_hosts and policy of the host it leads to", () => {
    const { dir, result } = load(`[hosts.web1]
identity_file = "keys/web"
known_hosts = "kh"
host_key_policy = "accept-new"
proxy_jump = "jump@gw.example.com:2200"
`);
    const hop = hosts(result).get("web1")?.jump[0];
    expect(hop).toMatchObject({
      name: "jump@gw.example.com:2200",
      user: "jump",
      address: "gw.example.com",
      port: 2200,
      identity_file: join(dir, "inv/keys/web"),
      known_hosts: join(dir, "inv/kh"),
      host_key_policy: "accept-new",
    });
  });

  it("a list is a chain, outermost first; the first name's own proxy_jump goes before it", () => {
    const { result } = load(`[jump_hosts.outer]
address = "10.0.0.1"
[jump_hosts.middle]
address = "10.0.0.2"
proxy_jump = "outer"
[jump_hosts.inner]
address = "10.0.0.3"
proxy_jump = "nowhere.example"
[groups.deep]
hosts = ["db1"]
vars = { proxy_jump = ["middle", "inner"] }
[hosts.db1]
[hosts.web1]
proxy_jump = "db1"
`);
    const all = hosts(result);
    const me = hosts(result).get("db1")?.user ?? "";
    expect(hops(all.get("db1"))).toEqual([
      `outer=${me}@10.0.0.1:22`,
      `middle=${me}@10.0.0.2:22`,
      `inner=${me}@10.0.0.3:22`,
    ]);
    // A host of [hosts] is a bastion too, reached through its own chain.
    expect(hops(all.get("web1")).map((h) => h.split("=")[0])).toEqual(["outer", "middle", "inner", "db1"]);
  });

  it("the bastion of [defaults] proxy_jump is reached directly, not through itself", () => {
    const { result } = load(`proxy_jump = "gw"
[hosts.gw]
[hosts.web1]
`);
    const all = hosts(result);
    expect(all.get("gw")?.jump).toEqual([]);
    expect(hops(all.get("web1")).map((h) => h.split("=")[0])).toEqual(["gw"]);
  });

  it("refuses a cycle, an unknown name with a did-you-mean, and a bad value, with paths", () => {
    const { result } = load(`[jump_hosts.a]
proxy_jump = "b"
[jump_hosts.b]
proxy_jump = "a"
[hosts.web1]
proxy_jump = "a"
[hosts.web2]
proxy_jump = "bastoin"
[jump_hosts.bastion]
[hosts.web3]
proxy_jump = "web3"
`);
    expect(problems(result)).toEqual([
      "jump_hosts.b.proxy_jump: proxy_jump forms a cycle: a → b → a",
      'hosts.web2.proxy_jump: proxy_jump names "bastoin", which is not a host or jump host of the inventory (did you mean "bastion"?)',
      "hosts.web3.proxy_jump: proxy_jump forms a cycle: web3 → web3",
    ]);
    const bad = load(`[hosts.web1]\nproxy_jump = "-oProxyCommand=x"\n[jump_hosts.j]\nconfig = "x.toml"\n`);
    expect(problems(bad.result)).toEqual([
      'hosts.web1.proxy_jump: expected an inventory name or "[user@]host[:port]"',
      'jump_hosts.j.config: unknown key "config"',
    ]);
  });
});

describe("validate --verbose", () => {
  it("shows each host's chain, and a direct host as direct", async () => {
    const tree = writeTree({
      "c.toml":
        '[standard_path.d]\nbackup_source_path = "/srv"\n[[standard_path.d.repositories]]\nrepo_path = "/r"\npassword_file = "/p"\nprune_keep_last = 1\n',
      "inventory.toml": `[defaults]\nconfig = "c.toml"\nuser = "u"\n[jump_hosts.bastion]\naddress = "192.0.2.1"\nport = 2222\n[hosts.web1]\nproxy_jump = ["bastion", "ops@10.0.0.1"]\n[hosts.web2]\n`,
    });
    cleanup = tree.cleanup;
    const run = await runCli(["validate", "--inventory", "inventory.toml", "--verbose"], { cwd: tree.dir });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(
      "proxy_jump          bastion (u@192.0.2.1:2222) → ops@10.0.0.1 (ops@10.0.0.1:22)  (inventory)",
    );
    expect(run.stdout).toContain("proxy_jump          (none: direct)  (default)");
  });
});

describe("parseSshProxyJump", () => {
  it("reads ssh_config's forms: a comma list, ssh:// URIs, none", () => {
    expect(parseSshProxyJump("a,u@b:2200")).toEqual({ ok: true, list: ["a", "u@b:2200"] });
    expect(parseSshProxyJump("ssh://u@gw:2222")).toEqual({ ok: true, list: ["u@gw:2222"] });
    expect(parseSshProxyJump("none")).toEqual({ ok: true, list: [] });
    expect(parseSshProxyJump("ssh://gw/path")).toMatchObject({ ok: false });
  });
});
