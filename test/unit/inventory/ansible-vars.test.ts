import { describe, expect, it } from "vitest";
import { convertAnsibleInventory, convertHost, sshArgs } from "../../../src/inventory/ansible-vars.js";

const SOURCE = "/inv/hosts.yml";
const host = (vars: Record<string, unknown>) =>
  convertHost("web1", { rlvm_config: "c.toml", ...vars }, SOURCE);

describe("convertHost", () => {
  it("maps Ansible's connection variables and rlvm_* to our keys", () => {
    const converted = host({
      ansible_host: "10.0.0.1",
      ansible_port: "2222",
      ansible_user: "deploy",
      ansible_ssh_private_key_file: "keys/id",
      ansible_become: false,
      ansible_become_method: "sudo",
      ansible_become_user: "root",
      ansible_connection: "ssh",
      ansible_python_interpreter: "/usr/bin/python3",
      ansible_ssh_common_args: "-o ProxyJump=bastion -C -o ControlMaster=auto",
      rlvm_run_timeout: "3h",
      rlvm_known_hosts: "kh",
      http_proxy: "ignored",
    });
    expect(converted.problems).toEqual([]);
    expect(converted.settings).toEqual({
      address: "10.0.0.1",
      port: 2222,
      user: "deploy",
      identity_file: "keys/id",
      become: "none",
      proxy_jump: "bastion",
      config: "c.toml",
      run_timeout: "3h",
      known_hosts: "kh",
    });
    expect(Object.fromEntries(host({ ansible_private_key_file: "k" }).variables)).toMatchObject({
      identity_file: "ansible_private_key_file",
      config: "rlvm_config",
    });
  });

  it("lets rlvm_<key> win over the ansible_* variable for the same key, in any order", () => {
    expect(host({ rlvm_user: "backup", ansible_user: "admin" }).settings["user"]).toBe("backup");
    expect(host({ ansible_user: "admin", rlvm_user: "backup" }).settings["user"]).toBe("backup");
    expect(host({ ansible_become: "yes" }).settings["become"]).toBe("sudo");
  });

  it("refuses two spellings of one setting that disagree", () => {
    const converted = host({ ansible_host: "a", ansible_ssh_host: "b" });
    expect(converted.problems.map((p) => p.message)).toEqual([
      'host "web1": ansible_host and ansible_ssh_host disagree',
    ]);
  });

  it.each([
    ["ansible_become_password", "x", /rlvm_become_password_file/],
    ["ansible_password", "x", /key/],
    ["ansible_ssh_pass", "x", /key/],
    ["ansible_become_method", "su", /only sudo/],
    ["ansible_become_user", "postgres", /runs as root/],
    ["ansible_connection", "winrm", /SSH only/],
    ["ansible_connection", "local", /SSH only/],
    ["ansible_host_key_checking", false, /always checked/],
    [
      "ansible_ssh_common_args",
      "-o ProxyCommand='nc %h %p'",
      /ProxyCommand=nc %h %p changes how ssh connects/,
    ],
    ["ansible_ssh_extra_args", "-o StrictHostKeyChecking=no", /always checked/],
    ["ansible_ssh_extra_args", "-p 2200", /"-p" changes how ssh connects/],
    ["rlvm_confg", "c.toml", /unknown variable "rlvm_confg" \(did you mean "rlvm_config"\?\)/],
  ])("refuses %s = %j, naming the host and the variable", (variable, value, message) => {
    const converted = host({ [variable]: value });
    expect(converted.problems).toHaveLength(1);
    expect(converted.problems[0]).toMatchObject({ file: SOURCE, path: `hosts.web1.${variable}` });
    expect(converted.problems[0]?.message).toMatch(/^host "web1": /);
    expect(`${converted.problems[0]?.message} ${converted.problems[0]?.hint}`).toMatch(message);
  });

  it("asks for rlvm_config when a host has none", () => {
    const converted = convertHost("db1", {}, SOURCE);
    expect(converted.problems).toEqual([
      expect.objectContaining({
        path: "hosts.db1",
        message: 'host "db1" has no ResticLVM config (rlvm_config)',
      }),
    ]);
  });
});

