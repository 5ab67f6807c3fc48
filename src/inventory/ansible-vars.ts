// An Ansible inventory's JSON (`ansible-inventory --list`, or a script's `--list`) → the raw data our
// TOML parses into, so the same schema and resolution check it. Only connection variables count.
import { formatTomlPath, type Problem } from "../errors.js";
import { suggestion } from "../validation.js";
import { SETTING_KEYS } from "./schema.js";

/** What `--list` prints: groups by name, and `_meta.hostvars` (always there from ansible-inventory). */
export type AnsibleList = Record<string, unknown>;

export interface ConvertedInventory {
  /** `{hosts: {name: {address?, ...settings}}, groups: {name: {hosts, children}}}`, as TOML gives. */
  data: { hosts: Record<string, Record<string, unknown>>; groups: Record<string, GroupData> };
  /** `hosts.NAME.KEY` → the variable it came from, so errors name `rlvm_config`, not `config`. */
  variables: Map<string, string>;
}

interface GroupData {
  hosts: string[];
  children: string[];
}

export type ConvertResult = ({ ok: true } & ConvertedInventory) | { ok: false; problems: Problem[] };

// Implicit in Ansible and in our --limit alike.
const IMPLICIT = new Set(["all", "ungrouped"]);

/** Ansible's own variable, and the setting it gives (its deprecated ansible_ssh_* spelling too). */
const MAPPED: Record<string, string> = {
  ansible_host: "address",
  ansible_ssh_host: "address",
  ansible_port: "port",
  ansible_ssh_port: "port",
  ansible_user: "user",
  ansible_ssh_user: "user",
  ansible_ssh_private_key_file: "identity_file",
  ansible_private_key_file: "identity_file",
};

const PASSWORDS = new Set([
  "ansible_password",
  "ansible_ssh_pass",
  "ansible_ssh_password",
  "ansible_become_pass",
  "ansible_become_password",
  "ansible_sudo_pass",
  "ansible_sudo_password",
]);

const SSH_ARGS = ["ansible_ssh_common_args", "ansible_ssh_extra_args", "ansible_ssh_args"];

// ssh -o options that only tune a session (sharing, logging, forwarding we never request): not
// needed, as ssh_config's irrelevant keywords. Anything else that is not mapped is refused.
const HARMLESS_OPTIONS = new Set([
  "controlmaster",
  "controlpersist",
  "controlpath",
  "forwardagent",
  "forwardx11",
  "compression",
  "loglevel",
  "serveralivecountmax",
  "tcpkeepalive",
  "batchmode",
  "identitiesonly",
  "preferredauthentications",
  "gssapiauthentication",
  "hashknownhosts",
  "visualhostkey",
  "requesttty",
]);
const HARMLESS_FLAGS = new Set(["C", "q", "v", "A", "a", "x", "T"]);

export interface ConvertOptions {
  /** The inventory source, for messages. */
  source: string;
  /**
   * A script's groups carry their own `vars`: merge them as Ansible does. ansible-inventory's
   * `_meta.hostvars` is already merged, so its output is taken as it is.
   */
  mergeGroupVars: boolean;
}

