// ssh_config through the real `ssh -G`: the mapping onto a host's settings, and token expansion.
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadInventory, type HostSpec } from "../../../src/inventory/load-inventory.js";
import { expandTokens, mapSshConfig, parseSshDump } from "../../../src/inventory/ssh-config.js";
import { runCli, writeTree } from "../../helpers/run-cli.js";

let cleanup = () => {};
afterEach(() => cleanup());

/** An inventory with `hosts` (TOML) beside `ssh_config` (TREE in it: the tree's path) and the given files. */
function load(sshConfig: string, hosts: string, files: Record<string, string> = {}) {
  const tree = writeTree({
    "inventory.toml": `[defaults]\nconfig = "c.toml"\nssh_config = "ssh_config"\n${hosts}`,
    ...files,
  });
  cleanup = tree.cleanup;
  writeFileSync(join(tree.dir, "ssh_config"), sshConfig.replaceAll("TREE", tree.dir));
  return { dir: tree.dir, result: loadInventory(join(tree.dir, "inventory.toml")) };
}

function hostsOf(result: ReturnType<typeof loadInventory>): Map<string, HostSpec> {
  if (!result.ok) throw new Error(JSON.stringify(result.problems, null, 2));
  return new Map(result.inventory.hosts.map((h) => [h.name, h]));
}

function problemsOf(result: ReturnType<typeof loadInventory>): string[] {
  if (result.ok) throw new Error("expected the inventory to be refused");
  return result.problems.map((p) => `${p.path}: ${p.message} | ${p.hint ?? ""}`);
}

