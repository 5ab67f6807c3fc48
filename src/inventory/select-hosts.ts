// `--limit` as Ansible reads it: `a,b` or `a:b` union, `!x` exclusion, `&x` intersection, globs,
// and the implicit group `all`.
import { UsageError } from "../errors.js";
import { didYouMean } from "../validation.js";
import type { HostSpec, Inventory } from "./load-inventory.js";

export function selectHosts(inventory: Inventory, pattern: string | undefined): HostSpec[] {
  if (pattern === undefined || pattern.trim() === "") return inventory.hosts;
  const terms = pattern
    .split(/[,:]/)
    .map((t) => t.trim())
    .filter((t) => t !== "");
  const union = new Set<string>();
  const intersections: Set<string>[] = [];
  const exclusions = new Set<string>();
  const unmatched: string[] = [];
  for (const term of terms) {
    const kind = term.startsWith("!") ? "exclude" : term.startsWith("&") ? "intersect" : "include";
    const body = kind === "include" ? term : term.slice(1);
    const matched = hostsMatching(inventory, body);
    if (matched === null) {
      unmatched.push(body);
      continue;
    }
    if (kind === "include") matched.forEach((h) => union.add(h));
    else if (kind === "exclude") matched.forEach((h) => exclusions.add(h));
    else intersections.push(matched);
  }
  if (unmatched.length > 0) {
    const names = [...inventory.hosts.map((h) => h.name), ...inventory.groups.keys(), "all"];
    throw new UsageError(`--limit "${pattern}" names what the inventory does not have`, {
      problems: unmatched.map((name) => {
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
  // Like Ansible: a pattern of only exclusions or intersections starts from all hosts.
  const base = terms.some((t) => !t.startsWith("!") && !t.startsWith("&"))
    ? union
    : new Set(inventory.hosts.map((h) => h.name));
  return inventory.hosts.filter(
    (h) => base.has(h.name) && !exclusions.has(h.name) && intersections.every((set) => set.has(h.name)),
  );
}

/** Hosts a term names (a host, a group with its children, `all`, or a glob over both); null if none. */
function hostsMatching(inventory: Inventory, term: string): Set<string> | null {
  const matches = globMatcher(term);
  const result = new Set<string>();
  let matchedSomething = false;
  if (matches("all")) {
    inventory.hosts.forEach((h) => result.add(h.name));
    matchedSomething = true;
  }
  for (const host of inventory.hosts) {
    if (matches(host.name)) {
      result.add(host.name);
      matchedSomething = true;
    }
  }
  for (const group of inventory.groups.keys()) {
    if (matches(group)) {
      matchedSomething = true;
      for (const host of inventory.hosts) if (host.groups.includes(group)) result.add(host.name);
    }
  }
  return matchedSomething ? result : null;
}

function globMatcher(glob: string): (name: string) => boolean {
  if (!/[*?[]/.test(glob)) return (name) => name === glob;
  let source = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] ?? "";
    if (c === "*") source += ".*";
    else if (c === "?") source += ".";
    else if (c === "[") {
      const end = glob.indexOf("]", i + 1);
      if (end === -1) source += "\\[";
      else {
        const body = glob.slice(i + 1, end).replace(/\\/g, "\\\\");
        source += `[${body.startsWith("!") ? `^${body.slice(1)}` : body}]`;
        i = end;
      }
    } else source += c.replace(/[.+^${}()|\\\]-]/g, "\\$&");
  }
  const regex = new RegExp(`^${source}$`);
  return (name) => regex.test(name);
}