describe("sshArgs", () => {
  it.each([
    ["-J bastion", { proxy_jump: "bastion" }],
    ["-Jme@bastion:2222", { proxy_jump: "me@bastion:2222" }],
    ["-o ProxyJump=a,b", { proxy_jump: ["a", "b"] }],
    [
      '-o "ProxyJump b1" -o StrictHostKeyChecking=accept-new',
      { proxy_jump: "b1", host_key_policy: "accept-new" },
    ],
    ["-oControlPersist=60s -q -vv", {}],
    ["-o ProxyJump=none", {}],
  ])("%s", (text, settings) => {
    expect(sshArgs(text)).toEqual({ settings });
  });

  it("refuses two different jump hosts, an -o without a value and unbalanced quotes", () => {
    expect(sshArgs("-J a -J b").problem).toMatch(/two different jump hosts/);
    expect(sshArgs("-o").problem).toMatch(/without a value/);
    expect(sshArgs("-o 'ProxyJump=a").problem).toMatch(/unbalanced quotes/);
  });
});

describe("convertAnsibleInventory", () => {
  it("takes groups and children, without all and ungrouped; hosts by name", () => {
    const result = convertAnsibleInventory(
      {
        _meta: { hostvars: { b: { rlvm_config: "c" }, a: { rlvm_config: "c" }, u: { rlvm_config: "c" } } },
        all: { children: ["ungrouped", "eu"] },
        ungrouped: { hosts: ["u"] },
        eu: { children: ["web"] },
        web: { hosts: ["b", "a"] },
      },
      { source: SOURCE, mergeGroupVars: false },
    );
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    expect(Object.keys(result.data.hosts)).toEqual(["a", "b", "u"]);
    expect(result.data.groups).toEqual({
      eu: { hosts: [], children: ["web"] },
      web: { hosts: ["b", "a"], children: [] },
    });
  });

  it("merges a script's group vars as Ansible does: all < parents < children, same depth by name, host last", () => {
    const result = convertAnsibleInventory(
      {
        all: { vars: { ansible_user: "all", rlvm_config: "all.toml", ansible_port: 1 } },
        eu: { children: ["web"], vars: { ansible_user: "eu", ansible_port: 2, rlvm_run_timeout: "1h" } },
        web: { hosts: ["w1", "w2"], vars: { ansible_user: "web" } },
        // Depth 1 like eu: a, b, then eu by name, whatever the order here; so eu's 1h wins for w1.
        b: { hosts: ["w1"], vars: { rlvm_run_timeout: "2h", rlvm_connect_timeout: 2 } },
        a: { hosts: ["w1"], vars: { rlvm_run_timeout: "3h", rlvm_connect_timeout: 3 } },
        _meta: { hostvars: { w2: { ansible_user: "own" } } },
      },
      { source: SOURCE, mergeGroupVars: true },
    );
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    expect(result.data.hosts["w1"]).toEqual({
      user: "web",
      port: 2,
      config: "all.toml",
      run_timeout: "1h",
      connect_timeout: 2,
    });
    expect(result.data.hosts["w2"]).toEqual({ user: "own", port: 2, config: "all.toml", run_timeout: "1h" });
    expect(result.data.groups["b"]).toEqual({ hosts: ["w1"], children: [] });
  });

  it("takes a group given as a bare list of hosts (the script protocol allows it)", () => {
    const result = convertAnsibleInventory(
      { web: ["w1"], _meta: { hostvars: { w1: { rlvm_config: "c" } } } },
      { source: SOURCE, mergeGroupVars: true },
    );
    expect(result.ok && result.data.groups).toEqual({ web: { hosts: ["w1"], children: [] } });
  });
});
