// `ssh_config`: a host's effective SSH settings from OpenSSH's own resolver (`ssh -G`), never a
// parser of ours, so Host/Match/Include and first-value-wins behave exactly as in ssh.
import { spawnSync } from "node:child_process";
import { statSync } from "node:fs";
import { createHash } from "node:crypto";
import { homedir, hostname as localHostname, userInfo } from "node:os";
import { formatTomlPath, type Problem } from "../errors.js";
import type { HostSettingsInput } from "./schema.js";
import { parseSshProxyJump } from "./jump-hosts.js";

/** `ssh -G` output: each (lowercase) keyword with its values in order (IdentityFile repeats). */
export type SshDump = Map<string, string[]>;

/** What a host's spec needs from us; the fields are HostSpec's. */
export interface ConnectionSpec {
  name: string;
  address: string;
  user: string;
  port: number;
  identity_file: string | null;
  known_hosts: string;
  known_hosts_also?: string[];
  host_key_policy: "strict" | "accept-new";
  connect_timeout_s: number;
  keepalive_interval_s: number;
  origins?: Record<string, string>;
  proxy_jump?: string[];
}

/** The connection settings `validate --verbose` explains, with the inventory key each comes from. */
export const ORIGIN_KEYS = [
  "address",
  "user",
  "port",
  "identity_file",
  "known_hosts",
  "host_key_policy",
  "connect_timeout",
  "keepalive_interval",
] as const;

const SSH_G_TIMEOUT_MS = 10_000;

/** Run `ssh -G`: no shell, a bounded time, the alias after `--` (the schema forbids a leading `-` too). */
export function runSshG(
  alias: string,
  configFile: string | null,
): { ok: true; dump: SshDump } | { ok: false; message: string } {
  const args = ["-G", ...(configFile === null ? [] : ["-F", configFile]), "--", alias];
  const run = spawnSync("ssh", args, {
    encoding: "utf8",
    timeout: SSH_G_TIMEOUT_MS,
    stdio: ["ignore", "pipe", "pipe"],
    shell: false,
  });
  if (run.error !== undefined) {
    const code = (run.error as NodeJS.ErrnoException).code;
    if (code === "ENOENT")
      return { ok: false, message: "OpenSSH's ssh client is not installed (ssh -G resolves ssh_config)" };
    if (code === "ETIMEDOUT")
      return {
        ok: false,
        message: `ssh -G took longer than ${SSH_G_TIMEOUT_MS / 1000} s (a slow Match exec?)`,
      };
    return { ok: false, message: `ssh -G failed: ${run.error.message}` };
  }
  if (run.status !== 0) {
    const why = run.stderr
      .split("\n")
      .filter((line) => line.trim() !== "" && !line.startsWith("Pseudo-terminal"))
      .slice(0, 3)
      .join("; ");
    return { ok: false, message: `ssh -G exited with ${run.status ?? run.signal}: ${why}` };
  }
  return { ok: true, dump: parseSshDump(run.stdout) };
}

export function parseSshDump(text: string): SshDump {
  const dump: SshDump = new Map();
  for (const line of text.split("\n")) {
    const match = /^(\S+)\s+(.*)$/.exec(line.trim());
    if (match === null) continue;
    const key = (match[1] ?? "").toLowerCase();
    dump.set(key, [...(dump.get(key) ?? []), match[2] ?? ""]);
  }
  return dump;
}

// How ssh_config(5) spells the keywords ssh -G prints in lowercase, for messages.
const SPELLING: Record<string, string> = {
  hostname: "HostName",
  port: "Port",
  user: "User",
  identityfile: "IdentityFile",
  proxyjump: "ProxyJump",
  proxycommand: "ProxyCommand",
  userknownhostsfile: "UserKnownHostsFile",
  globalknownhostsfile: "GlobalKnownHostsFile",
  stricthostkeychecking: "StrictHostKeyChecking",
  connecttimeout: "ConnectTimeout",
  serveraliveinterval: "ServerAliveInterval",
  certificatefile: "CertificateFile",
  controlmaster: "ControlMaster",
  controlpath: "ControlPath",
  controlpersist: "ControlPersist",
  hostkeyalias: "HostKeyAlias",
  identityagent: "IdentityAgent",
  pkcs11provider: "PKCS11Provider",
  securitykeyprovider: "SecurityKeyProvider",
  bindaddress: "BindAddress",
  bindinterface: "BindInterface",
  addressfamily: "AddressFamily",
  canonicalizehostname: "CanonicalizeHostname",
  localcommand: "LocalCommand",
  remotecommand: "RemoteCommand",
  hostkeyalgorithms: "HostKeyAlgorithms",
  kexalgorithms: "KexAlgorithms",
  ciphers: "Ciphers",
  macs: "MACs",
  pubkeyacceptedalgorithms: "PubkeyAcceptedAlgorithms",
};
const spell = (key: string) => SPELLING[key] ?? key;

