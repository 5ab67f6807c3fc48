// The report as markdown, for a ticket, a wiki or a CI summary: the same facts as the table.
import type { Report } from "../../report/report-schema.js";
import { bytes, sampleSummary } from "./backup-table.js";
import { terminalSafe } from "./terminal-text.js";

const cell = (text: string) => text.replaceAll("|", "\\|").replaceAll("\n", " ");
const row = (cells: string[]) => `| ${cells.map(cell).join(" | ")} |`;

/**
 * Markdown lands in terminals too: every string of the report passes through terminalSafe, which
 * keeps newlines here only for `cell` to turn them into spaces.
 */
export function renderReportMarkdown(hostReport: Report): string {
  const report = terminalSafe(hostReport, { keepNewlines: true });
  const s = report.summary;
  const lines = [
    `## rlvm-fleet ${report.command}${report.options.dry_run ? " (dry run)" : ""}`,
    "",
    `Run \`${report.run_id}\`: ${s.hosts} hosts, ok ${s.ok}, partial ${s.partial}, failed ${s.failed}, unreachable ${s.unreachable}, skipped ${s.skipped}; exit ${report.exit_code}.`,
    "",
    ...report.warnings.flatMap((w) => [`> **warning:** ${cell(w.message)}`, ""]),
  ];
  if (report.command === "backup") {
    lines.push(
      row(["host", "job", "status", "repository", "snapshot", "files new/changed", "added", "error"]),
    );
    lines.push(row(Array(8).fill("---")));
    for (const host of report.hosts) {
      if (host.jobs.length === 0)
        lines.push(row([host.name, "", host.status, "", "", "", "", host.error?.message ?? ""]));
      for (const job of host.jobs) {
        for (const repo of job.repos) {
          lines.push(
            row([
              host.name,
              job.name,
              repo.status,
              repo.repo,
              repo.snapshot_id ?? "",
              repo.files_new === null ? "" : `${repo.files_new}/${repo.files_changed}`,
              repo.data_added === null ? "" : bytes(repo.data_added),
              repo.error ?? "",
            ]),
          );
        }
        for (const copy of job.copies) {
          lines.push(
            row([host.name, job.name, copy.status, `copy → ${copy.to}`, "", "", "", copy.error ?? ""]),
          );
        }
        const sample = job.restore;
        if (sample !== undefined)
          lines.push(
            row([
              host.name,
              job.name,
              sample.status,
              `verify sample ← ${sample.repo}`,
              sample.snapshot_id ?? "",
              sampleSummary(sample),
              "",
              sample.error ?? "",
            ]),
          );
      }
    }
  } else if (report.command === "status") {
    lines.push(row(["host", "job", "repository", "latest", "age (s)", "stale", "error"]));
    lines.push(row(Array(7).fill("---")));
    for (const host of report.hosts) {
      if (host.jobs.length === 0) lines.push(row([host.name, "", "", "", "", "", host.error?.message ?? ""]));
      for (const job of host.jobs) {
        for (const l of job.latest) {
          lines.push(
            row([
              host.name,
              job.name,
              l.repo,
              l.snapshot_id ?? "never",
              l.age_s === null ? "" : String(l.age_s),
              l.stale ? "STALE" : "",
              l.error ?? "",
            ]),
          );
        }
      }
    }
  } else if (report.command === "prune") {
    lines.push(row(["host", "job", "repository", "status", "kept", "removed", "error"]));
    lines.push(row(Array(7).fill("---")));
    for (const host of report.hosts) {
      if (host.jobs.length === 0)
        lines.push(row([host.name, "", "", host.status, "", "", host.error?.message ?? ""]));
      for (const job of host.jobs) {
        for (const p of job.prunes) {
          lines.push(
            row([
              host.name,
              job.name,
              p.repo,
              p.status,
              String(p.kept ?? ""),
              String(p.removed ?? ""),
              p.error ?? "",
            ]),
          );
        }
      }
    }
  } else if (report.command === "verify") {
    lines.push(
      row([
        "host",
        "job",
        "restored from",
        "status",
        "snapshot",
        "sampled",
        "matched",
        "changed",
        "mismatched",
        "error",
      ]),
    );
    lines.push(row(Array(10).fill("---")));
    const n = (value: number | null) => (value === null ? "" : String(value));
    for (const host of report.hosts) {
      const drills = host.jobs.filter((job) => job.restore !== undefined);
      if (drills.length === 0)
        lines.push(row([host.name, "", "", host.status, "", "", "", "", "", host.error?.message ?? ""]));
      for (const job of drills) {
        const r = job.restore;
        if (r === undefined) continue;
        lines.push(
          row([
            host.name,
            job.name,
            r.repo,
            r.status,
            r.snapshot_id ?? "",
            r.sampled === null ? `${r.requested} requested` : `${r.sampled} of ${r.candidates ?? 0}`,
            n(r.matched),
            n(r.changed_since_backup),
            n(r.mismatched),
            r.error ?? "",
          ]),
        );
      }
    }
    lines.push("", row(["repository", "checked on", "status", "subset", "duration (s)", "error"]));
    lines.push(row(Array(6).fill("---")));
    for (const repository of report.repositories) {
      const check = repository.actions.find((action) => action.action === "check");
      lines.push(
        row([
          repository.url,
          check?.host ?? "",
          check?.status ?? "not checked",
          check?.subset ?? "",
          check?.duration_ms == null ? "" : (check.duration_ms / 1000).toFixed(1),
          check?.error ?? (check === undefined ? "no host could open it" : ""),
        ]),
      );
    }
  } else {
    lines.push(row(["host", "status", "error", "hint", "failed checks"]));
    lines.push(row(Array(5).fill("---")));
    for (const host of report.hosts) {
      const failed = host.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
      lines.push(
        row([host.name, host.status, host.error?.message ?? "", host.error?.hint ?? "", failed.join("; ")]),
      );
    }
  }
  if (report.command !== "ping" && report.command !== "check") lines.push(...hostProblems(report));
  return `${lines.join("\n")}\n`;
}

/** Below a per-job table: each host's own error and warnings, which its job rows cannot show. */
function hostProblems(report: Report): string[] {
  const items = report.hosts.flatMap((host) => [
    ...(host.error === null
      ? []
      : [
          `- **${cell(host.name)}** ${host.status} (\`${cell(host.error.code)}\`): ${cell(host.error.message)}. ${cell(host.error.hint)}`,
        ]),
    ...host.warnings.map((w) => `- **${cell(host.name)}** warning (\`${cell(w.code)}\`): ${cell(w.message)}`),
  ]);
  return items.length === 0 ? [] : ["", ...items];
}