export function convertAnsibleInventory(list: AnsibleList, options: ConvertOptions): ConvertResult {
  const { source } = options;
  const problems: Problem[] = [];
  const groups: Record<string, GroupData> = {};
  const groupVars = new Map<string, Record<string, unknown>>();
  const hostNames: string[] = [];
  const seenHost = new Set<string>();
  const addHost = (name: string) => {
    if (!seenHost.has(name)) hostNames.push(name);
    seenHost.add(name);
  };
  // By name, as ansible-inventory prints them, whatever order a script uses.
  for (const [name, raw] of Object.entries(list).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (name === "_meta") continue;
    // The script protocol allows a bare list of hosts for a group.
    const group = Array.isArray(raw) ? { hosts: raw } : isObject(raw) ? raw : undefined;
    if (group === undefined) {
      problems.push({ file: source, path: name, message: `group "${name}" is neither an object nor a list` });
      continue;
    }
    const hosts = strings(group["hosts"]);
    const children = strings(group["children"]).filter((child) => !IMPLICIT.has(child));
    hosts.forEach(addHost);
    if (isObject(group["vars"])) groupVars.set(name, group["vars"]);
    if (!IMPLICIT.has(name)) groups[name] = { hosts, children };
  }
  const meta = isObject(list["_meta"]) ? list["_meta"] : {};
  const hostvars = isObject(meta["hostvars"]) ? meta["hostvars"] : {};
  const hosts: Record<string, Record<string, unknown>> = {};
  const variables = new Map<string, string>();
  // Ansible lists hosts (and so hostvars) by name: that is the inventory's order here.
  for (const name of hostNames.sort()) {
    const own = isObject(hostvars[name]) ? hostvars[name] : {};
    const vars = options.mergeGroupVars ? { ...mergedGroupVars(name, list, groupVars), ...own } : own;
    const converted = convertHost(name, vars, source);
    problems.push(...converted.problems);
    hosts[name] = converted.settings;
    for (const [key, variable] of converted.variables)
      variables.set(formatTomlPath(["hosts", name, key]), variable);
  }
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, data: { hosts, groups }, variables };
}

/**
 * Ansible's order: `all`, then the host's groups by depth (a child after its parents), groups of one
 * depth by name; the host's own vars last (the caller's).
 */
function mergedGroupVars(
  host: string,
  list: AnsibleList,
  groupVars: Map<string, Record<string, unknown>>,
): Record<string, unknown> {
  const childrenOf = (group: string) => {
    const raw = list[group];
    return isObject(raw) ? strings(raw["children"]) : [];
  };
  const hostsOf = (group: string) => {
    const raw = list[group];
    return Array.isArray(raw) ? strings(raw) : isObject(raw) ? strings(raw["hosts"]) : [];
  };
  const parents = new Map<string, string[]>();
  for (const group of Object.keys(list)) {
    if (group === "_meta") continue;
    for (const child of childrenOf(group)) parents.set(child, [...(parents.get(child) ?? []), group]);
  }
  // Depth: the longest path from `all` (a group without parents sits directly under it).
  const depths = new Map<string, number>();
  const depth = (group: string, seen: Set<string>): number => {
    if (group === "all") return 0;
    const known = depths.get(group);
    if (known !== undefined) return known;
    if (seen.has(group)) return 1; // a cycle: Ansible refuses it; the structure check reports it
    const above = (parents.get(group) ?? []).map((p) => depth(p, new Set([...seen, group])));
    const value = Math.max(0, ...above) + 1;
    depths.set(group, value);
    return value;
  };
  const member = new Set<string>();
  const visit = (group: string) => {
    if (member.has(group)) return;
    member.add(group);
    for (const parent of parents.get(group) ?? []) visit(parent);
  };
  for (const group of Object.keys(list)) if (group !== "_meta" && hostsOf(group).includes(host)) visit(group);
  const ordered = [...member]
    .filter((group) => group !== "all")
    .map((group) => ({ group, depth: depth(group, new Set()) }))
    .sort((a, b) => a.depth - b.depth || (a.group < b.group ? -1 : a.group > b.group ? 1 : 0));
  const merged: Record<string, unknown> = { ...groupVars.get("all") };
  for (const { group } of ordered) Object.assign(merged, groupVars.get(group));
  return merged;
}

interface ConvertedHost {
  settings: Record<string, unknown>;
  variables: Map<string, string>;
  problems: Problem[];
}