/** Keywords that cannot change how an exec without a terminal or forwarding connects: not needed. */
const IRRELEVANT = new Set([
  "host",
  "loglevel",
  "logverbose",
  "syslogfacility",
  "batchmode",
  "visualhostkey",
  "fingerprinthash",
  "escapechar",
  "enableescapecommandline",
  "requesttty",
  "forwardagent",
  "forwardx11",
  "forwardx11trusted",
  "forwardx11timeout",
  "xauthlocation",
  "clearallforwardings",
  "exitonforwardfailure",
  "gatewayports",
  "localforward",
  "remoteforward",
  "dynamicforward",
  "permitremoteopen",
  "streamlocalbindmask",
  "streamlocalbindunlink",
  "tunneldevice",
  "sendenv",
  "setenv",
  "compression",
  "tcpkeepalive",
  "serveralivecountmax",
  "connectionattempts",
  "numberofpasswordprompts",
  "passwordauthentication",
  "kbdinteractiveauthentication",
  "kbdinteractivedevices",
  "gssapiauthentication",
  "gssapidelegatecredentials",
  "gssapikeyexchange",
  "gssapitrustdns",
  "gssapirenewalforcesrekey",
  "gssapikexalgorithms",
  "hostbasedauthentication",
  "preferredauthentications",
  "identitiesonly",
  "addkeystoagent",
  "hashknownhosts",
  "updatehostkeys",
  "checkhostip",
  "nohostauthenticationforlocalhost",
  "verifyhostkeydns",
  "permitlocalcommand",
  "canonicaldomains",
  "canonicalizefallbacklocal",
  "canonicalizemaxdots",
  "canonicalizepermittedcnames",
  "ipqos",
  "rekeylimit",
  "requiredrsasize",
  "enablesshkeysign",
]);

const HINTS: Record<string, string> = {
  proxycommand: "rlvm-fleet makes its own connections: give the host an address it reaches directly",
  certificatefile: "SSH certificates are not supported: authorize a plain key (identity_file) on the host",
  controlmaster: "rlvm-fleet makes its own connections and cannot share a master",
  controlpath: "rlvm-fleet makes its own connections and cannot share a master",
  controlpersist: "rlvm-fleet makes its own connections and cannot share a master",
  hostkeyalias: "known_hosts is looked up by the host's address: record its key under that address",
  identityagent: "the SSH agent used is SSH_AUTH_SOCK's: point SSH_AUTH_SOCK at that agent instead",
};

export interface SshConfigContext {
  /** The inventory file and the host, for problems. */
  inventoryFile: string;
  /** The ssh_config file (absolute), or null for ssh's own (~/.ssh/config, then the system one). */
  configFile: string | null;
  /** The settings the inventory itself sets for the host (defaults, groups, host): they win. */
  explicit: HostSettingsInput;
  /** The alias given to ssh -G: the inventory's address, or the host's name. */
  alias: string;
}

/** The local facts tokens expand to; a parameter so tests can pin them. */
export interface LocalIdentity {
  home: string;
  user: string;
  uid: number;
  hostname: string;
  exists: (path: string) => boolean;
}

/**
 * The host's spec with what `ssh -G` resolved for it put in, where the inventory sets nothing.
 * `dump` is ssh -G for the alias, `baseline` the same with `-F /dev/null`: what differs is what the
 * config set, so ssh's built-in defaults (IdentityFile ~/.ssh/id_rsa, …) never count.
 */
