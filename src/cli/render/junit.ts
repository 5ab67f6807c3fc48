// The report as JUnit XML (--junit FILE), for the test reports of Jenkins, GitLab and other CI: one
// test suite per run, one test case per host and job (per host for ping, check and install-agent, and
// for a host with no jobs). A pure function of the report.
import type { HostResult, JobResult, Report } from "../../report/report-schema.js";

/** The commands whose work is per host, not per job. */
const PER_HOST = new Set(["ping", "check", "install-agent"]);

// Characters XML 1.0 cannot hold at all, not even as a reference: C0 controls but tab, newline and
// CR, lone surrogates, U+FFFE and U+FFFF. A host's text may carry them; they are shown visibly.
const NOT_XML =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

const visible = (char: string) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`;

export function xmlText(text: string): string {
  return text
    .replace(NOT_XML, visible)
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;");
}

/** An attribute value: also quotes, and whitespace as references, which attribute parsing would flatten. */
export function xmlAttribute(text: string): string {
  return xmlText(text)
    .replaceAll('"', "&quot;")
    .replaceAll("\n", "&#10;")
    .replaceAll("\r", "&#13;")
    .replaceAll("\t", "&#9;");
}

const attributes = (values: Record<string, string | number | undefined>) =>
  Object.entries(values)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${xmlAttribute(String(v))}"`)
    .join("");

const seconds = (ms: number) => (ms / 1000).toFixed(3);

type Outcome =
  { kind: "passed" } | { kind: "failure" | "error" | "skipped"; type: string; message: string; body: string };

interface TestCase {
  classname: string;
  name: string;
  timeMs: number | undefined;
  outcome: Outcome;
  out: string[];
}