/** One host's merged variables → its settings. Exported for tests. */
export function convertHost(name: string, vars: Record<string, unknown>, source: string): ConvertedHost {
  const problems: Problem[] = [];
  const settings: Record<string, unknown> = {};
  const variables = new Map<string, string>();
  const problem = (variable: string, message: string, hint?: string) =>
    problems.push({
      file: source,
      path: formatTomlPath(["hosts", name, variable]),
      message: `host "${name}": ${message}`,
      ...(hint === undefined ? {} : { hint }),
    });
  const set = (key: string, value: unknown, variable: string) => {
    const earlier = variables.get(key);
    // Two spellings of one setting that disagree: Ansible would silently pick one.
    if (earlier !== undefined && !earlier.startsWith("rlvm_") && !variable.startsWith("rlvm_")) {
      if (JSON.stringify(settings[key]) !== JSON.stringify(value))
        problem(variable, `${earlier} and ${variable} disagree`, `set only one of them`);
      return;
    }
    // rlvm_<key> is for this tool alone, so it wins over the ansible_* variable for the same key.
    if (earlier?.startsWith("rlvm_") === true && !variable.startsWith("rlvm_")) return;
    settings[key] = value;
    variables.set(key, variable);
  };
  const rlvmNames = SETTING_KEYS.map((key) => `rlvm_${key}`);
  for (const [variable, value] of Object.entries(vars)) {
    if (variable.startsWith("rlvm_")) {
      const key = variable.slice("rlvm_".length);
      if ((SETTING_KEYS as string[]).includes(key)) set(key, value, variable);
      else
        problem(
          variable,
          `unknown variable "${variable}"${suggestion(variable, rlvmNames)}`,
          `rlvm-fleet's variables: ${rlvmNames.join(", ")}`,
        );
      continue;
    }
    if (!variable.startsWith("ansible_")) continue;
    const mapped = MAPPED[variable];
    if (mapped !== undefined) {
      // INI or a quoted YAML value gives a port as a string: Ansible takes it, so do we.
      const port = mapped === "port" && typeof value === "string" && /^\d+$/.test(value);
      set(mapped, port ? Number(value) : value, variable);
    } else if (PASSWORDS.has(variable)) {
      problem(
        variable,
        `${variable} is refused: rlvm-fleet never takes a password from the inventory`,
        variable.includes("become") || variable.includes("sudo")
          ? "use rlvm_become_password_file (a file only you can read), or passwordless sudo"
          : "log in with a key: ansible_ssh_private_key_file or the SSH agent",
      );
    } else if (variable === "ansible_become") {
      const on = truth(value);
      if (on === undefined)
        problem(variable, `ansible_become is ${JSON.stringify(value)}, expected true or false`);
      else set("become", on ? "sudo" : "none", variable);
    } else if (variable === "ansible_become_method") {
      if (value !== "sudo")
        problem(
          variable,
          `ansible_become_method ${JSON.stringify(value)} is not supported: only sudo is`,
          "use sudo, or ansible_become: false (rlvm_become = none) with a root login",
        );
    } else if (variable === "ansible_become_user") {
      if (value !== "root")
        problem(
          variable,
          `ansible_become_user ${JSON.stringify(value)} is not supported: the agent runs as root`,
          "remove it, or set it to root",
        );
    } else if (variable === "ansible_connection") {
      if (!["ssh", "paramiko", "smart"].includes(String(value)))
        problem(
          variable,
          `ansible_connection ${JSON.stringify(value)} is not supported: rlvm-fleet connects with SSH only`,
          "use ssh (or leave it unset), or keep this host out of the inventory rlvm-fleet reads",
        );
    } else if (variable === "ansible_host_key_checking" || variable === "ansible_ssh_host_key_checking") {
      if (truth(value) !== true)
        problem(
          variable,
          `${variable} ${JSON.stringify(value)}: host keys are always checked`,
          'set rlvm_host_key_policy = "accept-new" to record unknown keys on first use',
        );
    } else if (SSH_ARGS.includes(variable)) {
      const parsed = sshArgs(String(value));
      if (parsed.problem !== undefined) problem(variable, `${variable}: ${parsed.problem}`, parsed.hint);
      for (const [key, setting] of Object.entries(parsed.settings)) set(key, setting, variable);
    }
    // Any other ansible_* (ansible_python_interpreter, timeouts, pipelining, …) does not matter here.
  }
  if (settings["config"] === undefined)
    problems.push({
      file: source,
      path: formatTomlPath(["hosts", name]),
      message: `host "${name}" has no ResticLVM config (rlvm_config)`,
      hint: 'set rlvm_config in the vars of all (e.g. rlvm_config: "configs/{host}.toml"), a group or the host',
    });
  return { settings, variables, problems };
}