export function mapSshConfig<T extends ConnectionSpec>(
  spec: T,
  dump: SshDump,
  baseline: SshDump,
  ctx: SshConfigContext,
  local: LocalIdentity,
): { ok: true; host: T } | { ok: false; problems: Problem[] } {
  const source = `ssh_config ${ctx.configFile ?? "~/.ssh/config"}`;
  const problems: Problem[] = [];
  const refuse = (setting: string, message: string, hint: string) =>
    problems.push({
      file: ctx.inventoryFile,
      path: formatTomlPath(["hosts", spec.name, "ssh_config"]),
      message: `host "${spec.name}": ${setting} from ${source}: ${message}`,
      hint,
    });
  const set = (key: string): string[] | undefined => {
    const values = dump.get(key) ?? [];
    return JSON.stringify(values) === JSON.stringify(baseline.get(key) ?? []) ? undefined : values;
  };
  const first = (key: string) => set(key)?.[0];
  const host = { ...spec, origins: { ...spec.origins } };
  const take = (key: (typeof ORIGIN_KEYS)[number], explicit: unknown, apply: () => boolean) => {
    if (explicit === undefined && apply()) host.origins[key] = source;
  };
  const undo = `or set ssh_config = false for this host`;

  for (const key of dump.keys()) {
    if (set(key) === undefined || IRRELEVANT.has(key) || HONOURED.has(key)) continue;
    refuse(
      spell(key),
      `${spell(key)} changes how the connection is made and rlvm-fleet cannot honour it`,
      `${HINTS[key] ?? `remove ${spell(key)} for this host`}; exclude the host from that block of ${ctx.configFile ?? "~/.ssh/config"}, point ssh_config at a file without it, ${undo}`,
    );
  }
  // ProxyJump becomes proxy_jump (the inventory's wins); its hops are resolved with the rest.
  const jump = first("proxyjump");
  if (jump !== undefined && ctx.explicit.proxy_jump === undefined) {
    const parsed = parseSshProxyJump(jump);
    if (!parsed.ok) refuse("ProxyJump", `ProxyJump ${jump}: ${parsed.message}`, `fix ProxyJump, ${undo}`);
    else {
      host.proxy_jump = parsed.list;
      host.origins["proxy_jump"] = source;
    }
  }

  const hostName = first("hostname");
  take("address", undefined, () => {
    if (hostName === undefined) return false;
    if (!/^[A-Za-z0-9_.:%][A-Za-z0-9_.:%-]*$/.test(hostName)) {
      refuse("HostName", `"${hostName}" is not a hostname or an IP address`, "fix HostName");
      return false;
    }
    host.address = hostName;
    return true;
  });
  const port = first("port");
  take("port", ctx.explicit.port, () => {
    if (port === undefined) return false;
    host.port = Number(port);
    return true;
  });
  // %r in IdentityFile is the user finally used, so User is settled first.
  const tokens = (remoteUser: string | null): Record<string, string> => {
    const base: Record<string, string> = {
      "%": "%",
      d: local.home,
      h: host.address,
      i: String(local.uid),
      k: ctx.alias,
      L: local.hostname.split(".")[0] ?? local.hostname,
      l: local.hostname,
      n: ctx.alias,
      p: String(host.port),
      u: local.user,
    };
    if (remoteUser === null) return base;
    const hash = createHash("sha1").update(`${local.hostname}${host.address}${host.port}${remoteUser}`);
    return { ...base, r: remoteUser, C: hash.digest("hex") };
  };
  const user = first("user");
  take("user", ctx.explicit.user, () => {
    if (user === undefined) return false;
    const expanded = expandTokens(user, tokens(null));
    if (!expanded.ok) {
      refuse(
        "User",
        `User ${user}: ${expanded.message}`,
        "write the user name out in ssh_config, or set user in the inventory",
      );
      return false;
    }
    if (!/^[A-Za-z_][A-Za-z0-9_.-]*\$?$/.test(expanded.value)) {
      refuse(
        "User",
        `User "${expanded.value}" is not a login name`,
        "fix User, or set user in the inventory",
      );
      return false;
    }
    host.user = expanded.value;
    return true;
  });
  const identities = set("identityfile");
  take("identity_file", ctx.explicit.identity_file, () => {
    if (identities === undefined) return false;
    const candidates: string[] = [];
    for (const raw of identities) {
      const expanded = expandTokens(raw, tokens(host.user));
      if (!expanded.ok) {
        refuse(
          "IdentityFile",
          `IdentityFile ${raw}: ${expanded.message}`,
          "write the path out, or set identity_file in the inventory",
        );
        return false;
      }
      candidates.push(expandTilde(expanded.value, local.home));
    }
    // ssh offers every candidate in turn; we load one key: the first that exists.
    const found = candidates.find((path) => local.exists(path));
    if (found === undefined) {
      refuse(
        "IdentityFile",
        `none of its files exists: ${candidates.join(", ")}`,
        "fix IdentityFile, or set identity_file in the inventory",
      );
      return false;
    }
    host.identity_file = found;
    return true;
  });
  const knownHosts = set("userknownhostsfile");
  const global = set("globalknownhostsfile") ?? [];
  take("known_hosts", ctx.explicit.known_hosts, () => {
    if (knownHosts === undefined) return false;
    const files = knownHosts.flatMap((line) => line.split(/\s+/)).filter((f) => f !== "");
    if (files.includes("none") || files.some((f) => f.includes("%"))) {
      refuse(
        "UserKnownHostsFile",
        `UserKnownHostsFile ${files.join(" ")} cannot be used`,
        "name the known_hosts files, or set known_hosts in the inventory",
      );
      return false;
    }
    // As in ssh: the first file is where accept-new records a key; every one is read.
    host.known_hosts = files[0] ?? host.known_hosts;
    host.known_hosts_also = files.slice(1);
    return true;
  });
  if (global.length > 0) {
    const files = global.flatMap((line) => line.split(/\s+/)).filter((f) => f !== "" && f !== "none");
    host.known_hosts_also = [...(host.known_hosts_also ?? []), ...files];
  }
  const strict = first("stricthostkeychecking");
  take("host_key_policy", ctx.explicit.host_key_policy, () => {
    if (strict === undefined) return false;
    if (strict === "accept-new") host.host_key_policy = "accept-new";
    else if (strict === "yes" || strict === "true" || strict === "ask") host.host_key_policy = "strict";
    else {
      refuse(
        "StrictHostKeyChecking",
        `StrictHostKeyChecking ${strict} would connect to any host that answers: refused`,
        'set StrictHostKeyChecking accept-new (or host_key_policy = "accept-new") to record unknown keys',
      );
      return false;
    }
    return true;
  });
  const timeout = first("connecttimeout");
  take("connect_timeout", ctx.explicit.connect_timeout, () => {
    if (timeout === undefined || !(Number(timeout) > 0)) return false;
    host.connect_timeout_s = Number(timeout);
    return true;
  });
  const alive = first("serveraliveinterval");
  take("keepalive_interval", ctx.explicit.keepalive_interval, () => {
    if (alive === undefined || !(Number(alive) >= 0)) return false;
    host.keepalive_interval_s = Number(alive);
    return true;
  });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, host };
}

