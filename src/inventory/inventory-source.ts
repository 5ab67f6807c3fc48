// Read --inventory into raw inventory data: our TOML, an Ansible source (through ansible-inventory,
// so every Ansible plugin works) or an executable script speaking Ansible's JSON protocol.
import { spawnSync } from "node:child_process";
import { accessSync, constants, readFileSync, statSync } from "node:fs";
import { parse as parseToml } from "smol-toml";
import type { Problem } from "../errors.js";
import { readTomlFile } from "../validation.js";
import { convertAnsibleInventory, type AnsibleList } from "./ansible-vars.js";

export const INVENTORY_FORMATS = ["toml", "ansible", "script"] as const;
export type InventoryFormat = (typeof INVENTORY_FORMATS)[number];

export interface SourceOptions {
  /** Forced by --inventory-format; detected when undefined. */
  format?: InventoryFormat | undefined;
  /** The environment ansible-inventory and scripts run in (PATH finds them); the CLI's. */
  env?: Record<string, string | undefined> | undefined;
}

export type SourceRead =
  | {
      ok: true;
      format: InventoryFormat;
      data: Record<string, unknown>;
      /** For Ansible sources: `hosts.NAME.KEY` → the variable it came from. */
      variables?: Map<string, string>;
    }
  | { ok: false; problems: Problem[] };

const ANSIBLE_TIMEOUT_MS = 120_000;
const SCRIPT_TIMEOUT_MS = 60_000;

export function readInventorySource(file: string, options: SourceOptions = {}): SourceRead {
  const format = options.format ?? detectInventoryFormat(file);
  const env = options.env;
  if (format === "toml") {
    const read = readTomlFile(file, "inventory");
    return read.ok ? { ok: true, format, data: read.data } : { ok: false, problems: [read.problem] };
  }
  const list = format === "script" ? runScript(file, env) : runAnsibleInventory(file, env);
  if (!list.ok) return list;
  const converted = convertAnsibleInventory(list.list, { source: file, mergeGroupVars: format === "script" });
  if (!converted.ok) return converted;
  return { ok: true, format, data: converted.data, variables: converted.variables };
}

/**
 * A directory, .yml/.yaml/.ini/.json → Ansible; .toml → ours; an executable starting with `#!` → a
 * script; otherwise TOML content → ours, INI-looking content → Ansible.
 */
export function detectInventoryFormat(file: string): InventoryFormat {
  let stat;
  try {
    stat = statSync(file);
  } catch {
    return "toml"; // reading it says what is wrong
  }
  if (stat.isDirectory()) return "ansible";
  if (/\.toml$/i.test(file)) return "toml";
  if (/\.(ya?ml|ini|json)$/i.test(file)) return "ansible";
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return "toml";
  }
  if (text.startsWith("#!") && isExecutable(file)) return "script";
  try {
    parseToml(text);
    return "toml";
  } catch {
    return looksLikeIni(text) ? "ansible" : "toml";
  }
}

