// `validate` for people: one line per host with its jobs and repositories.
import type { HostSpec } from "../../inventory/load-inventory.js";
import { ORIGIN_KEYS } from "../../inventory/ssh-config.js";
import type { PlanDocument } from "../../plan/plan-document.js";
import { displayPath } from "./problems.js";
import type { Style } from "./style.js";

/** With `specs` (--verbose), each host's connection settings follow its line, with their origin. */
export function renderValidateSummary(
  plan: PlanDocument,
  style: Style,
  cwd: string,
  specs?: readonly HostSpec[],
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
  lines.push(
    `${displayPath(plan.inventory, cwd)}: ${plural(plan.hosts.length, "host", "hosts")}, ${plural(jobCount, "job", "jobs")}, ${plural(repoCount, "repository", "repositories")}: valid`,
  );
  return `${lines.join("\n")}\n`;
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

function connectionLines(spec: HostSpec, cwd: string): string[] {
  const values: Record<(typeof ORIGIN_KEYS)[number], string> = {
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
  };
  const width = Math.max(...ORIGIN_KEYS.map((k) => k.length));
  return ORIGIN_KEYS.map(
    (key) =>
      `    ${key.padEnd(width)}  ${values[key]}  (${originText(spec.origins?.[key] ?? "default", cwd)})`,
  );
}

function originText(origin: string, cwd: string): string {
  return origin.startsWith("ssh_config /") ? `ssh_config ${displayPath(origin.slice(11), cwd)}` : origin;
}
