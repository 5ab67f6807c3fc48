// `validate` for people: one line per host with its jobs and repositories.
import type { PlanDocument } from "../../plan/plan-document.js";
import { displayPath } from "./problems.js";
import type { Style } from "./style.js";

/** A host's connection settings (the inventory's HostSpec), and where each came from. */
export interface ConnectionSettings {
  name: string;
  address: string;
  user: string;
  port: number;
  identity_file: string | null;
  known_hosts: string;
  known_hosts_also?: string[];
  host_key_policy: string;
  connect_timeout_s: number;
  keepalive_interval_s: number;
  origins?: Record<string, string>;
  /** The bastions on the way, outermost first (proxy_jump). */
  jump?: readonly { name: string; user: string; address: string; port: number }[];
}

/** With `specs` (--verbose), each host's connection settings follow its line, with their origin. */
export function renderValidateSummary(
  plan: PlanDocument,
  style: Style,
  cwd: string,
  specs?: readonly ConnectionSettings[],
): string {
  const width = Math.max(4, ...plan.hosts.map((h) => h.name.length));
  const lines = plan.hosts.flatMap((host) => {
    const jobs = host.jobs.map((job) => {
      const copies = job.copies.length > 0 ? ` + ${plural(job.copies.length, "copy", "copies")}` : "";
      return `${job.name} (${job.category}) → ${plural(job.repos.length, "repo", "repos")}${copies}`;
    });
    const line = `${style.ok("✓")} ${host.name.padEnd(width)}  ${displayPath(host.config, cwd)}: ${jobs.join("; ")}`;
    const spec = specs?.find((s) => s.name === host.name);
    return spec === undefined ? [line] : [line, ...connectionLines(spec, cwd)];
  });
  const jobCount = plan.hosts.reduce((n, h) => n + h.jobs.length, 0);
  const repoCount = plan.hosts.reduce((n, h) => n + h.jobs.reduce((m, j) => m + j.repos.length, 0), 0);
  lines.push(...maintenanceLines(plan));
  lines.push(
    `${displayPath(plan.inventory, cwd)}: ${plural(plan.hosts.length, "host", "hosts")}, ${plural(jobCount, "job", "jobs")}, ${plural(repoCount, "repository", "repositories")}: valid`,
  );
  return `${lines.join("\n")}\n`;
}

/** One line per declared repository the plan uses: where it is maintained, and for how many jobs. */
export function maintenanceLines(plan: PlanDocument): string[] {
  return plan.repositories.map((repository) => {
    const hosts = new Set(repository.uses.map((u) => u.host)).size;
    const via = repository.maintenance_url === repository.url ? "" : ` via ${repository.maintenance_url}`;
    return `repository ${repository.name} (${repository.url}): maintained on ${repository.maintenance_host}${via}, for ${plural(repository.uses.length, "job", "jobs")} of ${plural(hosts, "host", "hosts")}`;
  });
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

function connectionLines(spec: ConnectionSettings, cwd: string): string[] {
  const values: Record<string, string> = {
    address: spec.address,
    user: spec.user,
    port: String(spec.port),
    identity_file:
      spec.identity_file === null ? "(none: the SSH agent)" : displayPath(spec.identity_file, cwd),
    known_hosts: [spec.known_hosts, ...(spec.known_hosts_also ?? [])]
      .map((f) => displayPath(f, cwd))
      .join(" "),
    host_key_policy: spec.host_key_policy,
    connect_timeout: `${spec.connect_timeout_s} s`,
    keepalive_interval: `${spec.keepalive_interval_s} s`,
    proxy_jump:
      spec.jump === undefined || spec.jump.length === 0
        ? "(none: direct)"
        : spec.jump.map(hopText).join(" → "),
  };
  const keys = Object.keys(values);
  const width = Math.max(...keys.map((k) => k.length));
  return keys.map(
    (key) =>
      `    ${key.padEnd(width)}  ${values[key]}  (${originText(spec.origins?.[key] ?? "default", cwd)})`,
  );
}

function originText(origin: string, cwd: string): string {
  return origin.startsWith("ssh_config /") ? `ssh_config ${displayPath(origin.slice(11), cwd)}` : origin;
}

/** A bastion as `name (user@address:port)`, or the literal alone when proxy_jump wrote it that way. */
export function hopText(hop: { name: string; user: string; address: string; port: number }): string {
  const target = `${hop.user}@${hop.address}:${hop.port}`;
  return hop.name === target ? target : `${hop.name} (${target})`;
}