/** Ansible INI: `[group]`, `[group:vars]`, `[group:children]` headers and `host key=value` lines. */
function looksLikeIni(text: string): boolean {
  const lines = text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#") && !line.startsWith(";"));
  return (
    lines.length > 0 &&
    lines.every(
      (line) =>
        /^\[[^\]\s]+\]$/.test(line) ||
        /^[^\s=[\]]+(\s+[^\s=]+=("[^"]*"|'[^']*'|\S*))*$/.test(line) ||
        /^[^\s=]+\s*=\s*\S.*$/.test(line),
    )
  );
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

type ListRead = { ok: true; list: AnsibleList } | { ok: false; problems: Problem[] };

function runAnsibleInventory(source: string, env: Env | undefined): ListRead {
  const command = "ansible-inventory";
  // A source no plugin can parse is an error, not an empty inventory with a warning.
  const strict = {
    ANSIBLE_INVENTORY_UNPARSED_FAILED: "True",
    ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED: "True",
    ANSIBLE_NOCOLOR: "1",
  };
  const run = run_(
    command,
    ["-i", source, "--list"],
    ANSIBLE_TIMEOUT_MS,
    env === undefined ? undefined : { ...env, ...strict },
  );
  if (run.missing)
    return fail(source, `${command} is not installed: it reads Ansible inventories`, {
      hint: "install Ansible (apt install ansible-core, or pipx install ansible-core); an executable inventory script needs none: --inventory-format script",
    });
  if (run.error !== undefined) return fail(source, `${command} -i ${source} --list ${run.error}`);
  return parseList(source, run.stdout, `${command} --list`);
}

function runScript(script: string, env: Env | undefined): ListRead {
  const list = run_(script, ["--list"], SCRIPT_TIMEOUT_MS, env);
  if (list.missing)
    return fail(script, "inventory script does not exist", { hint: "check the --inventory path" });
  if (list.error !== undefined)
    return fail(script, `inventory script --list ${list.error}`, {
      hint: "the script must be executable (chmod +x) and print Ansible's JSON inventory for --list",
    });
  const parsed = parseList(script, list.stdout, "--list");
  if (!parsed.ok) return parsed;
  // Without _meta the protocol asks each host's vars with --host NAME.
  if (parsed.list["_meta"] !== undefined) return parsed;
  const hostvars: Record<string, unknown> = {};
  const problems: Problem[] = [];
  for (const host of listedHosts(parsed.list)) {
    const run = run_(script, ["--host", host], SCRIPT_TIMEOUT_MS, env);
    if (run.error !== undefined) {
      problems.push({ file: script, path: "", message: `inventory script --host ${host} ${run.error}` });
      continue;
    }
    const vars = parseJson(run.stdout);
    if (vars === null || typeof vars !== "object" || Array.isArray(vars))
      problems.push({
        file: script,
        path: "",
        message: `inventory script --host ${host} did not print a JSON object`,
      });
    else hostvars[host] = vars;
  }
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, list: { ...parsed.list, _meta: { hostvars } } };
}

function listedHosts(list: AnsibleList): string[] {
  const hosts = new Set<string>();
  for (const [name, group] of Object.entries(list)) {
    if (name === "_meta") continue;
    const members = Array.isArray(group)
      ? group
      : group !== null && typeof group === "object"
        ? (group as Record<string, unknown>)["hosts"]
        : [];
    if (Array.isArray(members)) for (const host of members) if (typeof host === "string") hosts.add(host);
  }
  return [...hosts];
}

function parseList(source: string, stdout: string, what: string): ListRead {
  const list = parseJson(stdout);
  if (list === null || typeof list !== "object" || Array.isArray(list))
    return fail(source, `${what} did not print a JSON object`, {
      hint: "an inventory script prints Ansible's JSON: groups with hosts, vars and children, and _meta.hostvars",
    });
  return { ok: true, list: list as AnsibleList };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

interface Run {
  stdout: string;
  missing: boolean;
  /** "exited with status N: STDERR" and the like; undefined when it succeeded. */
  error?: string;
}

type Env = Record<string, string | undefined>;

/** No shell: an argv, a time limit, stderr kept for the message. `env` undefined: ours. */
function run_(command: string, args: string[], timeout: number, env: Env | undefined): Run {
  const run = spawnSync(command, args, {
    encoding: "utf8",
    timeout,
    maxBuffer: 256 * 1024 * 1024,
    stdio: ["ignore", "pipe", "pipe"],
    env,
  });
  const failure = run.error as NodeJS.ErrnoException | undefined;
  if (failure?.code === "ENOENT") return { stdout: "", missing: true };
  const stderr = run.stderr.trim().split("\n").slice(-20).join("\n");
  const why =
    failure?.code === "ETIMEDOUT"
      ? `did not finish within ${timeout / 1000} s`
      : failure?.code === "EACCES"
        ? "is not executable"
        : failure !== undefined
          ? `failed: ${failure.message}`
          : run.signal !== null
            ? `was killed by ${run.signal}`
            : run.status !== 0
              ? `exited with status ${run.status}`
              : // ansible-inventory only warns about a source it cannot parse when it runs in an
                // environment without ANSIBLE_INVENTORY_UNPARSED_FAILED.
                /\[WARNING\]: (Unable|Failed) to parse/.test(run.stderr)
                ? "could not parse it"
                : undefined;
  if (why === undefined) return { stdout: run.stdout, missing: false };
  return { stdout: "", missing: false, error: stderr === "" ? why : `${why}: ${stderr}` };
}

function fail(
  file: string,
  message: string,
  extra: { hint?: string } = {},
): { ok: false; problems: Problem[] } {
  return { ok: false, problems: [{ file, path: "", message, ...extra }] };
}
