// Load an inventory: parse, validate, resolve groups and settings precedence into one HostSpec per host.
import { statSync } from "node:fs";
import { homedir, userInfo } from "node:os";
import { dirname, isAbsolute, resolve } from "node:path";
import { formatTomlPath, type Problem } from "../errors.js";
import { parseDuration } from "../duration.js";
import { findControlCharacters, suggestion, zodProblems } from "../validation.js";
import { isName, maskRepository, NAME_RULE, repositoryIdentity } from "../config/rules.js";
import { readInventorySource, type SourceOptions } from "./inventory-source.js";
import { applySshConfig } from "./ssh-config.js";
import {
  asJumpList,
  jumpHostSources,
  resolveJumpChains,
  type JumpHop,
  type JumpSource,
} from "./jump-hosts.js";
import {
  inventorySchema,
  SETTING_KEYS,
  type HostSettingsInput,
  type InventoryInput,
  type SettingKey,
} from "./schema.js";

/** A host: how to connect to it (as to a bastion: JumpHop), and what runs there. */
export interface HostSpec extends JumpHop {
  become: "sudo" | "none";
  become_password_file: string | null;
  /** upload: the bootstrap uploads the agent and runs it as root; installed: sudo runs the installed one. */
  agent: "upload" | "installed";
  run_timeout_s: number;
  restic_env_file: string | null;
  /** backup: files per job the verify sample restores and compares (0: none). */
  verify_sample: number;
  /** The ResticLVM config, resolved to a local absolute path; null for a host that only maintains repositories. */
  config: string | null;
  /** Every group the host belongs to, ancestors included (not `all`). */
  groups: string[];
  /** Where each connection setting came from: "inventory", "ssh_config FILE" or "default". */
  origins?: Record<string, string>;
  /** ssh_config's ProxyJump for the host, when the inventory sets no proxy_jump ([] for `none`). */
  proxy_jump?: string[];
  /** The bastions on the way, outermost first; [] for a host reached directly. */
  jump: JumpHop[];
}

export interface Group {
  name: string;
  hosts: string[];
  children: string[];
}

export interface Inventory {
  file: string;
  /** In file order. */
  hosts: HostSpec[];
  groups: Map<string, Group>;
  /** [repositories.NAME], in file order. */
  repositories: RepositoryDeclaration[];
}

/** A shared repository the inventory declares, with the host that maintains it. */
export interface RepositoryDeclaration {
  name: string;
  /** Where it is declared, for messages: `repositories.NAME`. */
  path: string;
  url: string;
  maintenance_host: string;
  /** How the maintenance host reaches the repository: maintenance_url, else url. */
  maintenance_url: string;
  /** On the maintenance host. */
  password_file: string;
  env_file: string | null;
}

export type InventoryResult = { ok: true; inventory: Inventory } | { ok: false; problems: Problem[] };

const BUILTIN_DEFAULTS = {
  port: 22,
  known_hosts: "~/.ssh/known_hosts",
  host_key_policy: "strict",
  legacy_host_key_algorithms: false,
  become: "sudo",
  agent: "upload",
  connect_timeout: 15,
  connect_retries: 2,
  keepalive_interval: 15,
  run_timeout: "6h",
} as const;

/** Settings that name files on the controller: relative to the inventory, `~` expanded. */
type LocalPathKey =
  "identity_file" | "identity_passphrase_file" | "known_hosts" | "become_password_file" | "config";

/** Our TOML, an Ansible source or an inventory script (detected, or as `format` says). */
export function loadInventory(file: string, options: SourceOptions = {}): InventoryResult {
  const read = readInventorySource(file, options);
  if (!read.ok) return read;
  // Relative paths are relative to the inventory: a directory source is its own directory.
  const baseDir = isDirectory(file) ? resolve(file) : dirname(resolve(file));
  const resolved = resolveInventory(file, read.data, baseDir);
  if (resolved.ok || read.variables === undefined) return resolved;
  // Name the Ansible variable, not our key: hosts.web1.config → hosts.web1.rlvm_config.
  const variables = read.variables;
  return {
    ok: false,
    problems: resolved.problems.map((p) => {
      const variable = [...variables.keys()].find((key) => p.path === key || p.path.startsWith(`${key}[`));
      if (variable === undefined) return p;
      const name = variables.get(variable) ?? "";
      return { ...p, path: variable.replace(/[^.]+$/, name) + p.path.slice(variable.length) };
    }),
  };
}