export function renderReportJunit(report: Report): string {
  const cases = report.hosts.flatMap((host) => hostCases(report, host));
  const count = (kind: Outcome["kind"]) => cases.filter((c) => c.outcome.kind === kind).length;
  const durationMs = Date.parse(report.finished_at) - Date.parse(report.started_at);
  const suiteName = `rlvm-fleet ${report.command}${report.options.dry_run ? " (dry run)" : ""}`;
  const totals = {
    tests: cases.length,
    failures: count("failure"),
    errors: count("error"),
  };
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites${attributes({ name: suiteName, ...totals, time: seconds(Math.max(0, durationMs)) })}>`,
    `  <testsuite${attributes({
      name: suiteName,
      ...totals,
      skipped: count("skipped"),
      time: seconds(Math.max(0, durationMs)),
      timestamp: report.started_at,
      id: report.run_id,
    })}>`,
    "    <properties>",
    ...Object.entries({
      run_id: report.run_id,
      command: report.command,
      exit_code: String(report.exit_code),
      controller_version: report.controller_version,
      inventory: report.options.inventory,
      limit: report.options.limit ?? "",
      dry_run: String(report.options.dry_run),
    }).map(([name, value]) => `      <property${attributes({ name, value })}/>`),
    "    </properties>",
  ];
  for (const c of cases) {
    const head = `    <testcase${attributes({
      classname: c.classname,
      name: c.name,
      time: c.timeMs === undefined ? undefined : seconds(c.timeMs),
    })}`;
    const inner: string[] = [];
    if (c.outcome.kind !== "passed") {
      const { kind, type, message, body } = c.outcome;
      inner.push(`      <${kind}${attributes({ type, message })}>${xmlText(body)}</${kind}>`);
    }
    if (c.out.length > 0) inner.push(`      <system-out>${xmlText(c.out.join("\n"))}</system-out>`);
    lines.push(inner.length === 0 ? `${head}/>` : `${head}>`, ...inner);
    if (inner.length > 0) lines.push("    </testcase>");
  }
  lines.push("  </testsuite>", "</testsuites>");
  return `${lines.join("\n")}\n`;
}

function hostCases(report: Report, host: HostResult): TestCase[] {
  const classname = `rlvm-fleet.${report.command}.${host.name}`;
  const warnings = host.warnings.map((w) => `warning ${w.code}: ${w.message}`);
  const hostOnly = PER_HOST.has(report.command) || host.jobs.length === 0;
  if (hostOnly) {
    return [
      {
        classname,
        name: host.name,
        timeMs: host.duration_ms,
        outcome: hostOutcome(host, failedChecks(host)),
        out: [...(host.status === "partial" ? [`partial`] : []), ...warnings],
      },
    ];
  }
  // A failed host fails the jobs that failed; when none did (the host failed before or around its
  // jobs: locked, a preflight check, the agent stopped), the jobs that did not end ok, else every
  // job, so that a failed host never shows as a green suite.
  const done = (job: JobResult) =>
    job.status === "ok" || job.status === "partial" || job.status === "planned";
  let failing = host.jobs.filter((job) => job.status === "failed");
  if (failing.length === 0) failing = host.jobs.filter((job) => !done(job));
  if (failing.length === 0) failing = host.jobs;
  return host.jobs.map((job) => {
    const details = jobDetails(job);
    let outcome: Outcome;
    if (host.status === "failed" && failing.includes(job)) outcome = hostOutcome(host, details);
    else if (host.status === "failed" || host.status === "ok" || host.status === "partial")
      outcome =
        job.status === "skipped"
          ? { kind: "skipped", type: "skipped", message: `job ${job.name} was not run`, body: "" }
          : { kind: "passed" };
    else outcome = hostOutcome(host, []);
    return {
      classname,
      name: job.name,
      timeMs: jobTimeMs(job),
      outcome,
      // A failure's body already holds the details.
      out: [
        ...(job.status === "partial" ? [`job ${job.name}: partial`] : []),
        ...(outcome.kind === "failure" ? [] : details),
        ...warnings,
      ],
    };
  });
}

/** A host's outcome for one of its cases: unreachable is an error, failed a failure, skipped skipped. */
function hostOutcome(host: HostResult, details: string[]): Outcome {
  const code = host.error?.code ?? host.status;
  const message = host.error?.message ?? host.status;
  const body = [...(host.error === null ? [] : [`hint: ${host.error.hint}`]), ...details].join("\n");
  switch (host.status) {
    case "unreachable":
      return { kind: "error", type: code, message, body };
    case "failed":
      return { kind: "failure", type: code, message, body };
    case "skipped":
      return { kind: "skipped", type: code, message, body };
    default:
      return { kind: "passed" };
  }
}

const failedChecks = (host: HostResult) =>
  host.checks.filter((c) => !c.ok).map((c) => `check ${c.name}: ${c.detail}${c.hint ? ` (${c.hint})` : ""}`);

/** What went wrong in a job, one line each: repositories, copies, prunes and status entries. */
function jobDetails(job: JobResult): string[] {
  return [
    ...job.repos.filter((r) => r.error !== null).map((r) => `backup ${r.status} ${r.repo}: ${r.error}`),
    ...job.copies
      .filter((c) => c.error !== null)
      .map((c) => `copy ${c.status} ${c.from} -> ${c.to}: ${c.error}`),
    ...job.prunes.filter((p) => p.error !== null).map((p) => `prune ${p.status} ${p.repo}: ${p.error}`),
    ...(job.restore?.error == null
      ? []
      : [`restore drill ${job.restore.status} ${job.restore.repo}: ${job.restore.error}`]),
    ...job.latest
      .filter((l) => l.error !== null || l.stale)
      .map(
        (l) =>
          `status ${l.repo}: ${l.error ?? `stale (latest ${l.snapshot_id ?? "none"}, age ${l.age_s ?? "unknown"} s)`}`,
      ),
  ];
}

function jobTimeMs(job: JobResult): number | undefined {
  const times = [...job.repos, ...job.copies]
    .map((r) => r.duration_ms)
    .filter((ms): ms is number => ms !== null);
  return times.length === 0 ? undefined : times.reduce((a, b) => a + b, 0);
}