const HONOURED = new Set([
  "hostname",
  "port",
  "user",
  "identityfile",
  "proxyjump",
  "userknownhostsfile",
  "globalknownhostsfile",
  "stricthostkeychecking",
  "connecttimeout",
  "serveraliveinterval",
]);

/** ssh_config(5) TOKENS: `%x` from the table, `%%` a percent sign; anything else is refused by name. */
export function expandTokens(
  value: string,
  tokens: Record<string, string>,
): { ok: true; value: string } | { ok: false; message: string } {
  if (/\$\{[^}]*\}/.test(value)) {
    return {
      ok: false,
      message: `environment variables (${/\$\{[^}]*\}/.exec(value)?.[0]}) are not expanded by rlvm-fleet`,
    };
  }
  let out = "";
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c !== "%") {
      out += c;
      continue;
    }
    const token = value[i + 1];
    const replacement = token === undefined ? undefined : tokens[token];
    if (replacement === undefined) {
      return {
        ok: false,
        message: token === undefined ? "a lone % at the end" : `the token %${token} is not supported here`,
      };
    }
    out += replacement;
    i++;
  }
  return { ok: true, value: out };
}

function expandTilde(path: string, home: string): string {
  if (path === "~") return home;
  return path.startsWith("~/") ? `${home}/${path.slice(2)}` : path;
}

/** Where each connection setting came from before ssh_config: the inventory, or the built-in default. */
export function inventoryOrigins(explicit: HostSettingsInput, hasAddress: boolean): Record<string, string> {
  const origins: Record<string, string> = {};
  for (const key of ORIGIN_KEYS) {
    const set = key === "address" ? hasAddress : explicit[key] !== undefined;
    origins[key] = set ? "inventory" : "default";
  }
  origins["proxy_jump"] = explicit.proxy_jump === undefined ? "default" : "inventory";
  return origins;
}

/**
 * The inventory's part: with `ssh_config` set (true or a path) for the host, run ssh -G twice and
 * map; the inventory's own keys win. Without it, the spec as it is, with its origins.
 */
export function applySshConfig<T extends ConnectionSpec>(
  spec: T,
  ctx: Omit<SshConfigContext, "configFile"> & { configFile: string | null | false },
): { ok: true; host: T } | { ok: false; problems: Problem[] } {
  const withOrigins = {
    ...spec,
    origins: { ...inventoryOrigins(ctx.explicit, ctx.alias !== spec.name), ...spec.origins },
  };
  if (ctx.configFile === false) return { ok: true, host: withOrigins };
  const configFile = ctx.configFile;
  const problem = (message: string): { ok: false; problems: Problem[] } => ({
    ok: false,
    problems: [
      {
        file: ctx.inventoryFile,
        path: formatTomlPath(["hosts", spec.name, "ssh_config"]),
        message: `host "${spec.name}": cannot resolve ${configFile ?? "~/.ssh/config"}: ${message}`,
        hint: "fix the ssh_config file (ssh -G shows what it resolves to), or set ssh_config = false for this host",
      },
    ],
  });
  const dump = runSshG(ctx.alias, configFile);
  if (!dump.ok) return problem(dump.message);
  const baseline = runSshG(ctx.alias, "/dev/null");
  if (!baseline.ok) return problem(baseline.message);
  return mapSshConfig(withOrigins, dump.dump, baseline.dump, { ...ctx, configFile }, defaultLocalIdentity());
}

function defaultLocalIdentity(): LocalIdentity {
  const info = userInfo();
  return { home: homedir(), user: info.username, uid: info.uid, hostname: localHostname(), exists: isFile };
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
