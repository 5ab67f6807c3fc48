// `backup` for people: per host and job, what happened, with every failure and why underneath.
import Table from "cli-table3";
import type { HostResult, JobResult, Report, RestoreResult } from "../../report/report-schema.js";
import type { Style } from "./style.js";
import { terminalSafe } from "./terminal-text.js";

export function renderBackupTable(
  hostReport: Report,
  style: Style,
  paint: (status: string) => string,
): string {
  const report = terminalSafe(hostReport);
  // The verify sample's column, only in a run that sampled.
  const sampled = report.hosts.some((host) => host.jobs.some((job) => job.restore !== undefined));
  const table = new Table({
    head: [
      "host",
      "job",
      "status",
      "repos ok",
      "snapshots",
      "files new/changed",
      "added",
      "snapshot life",
      ...(sampled ? ["verify sample"] : []),
      "time",
    ],
    style: style.color ? { head: ["cyan"] } : { head: [], border: [] },
  });
  const problems: string[] = [];
  for (const host of report.hosts) {
    if (host.jobs.length === 0 || host.status === "unreachable") {
      const blank = Array<string>(sampled ? 6 : 5).fill("");
      table.push([host.name, "", paint(host.status), ...blank, seconds(host.duration_ms)]);
    }
    if (host.status !== "unreachable") {
      for (const job of host.jobs) {
        const row = jobRow(host, job, paint);
        if (sampled) row.splice(-1, 0, job.restore === undefined ? "" : sampleSummary(job.restore));
        table.push(row);
      }
    }
    problems.push(...hostProblems(host, style));
  }
  return `${table.toString()}\n${problems.length > 0 ? `${problems.join("\n")}\n` : ""}`;
}

function jobRow(host: HostResult, job: JobResult, paint: (status: string) => string): string[] {
  const done = job.repos.filter((r) => r.status === "ok" || r.status === "partial").length;
  const ids = job.repos
    .map((r) => r.snapshot_id?.slice(0, 8) ?? (r.status === "planned" ? "-" : "✗"))
    .join(" ");
  const files = job.repos
    .filter((r) => r.files_new !== null)
    .map((r) => `${r.files_new}/${r.files_changed}`)
    .join(" ");
  const added = job.repos.reduce((sum, r) => sum + (r.data_added ?? 0), 0);
  const snapshot =
    job.snapshot === null
      ? ""
      : `${seconds(job.snapshot.lifetime_ms)}${job.snapshot.cow_peak_percent === null ? "" : `, COW ${job.snapshot.cow_peak_percent}%`}`;
  const duration = job.repos.reduce((sum, r) => sum + (r.duration_ms ?? 0), 0);
  return [
    host.name,
    job.name,
    paint(job.status),
    `${done}/${job.repos.length}${job.copies.length > 0 ? ` +${job.copies.filter((c) => c.status === "ok").length}/${job.copies.length} copies` : ""}`,
    ids,
    files,
    job.repos.some((r) => r.data_added !== null) ? bytes(added) : "",
    snapshot,
    duration > 0 ? seconds(duration) : "",
  ];
}

function hostProblems(host: HostResult, style: Style): string[] {
  const lines: string[] = [];
  if (host.error !== null) {
    lines.push(`${style.bad("✗")} ${host.name}: ${host.error.code}: ${host.error.message}`);
    lines.push(`    ${style.dim(`hint: ${host.error.hint}`)}`);
  }
  for (const job of host.jobs) {
    for (const repo of job.repos) {
      if (repo.error !== null)
        lines.push(`${style.bad("✗")} ${host.name} / ${job.name} → ${repo.repo}: ${repo.error}`);
    }
    for (const copy of job.copies) {
      if (copy.error !== null)
        lines.push(
          `${style.bad("✗")} ${host.name} / ${job.name} copy ${copy.from} → ${copy.to}: ${copy.error}`,
        );
    }
    if (job.restore?.error != null && job.restore.status !== "skipped")
      lines.push(
        `${style.bad("✗")} ${host.name} / ${job.name} verify sample from ${job.restore.repo}: ${job.restore.error}`,
      );
  }
  for (const warning of host.warnings) lines.push(`${style.warn("!")} ${host.name}: ${warning.message}`);
  return lines;
}

/** A verify sample in a few words: "5/5 matched", "1 of 5 differ", or why it did not run. */
export function sampleSummary(sample: RestoreResult): string {
  if (sample.sampled === null) return sample.status;
  if (sample.status === "skipped") return "not run";
  const bad = (sample.mismatched ?? 0) + (sample.missing ?? 0);
  const held = sample.snapshot_held_ms === null ? "" : `, +${seconds(sample.snapshot_held_ms)} snapshot`;
  if (bad > 0) return `${bad} of ${sample.sampled} differ${held}`;
  if (sample.error !== null) return `failed${held}`;
  const changed = sample.changed_since_backup ?? 0;
  return `${sample.matched ?? 0}/${sample.sampled} matched${changed > 0 ? `, ${changed} changed` : ""}${held}`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

export function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}
