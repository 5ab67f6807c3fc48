// `plan` for people: per host, a table of jobs and repositories, then the order things would run in.
import Table from "cli-table3";
import { formatRetention, type PlanDocument, type PlannedHost } from "../../plan/plan-document.js";
import type { Style } from "./style.js";
import { hopText, maintenanceLines } from "./validate-summary.js";

export function renderPlanTable(plan: PlanDocument, style: Style): string {
  if (plan.hosts.length === 0) return "no host selected\n";
  const blocks = plan.hosts.map((host) => renderHost(host, style));
  const jobs = plan.hosts.reduce((n, h) => n + h.jobs.length, 0);
  const footer = `${plan.hosts.length} host${plan.hosts.length === 1 ? "" : "s"}, ${jobs} job${jobs === 1 ? "" : "s"}; nothing was run (plan makes no connection)`;
  const maintained = maintenanceLines(plan);
  return `${blocks.join("\n")}\n${maintained.length > 0 ? `${maintained.join("\n")}\n\n` : ""}${footer}\n`;
}

function renderHost(host: PlannedHost, style: Style): string {
  const via = host.become === "sudo" ? "as root via sudo" : `as ${host.user} (become = none)`;
  const through = host.jump.length === 0 ? "" : `  through ${host.jump.map(hopText).join(" → ")}`;
  const header = `${style.bold(host.name)}  ${host.user}@${host.address}:${host.port}  ${via}${through}`;
  if (host.jobs.length === 0) return `${header}\n  no job selected\n`;
  const table = new Table({
    head: ["job", "category", "source", "snapshot", "repository", "retention"],
    style: style.color ? { head: ["cyan"] } : { head: [], border: [] },
  });
  for (const job of host.jobs) {
    const source = [job.source_path, ...wrapList("excl. ", job.exclude_paths)];
    if (job.remount_readonly) source.push("remounted read-only");
    const snapshot =
      job.volume === null
        ? "none (live path)"
        : `${job.volume.vg_name}/${job.volume.lv_name}\n${job.volume.snapshot_size} COW`;
    const repos: string[] = [];
    const retention: string[] = [];
    for (const repo of job.repos) {
      repos.push(repo.repo);
      retention.push(formatRetention(repo.retention));
      for (const copy of job.copies.filter((c) => c.from === repo.repo)) {
        repos.push(`  ↳ copy to ${copy.to}`);
        retention.push(formatRetention(copy.retention));
      }
    }
    table.push([job.name, job.category, source.join("\n"), snapshot, repos.join("\n"), retention.join("\n")]);
  }
  const steps = host.steps.map(
    (step, i) =>
      `  ${String(i + 1).padStart(2)}. ${step.action.replace("_", " ")} ${step.job}: ${step.detail}`,
  );
  return `${header}\n${table.toString()}\n  order:\n${steps.join("\n")}\n`;
}

/** Break a list into lines of a readable width, the first one prefixed. */
function wrapList(prefix: string, items: string[], width = 32): string[] {
  if (items.length === 0) return [];
  const lines: string[] = [];
  let line = prefix;
  for (const item of items) {
    const next = line === prefix ? `${line}${item}` : `${line}, ${item}`;
    if (next.length > width && line !== prefix) {
      lines.push(`${line},`);
      line = `  ${item}`;
    } else line = next;
  }
  lines.push(line);
  return lines;
}
