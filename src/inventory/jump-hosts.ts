// proxy_jump: each host's chain of bastions, outermost first, resolved from inventory names
// ([hosts] or [jump_hosts]) and `[user@]host[:port]` literals, with cycles and unknown names refused.
import { userInfo } from "node:os";
import { formatTomlPath, type Problem } from "../errors.js";
import { isName, NAME_RULE } from "../config/rules.js";
import { suggestion } from "../validation.js";
import { JUMP_HOST_KEYS, type HostSettingsInput, type InventoryInput } from "./schema.js";

/** One hop on the way to a host: how to connect to it and verify its key, as for a target. */
export interface JumpHop {
  /** The inventory name, or the literal as written (`user@host:port`). */
  name: string;
  address: string;
  user: string;
  port: number;
  identity_file: string | null;
  identity_passphrase_file: string | null;
  known_hosts: string;
  /** More known_hosts files read (never written), from ssh_config's UserKnownHostsFile and the like. */
  known_hosts_also?: string[];
  host_key_policy: "strict" | "accept-new";
  /** Accept ssh-dss and SHA-1 ssh-rsa host keys (OpenSSH 9 refuses them by default). */
  legacy_host_key_algorithms: boolean;
  connect_timeout_s: number;
  connect_retries: number;
  keepalive_interval_s: number;
}

/** A host of the inventory as far as jumps go: its connection settings, and its proxy_jump. */
export interface JumpSource {
  hop: JumpHop;
  /** The proxy_jump it uses, as a list, and whether it set it itself (else inherited or ssh_config). */
  proxyJump: string[] | undefined;
  own: boolean;
  /** From ssh_config's ProxyJump: a bare word that is no inventory name is a host name, as in ssh. */
  fromSshConfig?: boolean;
  /** Where its proxy_jump is written, for problems. */
  path: string;
}

export function asJumpList(value: string | string[] | undefined): string[] | undefined {
  return value === undefined ? undefined : typeof value === "string" ? [value] : value;
}

/**
 * [jump_hosts.NAME]: connection keys only, the missing ones from [defaults]; never run on. Returns
 * their sources, or problems for bad names.
 */
export function jumpHostSources(
  file: string,
  data: InventoryInput,
  groupNames: readonly string[],
  /** A host's connection from its settings, as [hosts] get theirs: the same defaults and paths. */
  connectionOf: (name: string, address: string, settings: HostSettingsInput) => JumpHop,
): { sources: Map<string, JumpSource>; problems: Problem[] } {
  const sources = new Map<string, JumpSource>();
  const problems: Problem[] = [];
  for (const [name, own] of Object.entries(data.jump_hosts ?? {})) {
    const path = formatTomlPath(["jump_hosts", name]);
    if (!isName(name)) {
      problems.push({ file, path, message: `jump host name "${name}" ${NAME_RULE}` });
      continue;
    }
    if (data.hosts[name] !== undefined || groupNames.includes(name)) {
      problems.push({
        file,
        path,
        message: `"${name}" is both a jump host and a ${data.hosts[name] !== undefined ? "host" : "group"}`,
        hint: "a host of [hosts] can be a bastion itself: remove the [jump_hosts] entry, or rename one",
      });
      continue;
    }
    const settings: HostSettingsInput = {};
    for (const key of JUMP_HOST_KEYS) {
      const value = own[key] ?? data.defaults?.[key];
      if (value !== undefined) settings[key] = value as never;
    }
    sources.set(name, {
      hop: connectionOf(name, own.address ?? name, settings),
      proxyJump: asJumpList(settings.proxy_jump),
      own: own.proxy_jump !== undefined,
      path: formatTomlPath(["jump_hosts", name, "proxy_jump"]),
    });
  }
  return { sources, problems };
}

const LITERAL = /^(?:([^@]+)@)?(\[[^\]]+\]|[^:@]+)(?::(\d+))?$/;

