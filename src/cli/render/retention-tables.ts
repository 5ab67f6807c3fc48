// `prune` and `status` for people: one row per host, job and repository.
import Table from "cli-table3";
import { formatDuration } from "../../duration.js";
import type { HostResult, Report } from "../../report/report-schema.js";
import type { Style } from "./style.js";
import { terminalSafe } from "./terminal-text.js";

function table(head: string[], style: Style): Table.Table {
  return new Table({ head, style: style.color ? { head: ["cyan"] } : { head: [], border: [] } });
}

function hostLine(host: HostResult, style: Style): string[] {
  if (host.error === null) return [];
  return [
    `${style.bad("✗")} ${host.name}: ${host.error.code}: ${host.error.message}`,
    `    ${style.dim(`hint: ${host.error.hint}`)}`,
  ];
}

export function renderStatusTable(
  hostReport: Report,
  style: Style,
  paint: (status: string) => string,
): string {
  const report = terminalSafe(hostReport);
  const maxAge = report.options.max_age_s;
  const rows = table(
    ["host", "job", "repository", "latest", "age", maxAge === null ? "" : `max ${formatDuration(maxAge)}`],
    style,
  );
  const notes: string[] = [];
  for (const host of report.hosts) {
    if (host.jobs.length === 0 || host.facts === null)
      rows.push([host.name, "", paint(host.status), "", "", ""]);
    else {
      for (const job of host.jobs) {
        for (const latest of job.latest) {
          const age =
            latest.error !== null
              ? style.bad("unreadable")
              : latest.age_s === null
                ? style.bad("never")
                : formatDuration(latest.age_s);
          rows.push([
            host.name,
            job.name,
            latest.repo,
            latest.snapshot_id === null
              ? ""
              : `${latest.snapshot_id} ${latest.time?.replace(/\.\d+/, "") ?? ""}`,
            age,
            latest.stale ? style.bad("STALE") : latest.error !== null ? style.bad("error") : style.ok("ok"),
          ]);
          if (latest.error !== null)
            notes.push(`${style.bad("✗")} ${host.name} / ${job.name} → ${latest.repo}: ${latest.error}`);
        }
      }
    }
    notes.push(...hostLine(host, style));
  }
  return `${rows.toString()}\n${notes.length > 0 ? `${notes.join("\n")}\n` : ""}`;
}

export function renderPruneTable(
  hostReport: Report,
  style: Style,
  paint: (status: string) => string,
): string {
  const report = terminalSafe(hostReport);
  const dryRun = report.options.dry_run;
  const rows = table(
    ["host", "job", "repository", "status", "kept", dryRun ? "would remove" : "removed"],
    style,
  );
  const notes: string[] = [];
  for (const host of report.hosts) {
    if (host.jobs.length === 0 || host.facts === null)
      rows.push([host.name, "", "", paint(host.status), "", ""]);
    else {
      for (const job of host.jobs) {
        for (const prune of job.prunes) {
          const removed =
            prune.removed === null
              ? ""
              : `${prune.removed}${prune.removed_ids.length > 0 ? ` (${prune.removed_ids.join(" ")})` : ""}`;
          rows.push([
            host.name,
            job.name,
            prune.repo,
            paint(prune.status),
            prune.kept === null ? "" : String(prune.kept),
            removed,
          ]);
          if (prune.error !== null && prune.status === "failed")
            notes.push(`${style.bad("✗")} ${host.name} / ${job.name} → ${prune.repo}: ${prune.error}`);
        }
      }
    }
    notes.push(...hostLine(host, style));
    for (const warning of host.warnings) notes.push(`${style.warn("!")} ${host.name}: ${warning.message}`);
  }
  const header = dryRun ? `${style.bold("dry run: nothing was deleted")}\n` : "";
  const pruned = repositoryPrunes(report, style, paint);
  return `${header}${rows.toString()}\n${notes.length > 0 ? `${notes.join("\n")}\n` : ""}${pruned}`;
}

/** Phase 2: each repository's one prune (or, in a dry run, the host that would run it), and whose forgets are missing. */
function repositoryPrunes(report: Report, style: Style, paint: (status: string) => string): string {
  const lines: string[] = [];
  for (const repository of report.repositories) {
    const prune = repository.actions.find((action) => action.action === "prune");
    const missing =
      repository.missing_forgets.length > 0
        ? `; forgets missing (snapshots kept): ${repository.missing_forgets.join(", ")}`
        : "";
    if (prune !== undefined) {
      const time = prune.duration_ms === null ? "" : ` in ${(prune.duration_ms / 1000).toFixed(1)}s`;
      const error = prune.error === null ? "" : `: ${prune.error}`;
      lines.push(`  ${repository.url}  on ${prune.host}  ${paint(prune.status)}${time}${error}${missing}`);
    } else if (missing !== "") lines.push(`  ${repository.url}  not pruned${missing}`);
  }
  if (lines.length === 0) return "";
  const title = report.options.dry_run
    ? "would prune, once per repository, after every host's forgets:"
    : "pruned, once per repository, after every host's forgets:";
  return `\n${style.bold(title)}\n${lines.join("\n")}\n`;
}