describe("ssh_config", () => {
  it("resolves Host wildcards, Match, Include and first-value-wins as ssh does", () => {
    const { result } = load(
      `Include TREE/included.conf
Host web1
  HostName 10.0.0.1
Match host web2
  Port 2202
Host web*
  HostName 10.9.9.9
  User deploy
  IdentityFile %d/nonexistent-%r
  IdentityFile TREE/keys/%r-%n
  ConnectTimeout 7
  ServerAliveInterval 9
`,
      `[hosts.web1]\n[hosts.web2]\n[hosts.db1]\n`,
      { "keys/deploy-web1": "k", "keys/deploy-web2": "k", "included.conf": "Host db1\n  Port 2299\n" },
    );
    const hosts = hostsOf(result);
    const web1 = hosts.get("web1");
    expect(web1).toMatchObject({
      address: "10.0.0.1",
      user: "deploy",
      port: 22,
      connect_timeout_s: 7,
      keepalive_interval_s: 9,
    });
    expect(web1?.identity_file).toMatch(/keys\/deploy-web1$/);
    expect(web1?.origins?.["address"]).toMatch(/^ssh_config \/.*ssh_config$/);
    expect(web1?.origins?.["port"]).toBe("default");
    expect(hosts.get("web2")).toMatchObject({ address: "10.9.9.9", port: 2202 });
    expect(hosts.get("web2")?.identity_file).toMatch(/keys\/deploy-web2$/);
    // db1 only gets what the included file says; ssh's default identity files do not count.
    expect(hosts.get("db1")).toMatchObject({ address: "db1", port: 2299, identity_file: null });
    expect(hosts.get("db1")?.origins?.["identity_file"]).toBe("default");
  });

  it("lets the inventory's own keys win and says where each value came from", () => {
    const { result } = load(
      "Host *\n  User fromssh\n  Port 2200\n  StrictHostKeyChecking accept-new\n  UserKnownHostsFile /k/one /k/two\n",
      `[hosts.a]\nuser = "mine"\n[hosts.b]\naddress = "b.example"\nport = 2300\nhost_key_policy = "strict"\n`,
    );
    const hosts = hostsOf(result);
    expect(hosts.get("a")).toMatchObject({
      user: "mine",
      port: 2200,
      host_key_policy: "accept-new",
      known_hosts: "/k/one",
      known_hosts_also: ["/k/two"],
    });
    expect(hosts.get("a")?.origins).toMatchObject({ user: "inventory", address: "default" });
    expect(hosts.get("a")?.origins?.["port"]).toMatch(/^ssh_config /);
    expect(hosts.get("b")).toMatchObject({ user: "fromssh", port: 2300, host_key_policy: "strict" });
    expect(hosts.get("b")?.origins).toMatchObject({ address: "inventory", port: "inventory" });
  });

  it("maps StrictHostKeyChecking yes and ask to strict and refuses no", () => {
    const { result } = load(
      "Host y\n  StrictHostKeyChecking yes\nHost n\n  StrictHostKeyChecking no\n",
      `[hosts.y]\n[hosts.n]\n`,
    );
    expect(problemsOf(result)).toEqual([
      expect.stringMatching(
        /^hosts\.n\.ssh_config: host "n": StrictHostKeyChecking .*StrictHostKeyChecking false .*refused/,
      ),
    ]);
  });

  it.each([
    ["ProxyCommand nc %h %p", "ProxyCommand"],
    ["ControlMaster auto\n  ControlPath /tmp/cm-%C", "ControlMaster"],
    ["CertificateFile /k/cert.pub", "CertificateFile"],
    ["HostKeyAlias other", "HostKeyAlias"],
  ])("refuses %s, naming the host and the setting", (line, setting) => {
    const { result } = load(`Host a\n  ${line}\n`, `[hosts.a]\n[hosts.b]\n`);
    const problems = problemsOf(result);
    expect(problems.length).toBeGreaterThanOrEqual(1);
    expect(problems[0]).toContain(`host "a": ${setting} from ssh_config`);
    expect(problems[0]).toContain("cannot honour it");
  });

  it("maps ProxyJump onto proxy_jump: inventory names, literals, ssh:// URIs and none", () => {
    const { result } = load(
      "Host a\n  ProxyJump bastion,ops@10.0.0.9:2222\nHost b\n  ProxyJump ssh://ops@gw.example:2200\nHost c\n  ProxyJump none\nHost d\n  ProxyJump gw\n",
      `[hosts.a]\n[hosts.b]\n[hosts.c]\n[hosts.d]\nproxy_jump = "bastion"\n[jump_hosts.bastion]\naddress = "10.0.0.8"\nuser = "jump"\n`,
    );
    const hosts = hostsOf(result);
    expect(hosts.get("a")?.jump.map((h) => [h.name, h.user, h.address, h.port])).toEqual([
      ["bastion", "jump", "10.0.0.8", 22],
      // ssh -G prints the literal as ops@[10.0.0.9]:2222.
      ["ops@[10.0.0.9]:2222", "ops", "10.0.0.9", 2222],
    ]);
    expect(hosts.get("a")?.origins?.["proxy_jump"]).toMatch(/^ssh_config /);
    expect(hosts.get("b")?.jump.map((h) => [h.user, h.address, h.port])).toEqual([
      ["ops", "gw.example", 2200],
    ]);
    expect(hosts.get("c")?.jump).toEqual([]);
    // The inventory's own proxy_jump wins over ssh_config's.
    expect(hosts.get("d")?.jump.map((h) => h.name)).toEqual(["bastion"]);
    expect(hosts.get("d")?.origins?.["proxy_jump"]).toBe("inventory");
  });

  it("refuses an ssh:// ProxyJump with a path (ssh itself does), naming it", () => {
    const { result } = load("Host a\n  ProxyJump ssh://gw/x\n", `[hosts.a]\n`);
    expect(problemsOf(result)).toEqual([expect.stringContaining('Invalid ProxyJump "ssh://gw/x"')]);
  });

  it("refuses tokens and variables it cannot expand, naming them", () => {
    const { result } = load(
      "Host a\n  IdentityFile /k/%j\nHost b\n  IdentityFile ${HOME}/k\nHost c\n  IdentityFile /k/none-exists\n",
      `[hosts.a]\n[hosts.b]\n[hosts.c]\n`,
    );
    const problems = problemsOf(result);
    expect(problems[0]).toContain("the token %j is not supported here");
    expect(problems[1]).toContain("(${HOME}) are not expanded");
    expect(problems[2]).toContain("none of its files exists: /k/none-exists");
  });

  it("reports a config ssh itself rejects, with ssh's words", () => {
    const { result } = load("Host a\n  NoSuchOption yes\n", `[hosts.a]\n`);
    expect(problemsOf(result)[0]).toMatch(
      /cannot resolve .*ssh_config: ssh -G exited with 255: .*NoSuchOption/i,
    );
  });

  it("rejects a value of the wrong type in the schema", () => {
    const tree = writeTree({
      "inventory.toml": `[defaults]\nconfig = "c.toml"\nssh_config = 3\n[hosts.a]\n`,
    });
    cleanup = tree.cleanup;
    expect(problemsOf(loadInventory(join(tree.dir, "inventory.toml")))[0]).toContain(
      "expected true, false or the path of an ssh_config file",
    );
  });
});