/** A bare word is an inventory name; a dot, `@`, `:` or brackets make it a literal address. */
function looksLiteral(element: string): boolean {
  return /[.@:[]/.test(element);
}

/**
 * Every host's chain, outermost first. An element's own proxy_jump is followed only for the first
 * element of a list (the later ones are reached through the one before, as `ssh -J a,b` does). A
 * proxy_jump a host inherits is cut where it would reach the host itself (the bastion of
 * `[defaults] proxy_jump` is reached directly); one it sets itself is a cycle.
 */
export function resolveJumpChains(
  file: string,
  sources: ReadonlyMap<string, JumpSource>,
  targets: readonly string[],
): { chains: Map<string, JumpHop[]>; problems: Problem[] } {
  const problems: Problem[] = [];
  const chains = new Map<string, JumpHop[]>();
  const known = [...sources.keys()];
  const reported = new Set<string>();
  const fail = (path: string, message: string, hint?: string) => {
    if (reported.has(message)) return;
    reported.add(message);
    problems.push({ file, path, message, ...(hint === undefined ? {} : { hint }) });
  };

  // The chain leading to `name` (not including it); null when a problem was reported.
  const chainOf = (name: string, stack: string[]): JumpHop[] | null => {
    const source = sources.get(name);
    if (source?.proxyJump === undefined) return [];
    let list = source.proxyJump;
    if (!source.own) {
      const self = list.indexOf(name);
      if (self >= 0) list = list.slice(0, self);
    }
    const hops: JumpHop[] = [];
    for (const [index, element] of list.entries()) {
      const path = `${source.path}${source.proxyJump.length > 1 ? `[${index}]` : ""}`;
      if (element === name || stack.includes(element)) {
        const cycle = [...stack.slice(stack.indexOf(element)), name, element];
        fail(
          path,
          `proxy_jump forms a cycle: ${element === name ? `${name} → ${name}` : cycle.join(" → ")}`,
          "a host cannot be reached through itself; remove one of these proxy_jump entries",
        );
        return null;
      }
      const named = sources.get(element);
      if (named !== undefined) {
        if (index === 0) {
          const before = chainOf(element, [...stack, name]);
          if (before === null) return null;
          hops.push(...before);
        }
        hops.push(named.hop);
        continue;
      }
      if (!looksLiteral(element) && source.fromSshConfig !== true) {
        fail(
          path,
          `proxy_jump names "${element}", which is not a host or jump host of the inventory${suggestion(element, known)}`,
          `declare it as [jump_hosts.${element}] with its address, or write it as "user@host:port"`,
        );
        return null;
      }
      const literal = literalHop(element);
      if (literal === null) {
        fail(path, `proxy_jump "${element}" is not "[user@]host[:port]"`);
        return null;
      }
      hops.push(literal);
    }
    return hops;
  };

  for (const name of targets) {
    const target = sources.get(name);
    if (target === undefined) continue;
    const chain = chainOf(name, []);
    if (chain === null) continue;
    chains.set(name, inheritForLiterals(chain, target.hop));
  }
  return { chains, problems };
}

type LiteralHop = JumpHop & { literal: true };

function literalHop(element: string): LiteralHop | null {
  const match = LITERAL.exec(element);
  if (match === null) return null;
  const port = match[3] === undefined ? 22 : Number(match[3]);
  if (port < 1 || port > 65535) return null;
  const address = (match[2] ?? "").replace(/^\[(.*)\]$/, "$1");
  return {
    literal: true,
    name: element,
    address,
    // As ssh -J: the local user unless one is written.
    user: match[1] ?? userInfo().username,
    port,
    identity_file: null,
    identity_passphrase_file: null,
    known_hosts: "",
    host_key_policy: "strict",
    legacy_host_key_algorithms: false,
    connect_timeout_s: 0,
    connect_retries: 0,
    keepalive_interval_s: 0,
  };
}

/** A literal hop takes its key, known_hosts, policy and timings from the host it leads to. */
function inheritForLiterals(chain: JumpHop[], target: JumpHop): JumpHop[] {
  const out: JumpHop[] = new Array<JumpHop>(chain.length);
  let next = target;
  for (let i = chain.length - 1; i >= 0; i--) {
    const hop = chain[i] as JumpHop | LiteralHop;
    if ("literal" in hop) {
      const { name, address, user, port } = hop;
      out[i] = {
        ...next,
        name,
        address,
        user,
        port,
        ...(next.known_hosts_also === undefined ? {} : { known_hosts_also: [...next.known_hosts_also] }),
      };
    } else out[i] = hop;
    next = out[i] as JumpHop;
  }
  return out;
}

/** ssh_config's ProxyJump (`a,b`, `user@host:port`, `ssh://user@host:port`, `none`) as a list. */
export function parseSshProxyJump(
  value: string,
): { ok: true; list: string[] } | { ok: false; message: string } {
  if (value === "none") return { ok: true, list: [] };
  const list: string[] = [];
  for (const raw of value.split(",")) {
    let element = raw.trim();
    if (element.startsWith("ssh://")) {
      element = element.slice("ssh://".length).replace(/\/$/, "");
      if (element.includes("/") || element.includes("?"))
        return { ok: false, message: `the URI ${raw.trim()} has a path or query, which ssh does not accept` };
    }
    if (element === "" || LITERAL.exec(element) === null)
      return { ok: false, message: `"${raw.trim()}" is not [user@]host[:port] or ssh://[user@]host[:port]` };
    list.push(element);
  }
  return { ok: true, list };
}