/** Raw inventory data (TOML's shape) → checked, resolved hosts. */
function resolveInventory(file: string, raw: Record<string, unknown>, baseDir: string): InventoryResult {
  const problems = findControlCharacters(file, raw);
  const parsed = inventorySchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) problems.push(...zodProblems(file, inventorySchema, parsed.error.issues));
  // The structure is checked on the raw data too, so a bad value elsewhere hides none of it.
  const groups = rawGroups(raw["groups"]);
  problems.push(...checkStructure(file, rawKeys(raw["hosts"]), groups));
  if (problems.length > 0 || !parsed.success) return { ok: false, problems };
  const data = parsed.data;
  const hostNames = Object.keys(data.hosts);
  const at = (...path: PropertyKey[]) => formatTomlPath(path);
  const hosts: HostSpec[] = [];
  const settingsOf = new Map<string, HostSettingsInput>();
  const maintainers = new Set(Object.values(data.repositories ?? {}).map((r) => r.maintenance_host));
  for (const name of hostNames) {
    const host = data.hosts[name] ?? {};
    const memberOf = groupsOf(name, groups);
    const settings: HostSettingsInput = { ...data.defaults };
    for (const key of SETTING_KEYS) {
      const fromGroups = groupValue(key, memberOf, groups, data.groups ?? {});
      if (host[key] !== undefined) settings[key] = host[key] as never;
      else if (fromGroups.conflict !== undefined) {
        const [a, b] = fromGroups.conflict;
        problems.push({
          file,
          path: at("hosts", name),
          message: `groups "${a}" and "${b}" both set ${key} for host "${name}", to different values`,
          hint: `set ${key} on [hosts.${name}] itself, or make one group a child of the other`,
        });
      } else if (fromGroups.value !== undefined) settings[key] = fromGroups.value as never;
    }
    settingsOf.set(name, settings);
    if (settings.config === undefined && !maintainers.has(name)) {
      problems.push({
        file,
        path: at("hosts", name),
        message: `host "${name}" has no ResticLVM config`,
        hint: 'set config in [defaults] (e.g. config = "configs/{host}.toml"), a group\'s vars or the host; only a maintenance_host of [repositories] may have none',
      });
      continue;
    }
    const local = (key: LocalPathKey) => localSetting(settings, key, name, baseDir);
    const spec: HostSpec = {
      ...connectionOf(name, host.address ?? name, settings, baseDir),
      become: settings.become ?? BUILTIN_DEFAULTS.become,
      become_password_file: local("become_password_file"),
      agent: settings.agent ?? BUILTIN_DEFAULTS.agent,
      run_timeout_s: parseDuration(settings.run_timeout ?? BUILTIN_DEFAULTS.run_timeout) ?? 0,
      restic_env_file: settings.restic_env_file ?? null,
      verify_sample: settings.verify_sample ?? 0,
      config: local("config"),
      groups: memberOf,
      jump: [],
    };
    const sshConfig = settings.ssh_config ?? false;
    const applied = applySshConfig(spec, {
      inventoryFile: file,
      explicit: settings,
      alias: spec.address,
      configFile:
        typeof sshConfig === "string" ? resolveLocalPath(sshConfig, baseDir) : sshConfig ? null : false,
    });
    if (applied.ok) hosts.push(applied.host);
    else problems.push(...applied.problems);
  }
  if (problems.length > 0) return { ok: false, problems };
  const jumps = resolveJumps(file, data, hosts, settingsOf, [...groups.keys()], baseDir);
  if (jumps.length > 0) return { ok: false, problems: jumps };
  const repositories = repositoryDeclarations(file, data, hostNames);
  if (!repositories.ok) return repositories;
  return { ok: true, inventory: { file, hosts, groups, repositories: repositories.declarations } };
}

/** [repositories.NAME]: each names a known maintenance host, and no repository is declared twice. */
function repositoryDeclarations(
  file: string,
  data: InventoryInput,
  hostNames: string[],
): { ok: true; declarations: RepositoryDeclaration[] } | { ok: false; problems: Problem[] } {
  const problems: Problem[] = [];
  const declarations: RepositoryDeclaration[] = [];
  const declaredAt = new Map<string, string>();
  for (const [name, raw] of Object.entries(data.repositories ?? {})) {
    const path = formatTomlPath(["repositories", name]);
    if (!isName(name)) problems.push({ file, path, message: `repository name "${name}" ${NAME_RULE}` });
    if (!hostNames.includes(raw.maintenance_host)) {
      problems.push({
        file,
        path: `${path}.maintenance_host`,
        message: `maintenance_host "${raw.maintenance_host}" is not a host of the inventory${suggestion(raw.maintenance_host, hostNames)}`,
        hint: "add it under [hosts] (a maintenance host needs no config)",
      });
    }
    const identity = repositoryIdentity(raw.url);
    const first = declaredAt.get(identity);
    if (first !== undefined) {
      problems.push({
        file,
        path: `${path}.url`,
        message: `repository "${maskRepository(raw.url)}" is already declared in [${first}]`,
        hint: "declare each repository once",
      });
    } else declaredAt.set(identity, path);
    declarations.push({
      name,
      path,
      url: raw.url,
      maintenance_host: raw.maintenance_host,
      maintenance_url: raw.maintenance_url ?? raw.url,
      password_file: raw.password_file,
      env_file: raw.env_file ?? null,
    });
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, declarations };
}

