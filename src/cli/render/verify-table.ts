// `verify` for people: one row per host and job (its restore drill), then each repository's one check.
import Table from "cli-table3";
import type { Report, RestoreResult } from "../../report/report-schema.js";
import type { Style } from "./style.js";
import { terminalSafe } from "./terminal-text.js";

export function renderVerifyTable(
  hostReport: Report,
  style: Style,
  paint: (status: string) => string,
): string {
  const report = terminalSafe(hostReport);
  const dryRun = report.options.dry_run;
  const rows = new Table({
    head: [
      "host",
      "job",
      "restored from",
      "status",
      "snapshot",
      "sampled",
      "matched",
      "changed",
      "mismatched",
    ],
    style: style.color ? { head: ["cyan"] } : { head: [], border: [] },
  });
  const notes: string[] = [];
  for (const host of report.hosts) {
    const drills = host.jobs.filter((job) => job.restore !== undefined);
    if (drills.length === 0 || host.facts === null)
      rows.push([host.name, "", "", paint(host.status), "", "", "", "", ""]);
    for (const job of host.facts === null ? [] : drills) {
      const r = job.restore as RestoreResult;
      rows.push([
        host.name,
        job.name,
        r.repo,
        paint(r.status),
        r.snapshot_id ?? "",
        r.sampled === null ? (dryRun ? `would ${r.requested}` : "") : `${r.sampled} of ${r.candidates ?? 0}`,
        count(r.matched),
        count(r.changed_since_backup),
        count(r.mismatched),
      ]);
      if (r.error !== null) notes.push(`${style.bad("✗")} ${host.name} / ${job.name}: ${r.error}`);
      if (r.changed_paths.length > 0)
        notes.push(
          `${style.dim("i")} ${host.name} / ${job.name}: changed since the backup (not compared): ${r.changed_paths.join(", ")}`,
        );
    }
    if (host.error !== null) {
      notes.push(`${style.bad("✗")} ${host.name}: ${host.error.code}: ${host.error.message}`);
      notes.push(`    ${style.dim(`hint: ${host.error.hint}`)}`);
    }
    for (const warning of host.warnings) notes.push(`${style.warn("!")} ${host.name}: ${warning.message}`);
  }
  const header = dryRun ? `${style.bold("dry run: no data was read")}\n` : "";
  return `${header}${rows.toString()}\n${notes.length > 0 ? `${notes.join("\n")}\n` : ""}${repositoryChecks(report, style, paint)}`;
}

function count(value: number | null): string {
  return value === null ? "" : String(value);
}

/** Phase 2: each repository's one `restic check` (or, in a dry run, the host that would run it). */
function repositoryChecks(report: Report, style: Style, paint: (status: string) => string): string {
  const lines: string[] = [];
  for (const repository of report.repositories) {
    const check = repository.actions.find((action) => action.action === "check");
    if (check === undefined) {
      lines.push(`  ${repository.url}  not checked: no host could open it`);
      continue;
    }
    const time = check.duration_ms === null ? "" : ` in ${(check.duration_ms / 1000).toFixed(1)}s`;
    const error = check.error === null ? "" : `: ${check.error}`;
    lines.push(
      `  ${repository.url}  on ${check.host}  ${paint(check.status)}  subset ${check.subset ?? "?"}${time}${error}`,
    );
  }
  if (lines.length === 0) return "";
  const title = report.options.dry_run
    ? "would check, once per repository (restic check --read-data-subset):"
    : "checked, once per repository (restic check --read-data-subset):";
  return `\n${style.bold(title)}\n${lines.join("\n")}\n`;
}
