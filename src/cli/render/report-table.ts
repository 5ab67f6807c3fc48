// `ping` and `check` for people: pure renderings of the report.
import Table from "cli-table3";
import type { HostResult, Report } from "../../report/report-schema.js";
import type { Style } from "./style.js";
import { renderBackupTable } from "./backup-table.js";
import { renderPruneTable, renderStatusTable } from "./retention-tables.js";
import { renderVerifyTable } from "./verify-table.js";
import { terminalSafe } from "./terminal-text.js";

/** Every string of `report` reaches the terminal through terminalSafe: a host's bytes never raw. */
export function renderReportTable(hostReport: Report, style: Style): string {
  const report = terminalSafe(hostReport);
  const paint = (status: string) => statusText(status as HostResult["status"], style);
  const renderers: Record<string, () => string> = {
    check: () => renderChecks(report, style),
    "install-agent": () => renderChecks(report, style),
    backup: () => renderBackupTable(report, style, paint),
    prune: () => renderPruneTable(report, style, paint),
    status: () => renderStatusTable(report, style, paint),
    verify: () => renderVerifyTable(report, style, paint),
  };
  const body = (renderers[report.command] ?? (() => renderPing(report, style)))();
  const warnings = report.warnings.map((w) => `${style.warn("warning:")} ${w.message}\n`).join("");
  return `${body}${warnings === "" ? "" : `\n${warnings}`}${renderRecap(report, style)}`;
}

function statusText(status: HostResult["status"] | "planned", style: Style): string {
  if (status === "ok") return style.ok(status);
  if (status === "planned") return status;
  if (status === "partial" || status === "skipped") return style.warn(status);
  return style.bad(status);
}

function renderPing(report: Report, style: Style): string {
  const table = new Table({
    head: ["host", "status", "runs as", "hostname", "os", "kernel", "bash", "restic", "lvm", "time"],
    style: style.color ? { head: ["cyan"] } : { head: [], border: [] },
  });
  const errors: string[] = [];
  for (const host of report.hosts) {
    const f = host.facts;
    table.push([
      host.name,
      statusText(host.status, style),
      f?.user ?? "",
      f?.hostname ?? "",
      f?.os ?? (f === null ? "" : "unknown"),
      f?.kernel ?? "",
      f?.bash ?? "",
      f?.restic ?? (f === null ? "" : "missing"),
      f?.lvm ?? (f === null ? "" : "missing"),
      `${(host.duration_ms / 1000).toFixed(1)}s`,
    ]);
    errors.push(...hostProblems(host, style));
  }
  return `${table.toString()}\n${errors.length > 0 ? `${errors.join("\n")}\n` : ""}`;
}

function renderChecks(report: Report, style: Style): string {
  const blocks = report.hosts.map((host) => {
    const lines = [`${style.bold(host.name)}  ${statusText(host.status, style)}  ${describeFacts(host)}`];
    for (const check of host.checks) {
      const mark = check.ok ? style.ok("✓") : style.bad("✗");
      lines.push(`  ${mark} ${check.name}${check.detail === "" ? "" : `: ${check.detail}`}`);
      if (!check.ok && check.hint !== "") lines.push(`      ${style.dim(`hint: ${check.hint}`)}`);
    }
    if (host.error !== null && host.error.code !== "preflight") lines.push(...hostProblems(host, style));
    for (const warning of host.warnings) lines.push(`  ${style.warn("!")} ${warning.message}`);
    return lines.join("\n");
  });
  return `${blocks.join("\n\n")}\n`;
}

function describeFacts(host: HostResult): string {
  const f = host.facts;
  if (f === null) return "";
  return `(${f.hostname}, ${f.os ?? "unknown OS"}, as ${f.user}, bash ${f.bash}, restic ${f.restic ?? "missing"}, lvm ${f.lvm ?? "missing"})`;
}

function hostProblems(host: HostResult, style: Style): string[] {
  if (host.error === null) return [];
  return [
    `  ${style.bad("✗")} ${host.name}: ${host.error.code}: ${host.error.message}`,
    `      ${style.dim(`hint: ${host.error.hint}`)}`,
  ];
}

/** One line at the end, like Ansible's PLAY RECAP. */
export function renderRecap(report: Report, style: Style): string {
  const s = report.summary;
  const parts = [
    style.ok(`ok=${s.ok}`),
    style.warn(`partial=${s.partial}`),
    (s.failed > 0 ? style.bad : (t: string) => t)(`failed=${s.failed}`),
    (s.unreachable > 0 ? style.bad : (t: string) => t)(`unreachable=${s.unreachable}`),
    `skipped=${s.skipped}`,
  ];
  const seconds = (Date.parse(report.finished_at) - Date.parse(report.started_at)) / 1000;
  return `\nRECAP ${report.command} ${s.hosts} host${s.hosts === 1 ? "" : "s"}: ${parts.join(" ")}  in ${seconds.toFixed(1)}s, exit ${report.exit_code}\n`;
}
