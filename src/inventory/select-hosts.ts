// `--limit` exactly as Ansible 2.14 reads it (ansible/inventory/manager.py): split on commas, or
// else on colons and whitespace unless the whole pattern is an address; `!x` excludes and `&x`
// intersects after every plain part; fnmatch globs (`[!x]` negates, `[^x]` is a literal ^), `~regex`,
// subscripts `[N]`, `[-N]`, `[N:M]`, `[N:]` as positions, and the implicit groups `all` and
// `ungrouped`. One difference, on purpose: a part that matches nothing is an error with a
// did-you-mean, where Ansible ignores it with a warning. That refuses a run, never selects
// different hosts. test/unit/inventory/limit-differential.test.ts checks this against Ansible.
// `@FILE` parts read one pattern per line from FILE, as Ansible's subset() does.
import { readFileSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { UsageError } from "../errors.js";
import { didYouMean } from "../validation.js";
import type { HostSpec, Inventory } from "./load-inventory.js";

export function selectHosts(inventory: Inventory, pattern: string | undefined, cwd = "."): HostSpec[] {
  if (pattern === undefined || pattern.trim() === "") return inventory.hosts;
  const model = new InventoryModel(inventory);
  const unmatched: string[] = [];
  const parts = splitHostPattern(pattern).flatMap((part) =>
    part[0] === "@" ? limitFileLines(part.slice(1), cwd) : [part],
  );
  const selected = new Set(model.evaluate(parts, unmatched, pattern));
  if (unmatched.length > 0) {
    const names = [...inventory.hosts.map((h) => h.name), ...model.groupNames];
    throw new UsageError(`--limit "${pattern}" names what the inventory does not have`, {
      problems: [...new Set(unmatched)].map((name) => {
        const close = didYouMean(name, names);
        return {
          file: inventory.file,
          path: "",
          message: `--limit: "${name}" matches no host or group${close === undefined ? "" : ` (did you mean "${close}"?)`}`,
        };
      }),
      hint: "list the hosts and groups with `rlvm-fleet validate`",
    });
  }
  return inventory.hosts.filter((h) => selected.has(h.name));
}

/**
 * The patterns of a `--limit @FILE` file: each line, stripped, is one whole pattern (never split
 * again); blank lines are skipped. A file with none is refused: Ansible would then select every host,
 * which is never what rerunning an empty --retry-file means.
 */
function limitFileLines(path: string, cwd: string): string[] {
  const file = resolve(cwd, path);
  let text: string;
  try {
    if (!statSync(file).isFile())
      throw new UsageError(`--limit @${path}: ${file} is not a file`, {
        hint: "give a file of host names or patterns, one per line",
      });
    text = readFileSync(file, "utf8");
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(
      `--limit @${path}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
      {
        hint: "give a file of host names or patterns, one per line, such as the one --retry-file writes",
      },
    );
  }
  const lines = text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "");
  if (lines.length === 0)
    throw new UsageError(`--limit @${path}: ${file} names no host`, {
      hint: "an empty --retry-file means every host of that run ended ok or partial: there is nothing to run again",
    });
  return lines;
}

/** Ansible's split_host_pattern: the parts of a pattern, stripped, without empty ones. */
export function splitHostPattern(pattern: string): string[] {
  let parts: string[];
  if (pattern.includes(",")) parts = pattern.split(",");
  else if (isAddress(pattern)) parts = [pattern];
  // The colon-separated form: runs of anything but whitespace, ':' and brackets, or a whole [...].
  else parts = pattern.match(/(?:[^\s:[\]]|\[[^\]]*\])+/g) ?? [];
  return parts.map((p) => p.trim()).filter((p) => p !== "");
}

// ansible/parsing/utils/addresses.py, with ranges allowed: a hostname, IPv4 or IPv6 address (each
// may hold [x:y] ranges), with an optional :port. Python's \w is Unicode: so is \p{L}\p{N}_ here.
const NUMERIC_RANGE = String.raw`\[(?:[0-9]+:[0-9]+)(?::[0-9]+)?\]`;
const HEX_RANGE = String.raw`\[(?:[0-9a-f]+:[0-9a-f]+)(?::[0-9]+)?\]`;
const ALNUM_RANGE = String.raw`\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]`;
const V6 = `(?:[0-9a-f]{1,4}|${HEX_RANGE})`;
const V4 = `(?:[01]?[0-9]{1,2}|2[0-4][0-9]|25[0-5]|${NUMERIC_RANGE})`;
const LABEL = String.raw`(?:[\p{L}\p{N}_]|${ALNUM_RANGE})(?:[\p{L}\p{N}_-]|${ALNUM_RANGE})*(?<![_-])`;
const ADDRESS = {
  bracketedHostPort: /^\[(.+)\]:([0-9]+)$/su,
  hostPort: /^((?:[^:[\]]|\[[^\]]*\])*):([0-9]+)$/su,
  ipv4: new RegExp(`^(?:${V4}\\.){3}${V4}$`, "iu"),
  ipv6: new RegExp(
    `^(?:(?:${V6}:){7}${V6}|(?:${V6}:){1,6}:|(?:${V6}:)(?::${V6}){1,6}|(?:${V6}:){2}(?::${V6}){1,5}|` +
      `(?:${V6}:){3}(?::${V6}){1,4}|(?:${V6}:){4}(?::${V6}){1,3}|(?:${V6}:){5}(?::${V6}){1,2}|` +
      `(?:${V6}:){6}(?::${V6})|:(?::${V6}){1,6}|${V6}?::|(?:0:){6}(?:${V6}\\.){3}${V6}|` +
      `::(?:ffff:)?(?:${V6}\\.){3}${V6}|(?:0:){5}ffff:(?:${V6}\\.){3}${V6})$`,
    "iu",
  ),
  hostname: new RegExp(`^${LABEL}(?:\\.${LABEL})*$`, "iu"),
};

function isAddress(text: string): boolean {
  let address = text;
  // As parse_address does: both port forms are tried, the second on what the first left.
  for (const form of [ADDRESS.bracketedHostPort, ADDRESS.hostPort]) {
    const match = form.exec(address);
    if (match !== null) address = match[1] ?? "";
  }
  return [ADDRESS.ipv4, ADDRESS.ipv6, ADDRESS.hostname].some((form) => form.test(address));
}

/** `(.+)[N]`, `(.+)[-N]`, `(.+)[N:M]`, `(.+)[N:]` (and the old `[N-M]`). */
const SUBSCRIPT = /^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$/s;

type Subscript = { start: number; end: number | null };

/** The inventory as Ansible's InventoryManager sees it: hosts, groups, all and ungrouped. */
class InventoryModel {
  readonly hostNames: string[];
  readonly groupNames: string[];
  private readonly groupHosts = new Map<string, string[]>();
  private readonly cache = new Map<string, string[]>();

  constructor(inventory: Inventory) {
    this.hostNames = inventory.hosts.map((h) => h.name);
    this.groupHosts.set("all", this.hostNames);
    this.groupHosts.set(
      "ungrouped",
      inventory.hosts.filter((h) => h.groups.length === 0).map((h) => h.name),
    );
    for (const name of inventory.groups.keys()) this.groupHosts.set(name, hostsOfGroup(inventory, name));
    this.groupNames = [...this.groupHosts.keys()];
  }

  /** Ansible's _evaluate_patterns: plain parts first, then `&`, then `!`. */
  evaluate(parts: string[], unmatched: string[], pattern: string): string[] {
    const plain = parts.filter((p) => p[0] !== "!" && p[0] !== "&");
    const ordered = [
      ...(plain.length === 0 ? ["all"] : plain),
      ...parts.filter((p) => p[0] === "&"),
      ...parts.filter((p) => p[0] === "!"),
    ];
    let hosts: string[] = [];
    for (const part of ordered) {
      if (this.hostNames.includes(part)) {
        hosts.push(part);
        continue;
      }
      const that = this.matchOne(part, unmatched, pattern);
      if (part[0] === "!") {
        const set = new Set(that);
        hosts = hosts.filter((h) => !set.has(h));
      } else if (part[0] === "&") {
        const set = new Set(that);
        hosts = hosts.filter((h) => set.has(h));
      } else {
        const existing = new Set(hosts);
        hosts.push(...that.filter((h) => !existing.has(h)));
      }
    }
    return hosts;
  }

  /** Ansible's _match_one_pattern: the hosts of one part (its & or ! removed), subscript applied. */
  private matchOne(part: string, unmatched: string[], pattern: string): string[] {
    const body = part[0] === "!" || part[0] === "&" ? part.slice(1) : part;
    if (body === "")
      throw new UsageError(`--limit "${pattern}": "${part}" is missing the host or group it applies to`);
    const cached = this.cache.get(body);
    if (cached !== undefined) return cached;
    const { expr, subscript } = splitSubscript(body);
    const hosts = applySubscript(this.enumerate(expr, unmatched, pattern), subscript, body, pattern);
    this.cache.set(body, hosts);
    return hosts;
  }

  /** Ansible's _enumerate_matches: the matching groups' hosts, and hosts when the part is a glob. */
  private enumerate(expr: string, unmatched: string[], pattern: string): string[] {
    const matches = matcher(expr, pattern);
    const groups = this.groupNames.filter(matches);
    const results = groups.flatMap((g) => this.groupHosts.get(g) ?? []);
    if (groups.length === 0 || expr[0] === "~" || /[.?*[]/.test(expr))
      results.push(...this.hostNames.filter(matches));
    if (results.length === 0 && groups.length === 0 && expr !== "all") unmatched.push(expr);
    return results;
  }
}

/**
 * A group's hosts in Ansible's order: its own, then its children's level by level, each once. (Beyond
 * the children, Ansible's own order depends on set iteration; this one is the declaration order.)
 */
function hostsOfGroup(inventory: Inventory, name: string): string[] {
  const hosts: string[] = [];
  const seenGroups = new Set<string>([name]);
  let level = [name];
  while (level.length > 0) {
    const next: string[] = [];
    for (const groupName of level) {
      const group = inventory.groups.get(groupName);
      for (const host of group?.hosts ?? []) if (!hosts.includes(host)) hosts.push(host);
      for (const child of group?.children ?? [])
        if (!seenGroups.has(child)) {
          seenGroups.add(child);
          next.push(child);
        }
    }
    level = next;
  }
  return hosts;
}

function splitSubscript(pattern: string): { expr: string; subscript: Subscript | null } {
  if (pattern[0] === "~") return { expr: pattern, subscript: null };
  const match = SUBSCRIPT.exec(pattern);
  if (match === null) return { expr: pattern, subscript: null };
  const [, expr = "", index, start, , end] = match;
  if (index !== undefined) return { expr, subscript: { start: Number(index), end: null } };
  return { expr, subscript: { start: Number(start), end: end === "" ? -1 : Number(end) } };
}

/** Ansible's _apply_subscript, Python's indexing and its quirks included (`[N:0]` is host N). */
function applySubscript(
  hosts: string[],
  subscript: Subscript | null,
  part: string,
  pattern: string,
): string[] {
  if (hosts.length === 0 || subscript === null) return hosts;
  const { start } = subscript;
  let { end } = subscript;
  if (end !== null && end !== 0) {
    if (end === -1) end = hosts.length - 1;
    return hosts.slice(start, end + 1);
  }
  const host = hosts[start < 0 ? hosts.length + start : start];
  if (host === undefined)
    throw new UsageError(`--limit "${pattern}": no host at the position "${part}" names`, {
      hint: `"${part.replace(/\[[^\]]*\]$/, "")}" has ${hosts.length} host(s), counted from 0`,
    });
  return [host];
}

/** Ansible's _match_list: fnmatch (case-sensitive, whole name) or `~` a Python regex from the start. */
function matcher(expr: string, pattern: string): (name: string) => boolean {
  let regex: RegExp;
  try {
    regex = expr[0] === "~" ? pythonRegex(expr.slice(1)) : new RegExp(`^(?:${fnmatchSource(expr)})$`, "s");
  } catch {
    throw new UsageError(`--limit "${pattern}": "${expr}" is not a valid host pattern`, {
      hint: "~ takes a regular expression; [ ] in a glob takes a set of characters",
    });
  }
  return (name) => regex.test(name);
}

/** Python's fnmatch.translate (3.11), as a JavaScript regex source. */
function fnmatchSource(pat: string): string {
  let out = "";
  let i = 0;
  const n = pat.length;
  while (i < n) {
    const c = pat[i++] ?? "";
    if (c === "*") {
      if (!out.endsWith(".*")) out += ".*";
    } else if (c === "?") out += ".";
    else if (c === "[") {
      let j = i;
      if (j < n && pat[j] === "!") j++;
      if (j < n && pat[j] === "]") j++;
      while (j < n && pat[j] !== "]") j++;
      if (j >= n) {
        out += "\\[";
        continue;
      }
      let stuff: string;
      if (!pat.slice(i, j).includes("-")) stuff = pat.slice(i, j).replaceAll("\\", "\\\\");
      else {
        const chunks: string[] = [];
        let k = pat[i] === "!" ? i + 2 : i + 1;
        for (;;) {
          k = pat.indexOf("-", k);
          if (k < 0 || k >= j) break;
          chunks.push(pat.slice(i, k));
          i = k + 1;
          k = k + 3;
        }
        const chunk = pat.slice(i, j);
        if (chunk !== "") chunks.push(chunk);
        else chunks[chunks.length - 1] += "-";
        for (let m = chunks.length - 1; m > 0; m--) {
          const prev = chunks[m - 1] ?? "";
          const cur = chunks[m] ?? "";
          if (prev.slice(-1) > cur.slice(0, 1)) {
            chunks[m - 1] = prev.slice(0, -1) + cur.slice(1);
            chunks.splice(m, 1);
          }
        }
        stuff = chunks.map((s) => s.replaceAll("\\", "\\\\").replaceAll("-", "\\-")).join("-");
      }
      stuff = stuff.replace(/([&~|])/g, "\\$1");
      i = j + 1;
      if (stuff === "") out += "(?!)";
      else if (stuff === "!") out += ".";
      else {
        if (stuff[0] === "!") stuff = `^${stuff.slice(1)}`;
        else if (stuff[0] === "^" || stuff[0] === "[") stuff = `\\${stuff}`;
        // A `[` inside a JavaScript set is literal; Python warns about it but means the same.
        out += `[${stuff}]`;
      }
    } else out += c.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
  }
  return out;
}

/**
 * A Python regex (re.match: anchored at the start only) as a JavaScript one. The common syntax is the
 * same; Python's spellings of named groups, \A and \Z, and leading inline flags are translated.
 */
function pythonRegex(source: string): RegExp {
  let flags = "";
  let body = source;
  const inline = /^\(\?([aiLmsux]+)\)/.exec(body);
  if (inline !== null) {
    for (const flag of inline[1] ?? "") {
      if (flag === "i" || flag === "m" || flag === "s") flags += flag;
      else if (flag !== "a" && flag !== "u") throw new Error(`unsupported flag ${flag}`);
    }
    body = body.slice(inline[0].length);
  }
  body = body
    .replace(/\(\?P</g, "(?<")
    .replace(/\(\?P=(\w+)\)/g, "\\k<$1>")
    .replace(/\\A/g, "^")
    .replace(/\\Z/g, "$(?![\\s\\S])");
  return new RegExp(`^(?:${body})`, flags);
}