/** A path setting on the controller: `{host}` filled in, relative to the inventory (known_hosts defaulted). */
function localSetting(settings: HostSettingsInput, key: LocalPathKey, name: string, baseDir: string) {
  const value = settings[key] ?? (key === "known_hosts" ? BUILTIN_DEFAULTS.known_hosts : undefined);
  return value === undefined ? null : resolveLocalPath(value.replaceAll("{host}", name), baseDir);
}

/** How to connect to a host or jump host, from its merged settings, the defaults where unset. */
function connectionOf(name: string, address: string, settings: HostSettingsInput, baseDir: string): JumpHop {
  const local = (key: LocalPathKey) => localSetting(settings, key, name, baseDir);
  return {
    name,
    address,
    user: settings.user ?? userInfo().username,
    port: settings.port ?? BUILTIN_DEFAULTS.port,
    identity_file: local("identity_file"),
    identity_passphrase_file: local("identity_passphrase_file"),
    known_hosts: local("known_hosts") ?? "",
    host_key_policy: settings.host_key_policy ?? BUILTIN_DEFAULTS.host_key_policy,
    legacy_host_key_algorithms:
      settings.legacy_host_key_algorithms ?? BUILTIN_DEFAULTS.legacy_host_key_algorithms,
    connect_timeout_s: settings.connect_timeout ?? BUILTIN_DEFAULTS.connect_timeout,
    connect_retries: settings.connect_retries ?? BUILTIN_DEFAULTS.connect_retries,
    keepalive_interval_s: settings.keepalive_interval ?? BUILTIN_DEFAULTS.keepalive_interval,
  };
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function asHop(host: HostSpec): JumpHop {
  return {
    name: host.name,
    address: host.address,
    user: host.user,
    port: host.port,
    identity_file: host.identity_file,
    identity_passphrase_file: host.identity_passphrase_file,
    known_hosts: host.known_hosts,
    ...(host.known_hosts_also === undefined ? {} : { known_hosts_also: host.known_hosts_also }),
    host_key_policy: host.host_key_policy,
    legacy_host_key_algorithms: host.legacy_host_key_algorithms,
    connect_timeout_s: host.connect_timeout_s,
    connect_retries: host.connect_retries,
    keepalive_interval_s: host.keepalive_interval_s,
  };
}

/** Each host's `jump` chain from proxy_jump (the inventory's, else ssh_config's) and [jump_hosts]. */
function resolveJumps(
  file: string,
  data: InventoryInput,
  hosts: HostSpec[],
  settingsOf: ReadonlyMap<string, HostSettingsInput>,
  groupNames: string[],
  baseDir: string,
): Problem[] {
  const { sources, problems } = jumpHostSources(file, data, groupNames, (name, address, settings) =>
    connectionOf(name, address, settings, baseDir),
  );
  for (const host of hosts) {
    const fromInventory = asJumpList(settingsOf.get(host.name)?.proxy_jump);
    const source: JumpSource = {
      hop: asHop(host),
      proxyJump: fromInventory ?? host.proxy_jump,
      own: data.hosts[host.name]?.proxy_jump !== undefined,
      path: formatTomlPath(["hosts", host.name, "proxy_jump"]),
      ...(fromInventory === undefined && host.proxy_jump !== undefined ? { fromSshConfig: true } : {}),
    };
    sources.set(host.name, source);
  }
  if (problems.length > 0) return problems;
  const resolved = resolveJumpChains(
    file,
    sources,
    hosts.map((h) => h.name),
  );
  for (const host of hosts) host.jump = resolved.chains.get(host.name) ?? [];
  return resolved.problems;
}

/** `~` and `~/x` expand to the home directory; anything else relative is relative to the inventory. */
function rawKeys(value: unknown): string[] {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? Object.keys(value) : [];
}

function rawGroups(value: unknown): Map<string, Group> {
  const strings = (list: unknown) => (Array.isArray(list) ? list.filter((x) => typeof x === "string") : []);
  const groups = new Map<string, Group>();
  for (const name of rawKeys(value)) {
    const raw = (value as Record<string, unknown>)[name];
    const table = raw !== null && typeof raw === "object" ? (raw as Record<string, unknown>) : {};
    groups.set(name, { name, hosts: strings(table["hosts"]), children: strings(table["children"]) });
  }
  return groups;
}

/** Names, references between hosts and groups, and cycles. */
function checkStructure(file: string, hostNames: string[], groups: Map<string, Group>): Problem[] {
  const problems: Problem[] = [];
  const groupNames = [...groups.keys()];
  const at = (...path: PropertyKey[]) => formatTomlPath(path);
  for (const name of hostNames) {
    if (!isName(name)) {
      problems.push({
        file,
        path: at("hosts", name),
        message: `host name "${name}" ${NAME_RULE}`,
      });
    }
    if (groups.has(name)) {
      problems.push({
        file,
        path: at("groups", name),
        message: `"${name}" is both a host and a group, which makes --limit ambiguous`,
        hint: "rename the group or the host",
      });
    }
  }
  for (const group of groups.values()) {
    const name = group.name;
    if (name === "all" || name === "ungrouped") {
      problems.push({
        file,
        path: at("groups", name),
        message: `the group "${name}" is implicit and cannot be defined (as in Ansible)`,
        hint:
          name === "all"
            ? "put settings for every host in [defaults]"
            : '"ungrouped" is every host in no group: name your group otherwise',
      });
    } else if (!isName(name)) {
      problems.push({
        file,
        path: at("groups", name),
        message: `group name "${name}" ${NAME_RULE}`,
      });
    }
    group.hosts.forEach((host, index) => {
      if (!hostNames.includes(host)) {
        problems.push({
          file,
          path: at("groups", name, "hosts", index),
          message: `group "${name}" names host "${host}", which is not defined${suggestion(host, hostNames)}`,
          hint: `define it as [hosts.${host}] (an empty table is enough when its name is its address)`,
        });
      }
    });
    group.children.forEach((child, index) => {
      if (!groups.has(child)) {
        problems.push({
          file,
          path: at("groups", name, "children", index),
          message: `group "${name}" names child group "${child}", which is not defined${suggestion(child, groupNames)}`,
        });
      }
    });
  }
  const cycle = findCycle(groups);
  if (cycle !== null) {
    problems.push({
      file,
      path: at("groups", cycle[0] ?? "", "children"),
      message: `groups form a cycle: ${cycle.join(" → ")}`,
      hint: "a group cannot be its own ancestor; remove one of these children entries",
    });
  }
  return problems;
}

/** `~` and `~/x` expand to the home directory; anything else relative is relative to the inventory. */
export function resolveLocalPath(path: string, baseDir: string): string {
  if (path === "~") return homedir();
  if (path.startsWith("~/")) return resolve(homedir(), path.slice(2));
  return isAbsolute(path) ? path : resolve(baseDir, path);
}

/** Groups a host belongs to: those naming it, and all their ancestors. */
function groupsOf(host: string, groups: Map<string, Group>): string[] {
  const member = new Set<string>();
  const visit = (name: string) => {
    if (member.has(name)) return;
    member.add(name);
    for (const group of groups.values()) if (group.children.includes(name)) visit(group.name);
  };
  for (const group of groups.values()) if (group.hosts.includes(host)) visit(group.name);
  return [...groups.keys()].filter((name) => member.has(name));
}

function isDescendant(name: string, ancestor: string, groups: Map<string, Group>): boolean {
  const children = groups.get(ancestor)?.children ?? [];
  return children.includes(name) || children.some((child) => isDescendant(name, child, groups));
}

/**
 * A child group overrides its parents; two unrelated groups that disagree are a conflict.
 */
function groupValue(
  key: SettingKey,
  memberOf: string[],
  groups: Map<string, Group>,
  raw: Record<string, { vars?: HostSettingsInput | undefined }>,
): { value?: unknown; conflict?: [string, string] } {
  const setting = memberOf.filter((g) => raw[g]?.vars?.[key] !== undefined);
  const closest = setting.filter(
    (g) => !setting.some((other) => other !== g && isDescendant(other, g, groups)),
  );
  const values = closest.map((g) => raw[g]?.vars?.[key]);
  for (let i = 1; i < closest.length; i++) {
    if (JSON.stringify(values[i]) !== JSON.stringify(values[0])) {
      return { conflict: [closest[0] ?? "", closest[i] ?? ""] };
    }
  }
  return { value: values[0] };
}

function findCycle(groups: Map<string, Group>): string[] | null {
  const state = new Map<string, "visiting" | "done">();
  const stack: string[] = [];
  const visit = (name: string): string[] | null => {
    if (state.get(name) === "done") return null;
    if (state.get(name) === "visiting") return [...stack.slice(stack.indexOf(name)), name];
    state.set(name, "visiting");
    stack.push(name);
    for (const child of groups.get(name)?.children ?? []) {
      const found = visit(child);
      if (found !== null) return found;
    }
    stack.pop();
    state.set(name, "done");
    return null;
  };
  for (const name of groups.keys()) {
    const found = visit(name);
    if (found !== null) return found;
  }
  return null;
}
