// `report merge`: the reports of the shards of one run (--shard K/N on several machines) as one
// report, as if one machine had run every host.
import { EXIT_CODES, formatTomlPath, UsageError, type Problem } from "../errors.js";
import { reportExitCode, reportSummary } from "./build-report.js";
import { compare, compareRepositories } from "./repositories.js";
import { reportSchema, type Report, type ReportWarning, type Repository } from "./report-schema.js";

export interface ReportFile {
  file: string;
  report: Report;
}

/** A report file's text, read through the report's schema; anything else is a UsageError naming it. */
export function parseReportFile(file: string, text: string): Report {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${file} is not a JSON report`, {
      problems: [{ file, path: "", message: `not JSON: ${(error as Error).message}` }],
      hint: "give the files that --report FILE (or --format json) wrote",
    });
  }
  const parsed = reportSchema.safeParse(json);
  if (parsed.success) return parsed.data;
  throw new UsageError(`${file} is not an rlvm-fleet report`, {
    problems: parsed.error.issues
      .slice(0, 10)
      .map((issue): Problem => ({ file, path: formatTomlPath(issue.path), message: issue.message })),
    hint: "give the files that --report FILE (or --format json) wrote, from the same rlvm-fleet version",
  });
}

/**
 * One report of them all: hosts sorted by name, counts and exit code recomputed as buildReport does,
 * repositories combined, started/finished as the earliest and latest. Refuses (UsageError) reports
 * of different commands or dry runs, of different splits, and a host in two of them.
 */
export function mergeReports(files: readonly ReportFile[]): Report {
  refuseMixed(files, "command", (r) => r.command);
  refuseMixed(files, "dry run", (r) => (r.options.dry_run ? "a dry run" : "not a dry run"));
  refuseMixed(files, "split", (r) =>
    r.options.shard === null ? "no --shard" : `--shard K/${r.options.shard.n}`,
  );
  const byShard = [...files].sort(
    (a, b) =>
      (a.report.options.shard?.k ?? 0) - (b.report.options.shard?.k ?? 0) ||
      compare(a.report.started_at, b.report.started_at),
  );
  refuseDuplicates(byShard);
  const reports = byShard.map((f) => f.report);
  const first = reports[0];
  if (first === undefined) throw new UsageError("report merge needs at least one report");

  const hosts = reports.flatMap((r) => r.hosts).sort((a, b) => compare(a.name, b.name));
  // A report only ends 130 when its run was interrupted (2 never reaches a report: nothing ran).
  const interrupted = reports.some((r) => r.exit_code === EXIT_CODES.interrupted.code);
  const versions = [...new Set(reports.map((r) => r.controller_version))].sort(compare);
  return {
    schema: first.schema,
    run_id: [...new Set(reports.map((r) => r.run_id))].join("+"),
    command: first.command,
    // The merged report covers every shard given: it is no one shard.
    options: { ...first.options, shard: null },
    started_at: reports.map((r) => r.started_at).sort(byTime)[0]!,
    finished_at: reports
      .map((r) => r.finished_at)
      .sort(byTime)
      .at(-1)!,
    controller_version: versions.join(", "),
    exit_code: reportExitCode(hosts, interrupted),
    summary: reportSummary(hosts),
    hosts,
    repositories: mergeRepositories(reports.map((r) => r.repositories)),
    warnings: mergeWarnings(byShard),
  };
}

const byTime = (a: string, b: string) => Date.parse(a) - Date.parse(b);

function refuseMixed(files: readonly ReportFile[], what: string, keyOf: (report: Report) => string): void {
  const groups = new Map<string, string[]>();
  for (const { file, report } of files)
    groups.set(keyOf(report), [...(groups.get(keyOf(report)) ?? []), file]);
  if (groups.size <= 1) return;
  throw new UsageError(`the reports are of different runs: mixed ${what}`, {
    problems: [...groups].map(([key, names]) => ({ file: names.join(", "), path: "", message: key })),
    hint: "merge only the reports of the shards of one command line, run with the same --shard N",
  });
}

function refuseDuplicates(files: readonly ReportFile[]): void {
  const seen = new Map<string, string>();
  const problems: Problem[] = [];
  for (const { file, report } of files) {
    const shard = report.options.shard;
    if (shard !== null) {
      const key = `shard ${shard.k}/${shard.n}`;
      const earlier = seen.get(key);
      if (earlier !== undefined)
        problems.push({ file, path: "options.shard", message: `${key} is also ${earlier}` });
      seen.set(key, file);
    }
    for (const [i, host] of report.hosts.entries()) {
      const key = `host ${host.name}`;
      const earlier = seen.get(key);
      if (earlier !== undefined)
        problems.push({ file, path: `hosts[${i}]`, message: `${key} is also in ${earlier}` });
      seen.set(key, file);
    }
  }
  if (problems.length > 0)
    throw new UsageError("the reports overlap: a shard or host is in more than one", {
      problems,
      hint: "merge each shard's report once; shards of one --shard N never share a host",
    });
}

function mergeWarnings(files: readonly ReportFile[]): ReportWarning[] {
  const warnings = new Map<string, ReportWarning>();
  for (const w of files.flatMap((f) => f.report.warnings)) warnings.set(`${w.code}\n${w.message}`, w);
  const n = files[0]?.report.options.shard?.n;
  if (n !== undefined) {
    const given = new Set(files.map((f) => f.report.options.shard?.k));
    const missing = Array.from({ length: n }, (_, i) => i + 1).filter((k) => !given.has(k));
    if (missing.length > 0)
      warnings.set("missing_shards", {
        code: "missing_shards",
        message: `no report of shard${missing.length === 1 ? "" : "s"} ${missing.map((k) => `${k}/${n}`).join(", ")}: ${missing.length === 1 ? "its" : "their"} hosts are not in this report`,
      });
  }
  return [...warnings.values()];
}

/**
 * Entries with the same restic id are one repository. Without an id, as groupRepositories decides: a
 * remote URL joins the one id seen at that URL, if exactly one was, else is one entry per URL; a
 * local path stays its host's own (the shards' hosts differ, so their local paths do too).
 */
export function mergeRepositories(lists: readonly Repository[][]): Repository[] {
  const entries = lists.flat();
  const location = (url: string) =>
    (url.startsWith("local:") ? url.slice("local:".length) : url).replace(/\/+$/, "");
  const idsAt = new Map<string, Set<string>>();
  for (const e of entries) {
    if (e.id !== null) idsAt.set(location(e.url), (idsAt.get(location(e.url)) ?? new Set()).add(e.id));
  }
  const groups = new Map<string, Repository>();
  for (const entry of entries) {
    const local = location(entry.url).startsWith("/");
    const known = local ? undefined : idsAt.get(location(entry.url));
    const id = entry.id ?? (known?.size === 1 ? [...known][0]! : null);
    const key =
      id !== null
        ? `id\n${id}`
        : local
          ? `local\n${entry.hosts.map((h) => h.host).join("\n")}\n${location(entry.url)}`
          : `remote\n${location(entry.url)}`;
    const group = groups.get(key);
    groups.set(key, group === undefined ? { ...entry, id } : combine(group, entry));
  }
  return [...groups.values()].sort(compareRepositories);
}

function combine(a: Repository, b: Repository): Repository {
  const jobs = new Map<string, string[]>();
  for (const { host, jobs: list } of [...a.hosts, ...b.hosts])
    jobs.set(host, [...new Set([...(jobs.get(host) ?? []), ...list])]);
  return {
    id: a.id,
    url: [a.url, b.url].sort(compare)[0]!,
    hosts: [...jobs].map(([host, list]) => ({ host, jobs: list })).sort((x, y) => compare(x.host, y.host)),
    actions: [...a.actions, ...b.actions],
    missing_forgets: [...new Set([...a.missing_forgets, ...b.missing_forgets])].sort(compare),
  };
}