function truth(value: unknown): boolean | undefined {
  if (typeof value === "boolean") return value;
  const text = String(value).toLowerCase();
  if (["yes", "true", "on", "1", "y"].includes(text)) return true;
  if (["no", "false", "off", "0", "n"].includes(text)) return false;
  return undefined;
}

interface ParsedArgs {
  settings: Record<string, unknown>;
  problem?: string;
  hint?: string;
}

/** ssh's command-line options as Ansible passes them (shlex-split): ProxyJump and a few settings. */
export function sshArgs(text: string): ParsedArgs {
  const words = shellWords(text);
  if (words === null) return { settings: {}, problem: "unbalanced quotes" };
  const settings: Record<string, unknown> = {};
  const jump = (value: string): ParsedArgs | undefined => {
    if (value === "none") return undefined;
    const chain = value.split(",");
    const proxy = chain.length === 1 ? chain[0] : chain;
    if (
      settings["proxy_jump"] !== undefined &&
      JSON.stringify(settings["proxy_jump"]) !== JSON.stringify(proxy)
    )
      return { settings, problem: "two different jump hosts (ssh allows one -J)" };
    settings["proxy_jump"] = proxy;
    return undefined;
  };
  for (let i = 0; i < words.length; i++) {
    const word = words[i] ?? "";
    let option: string | undefined;
    if (word === "-J" || word === "-o") {
      const value = words[++i];
      if (value === undefined) return { settings, problem: `${word} without a value` };
      if (word === "-J") {
        const failed = jump(value);
        if (failed !== undefined) return failed;
        continue;
      }
      option = value;
    } else if (word.startsWith("-J")) {
      const failed = jump(word.slice(2));
      if (failed !== undefined) return failed;
      continue;
    } else if (word.startsWith("-o")) option = word.slice(2);
    else if (/^-[A-Za-z]+$/.test(word) && [...word.slice(1)].every((f) => HARMLESS_FLAGS.has(f))) continue;
    else
      return {
        settings,
        problem: `"${word}" changes how ssh connects and cannot be honoured`,
        hint: "remove it; set the rlvm_* variable for the setting instead (see the README's mapping)",
      };
    const match = /^([A-Za-z]+)\s*(?:=\s*|\s+)(.*)$/.exec(option);
    if (match === null) return { settings, problem: `-o ${option}: expected KEY=VALUE` };
    const key = (match[1] ?? "").toLowerCase();
    const value = match[2] ?? "";
    if (key === "proxyjump") {
      const failed = jump(value);
      if (failed !== undefined) return failed;
    } else if (key === "stricthostkeychecking") {
      const policy = value.toLowerCase();
      if (policy === "accept-new") settings["host_key_policy"] = "accept-new";
      else if (policy === "yes" || policy === "ask") settings["host_key_policy"] = "strict";
      else
        return {
          settings,
          problem: `StrictHostKeyChecking=${value}: host keys are always checked`,
          hint: 'remove it; rlvm_host_key_policy = "accept-new" records unknown keys on first use',
        };
    } else if (!HARMLESS_OPTIONS.has(key))
      return {
        settings,
        problem: `-o ${match[1]}=${value} changes how ssh connects and cannot be honoured`,
        hint: "remove it; set the rlvm_* variable for the setting instead (see the README's mapping)",
      };
  }
  return { settings };
}

/** Python's shlex.split for what ssh arguments use: words, quotes, backslashes. null when unbalanced. */
function shellWords(text: string): string[] | null {
  const words: string[] = [];
  let word: string | null = null;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] ?? "";
    if (quote !== null) {
      if (c === quote) quote = null;
      else if (c === "\\" && quote === '"' && (text[i + 1] === '"' || text[i + 1] === "\\"))
        word += text[++i] ?? "";
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      word ??= "";
    } else if (c === "\\") word = (word ?? "") + (text[++i] ?? "");
    else if (/\s/.test(c)) {
      if (word !== null) words.push(word);
      word = null;
    } else word = (word ?? "") + c;
  }
  if (quote !== null) return null;
  if (word !== null) words.push(word);
  return words;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((x): x is string => typeof x === "string") : [];
}
