// `validate` for people: one line per host with its jobs and repositories.
import type { PlanDocument } from "../../plan/plan-document.js";
import { displayPath } from "./problems.js";
import type { Style } from "./style.js";

export function renderValidateSummary(plan: PlanDocument, style: Style, cwd: string): string {
  const width = Math.max(4, ...plan.hosts.map((h) => h.name.length));
  const lines = plan.hosts.map((host) => {
    const jobs = host.jobs.map((job) => {
      const copies = job.copies.length > 0 ? ` + ${plural(job.copies.length, "copy", "copies")}` : "";
      return `${job.name} (${job.category}) → ${plural(job.repos.length, "repo", "repos")}${copies}`;
    });
    return `${style.ok("✓")} ${host.name.padEnd(width)}  ${displayPath(host.config, cwd)}: ${jobs.join("; ")}`;
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