describe("validate --verbose", () => {
  it("shows each connection setting with where it came from", async () => {
    const { dir } = load("Host a\n  HostName 10.1.1.1\n  Port 2200\n", `[hosts.a]\nuser = "backup"\n`, {
      "c.toml": `[standard_path.d]\nbackup_source_path = "/srv"\nexclude_paths = []\n[[standard_path.d.repositories]]\nrepo_path = "/r"\npassword_file = "/p"\nprune_keep_last = 3\n`,
    });
    const run = await runCli(["validate", "--inventory", "inventory.toml", "--verbose"], { cwd: dir });
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^ {4}address +10\.1\.1\.1 {2}\(ssh_config ssh_config\)$/m);
    expect(run.stdout).toMatch(/^ {4}port +2200 {2}\(ssh_config ssh_config\)$/m);
    expect(run.stdout).toMatch(/^ {4}user +backup {2}\(inventory\)$/m);
    expect(run.stdout).toMatch(/^ {4}host_key_policy +strict {2}\(default\)$/m);
    const quiet = await runCli(["validate", "--inventory", "inventory.toml"], { cwd: dir });
    expect(quiet.stdout).not.toContain("address");
  });
});

describe("mapSshConfig", () => {
  const spec = {
    name: "h",
    address: "alias",
    user: "me",
    port: 22,
    identity_file: null,
    known_hosts: "/kh",
    host_key_policy: "strict" as const,
    connect_timeout_s: 15,
    keepalive_interval_s: 15,
  };
  const local = { home: "/home/me", user: "me", uid: 1000, hostname: "ctl.example", exists: () => true };
  const ctx = { inventoryFile: "/inv.toml", configFile: "/cfg", explicit: {}, alias: "alias" };

  it("expands %r and the other IdentityFile tokens with the final user, host and port", () => {
    const dump = parseSshDump(
      "host alias\nhostname h.example\nport 2222\nuser bob_%i\nidentityfile ~/.ssh/%r@%h:%p-%n-%u-%L-%l-%%\nidentityfile /k/%C\n",
    );
    const baseline = parseSshDump(
      "host alias\nhostname alias\nport 22\nuser me\nidentityfile ~/.ssh/id_rsa\n",
    );
    const mapped = mapSshConfig(spec, dump, baseline, ctx, local);
    if (!mapped.ok) throw new Error(JSON.stringify(mapped.problems));
    expect(mapped.host).toMatchObject({ address: "h.example", port: 2222, user: "bob_1000" });
    expect(mapped.host.identity_file).toBe(
      "/home/me/.ssh/bob_1000@h.example:2222-alias-me-ctl-ctl.example-%",
    );
  });

  it("takes the first IdentityFile candidate that exists", () => {
    const dump = parseSshDump("identityfile /k/a\nidentityfile /k/b\nidentityfile /k/c\n");
    const mapped = mapSshConfig(spec, dump, new Map(), ctx, { ...local, exists: (p) => p !== "/k/a" });
    expect(mapped.ok && mapped.host.identity_file).toBe("/k/b");
  });
});

describe("expandTokens", () => {
  it("expands the table, %% as a percent sign, and names what it cannot", () => {
    expect(expandTokens("%r@%h%%", { r: "u", h: "x", "%": "%" })).toEqual({ ok: true, value: "u@x%" });
    expect(expandTokens("/k/%z", { "%": "%" })).toEqual({
      ok: false,
      message: "the token %z is not supported here",
    });
    expect(expandTokens("/k/%", {})).toEqual({ ok: false, message: "a lone % at the end" });
  });

  it("computes %C as ssh does (sha1 of %l%h%p%r): the same as ssh -G's own expansion", () => {
    const sha = createHash("sha1").update(`${hostname()}h.example2200bob`).digest("hex");
    const { dir, result } = load(
      "Host a\n  HostName h.example\n  Port 2200\n  User bob\n  UserKnownHostsFile TREE/%C\n  IdentityFile TREE/%C\n",
      `[hosts.a]\n`,
      { [sha]: "key" },
    );
    const a = hostsOf(result).get("a");
    expect(a?.known_hosts).toBe(join(dir, sha)); // ssh's expansion
    expect(a?.identity_file).toBe(join(dir, sha)); // ours
  });
});
