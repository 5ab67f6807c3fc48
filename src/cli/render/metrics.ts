// The report as Prometheus metrics (--metrics FILE), in the text exposition format that
// node_exporter's textfile collector reads. A pure function of the report; the caller writes the
// file atomically (temporary file, then rename), as the collector expects.
import { HOST_STATUSES, type Report } from "../../report/report-schema.js";

const RUN_STATUSES = ["ok", "partial", "failed", "skipped", "planned"] as const;

type Labels = Record<string, string>;

interface Family {
  name: string;
  help: string;
  samples: { labels: Labels; value: number }[];
}

/** A label value as the exposition format wants it: backslash, double quote and newline escaped. */
export function escapeLabelValue(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

const labelText = (labels: Labels) => {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
  return pairs.length === 0 ? "" : `{${pairs.join(",")}}`;
};

const seconds = (ms: number) => ms / 1000;
const timestampSeconds = (iso: string) => Date.parse(iso) / 1000;

export const LAST_SUCCESS = "rlvm_fleet_backup_last_success_timestamp_seconds";
export const LAST_COPY = "rlvm_fleet_copy_last_success_timestamp_seconds";
export const LAST_PRUNE = "rlvm_fleet_repository_last_prune_timestamp_seconds";
export const LAST_CHECK = "rlvm_fleet_repository_last_check_timestamp_seconds";

/**
 * Every family has HELP and TYPE (all are gauges: each file is one run's state, replaced by the
 * next run). Families without samples are left out. Per-host families carry a `command` label, so
 * one file per command (backup, prune, status, ...) in the collector's directory never collide.
 *
 * `previous` is the file this one replaces: a backup that did not succeed this time keeps the last
 * success timestamp it had there, so a failed run cannot make the series vanish (an alert on
 * `time() - …` would then go quiet exactly when it matters).
 */
export function renderReportMetrics(report: Report, previous = ""): string {
  const families = new Map<string, Family>();
  const add = (name: string, help: string, labels: Labels, value: number | null) => {
    if (value === null || !Number.isFinite(value)) return;
    let family = families.get(name);
    if (family === undefined) {
      family = { name, help, samples: [] };
      families.set(name, family);
    }
    family.samples.push({ labels, value });
  };
  const command = report.command;
  const finished = timestampSeconds(report.finished_at);

  add("rlvm_fleet_run_timestamp_seconds", "When the run finished (Unix time).", { command }, finished);
  add(
    "rlvm_fleet_run_duration_seconds",
    "How long the run took.",
    { command },
    finished - timestampSeconds(report.started_at),
  );
  add(
    "rlvm_fleet_run_exit_code",
    "The run's exit code (0 ok, 1 failed, 3 partial, 4 unreachable, 5 stopped by --max-fail-percent, 130 interrupted).",
    { command },
    report.exit_code,
  );
  add(
    "rlvm_fleet_run_dry_run",
    "1 when the run was a dry run (nothing changed).",
    { command },
    report.options.dry_run ? 1 : 0,
  );
  for (const status of HOST_STATUSES)
    add(
      "rlvm_fleet_run_hosts",
      "Hosts of the run by their status.",
      { command, status },
      report.summary[status],
    );

  const carried = previousSamples(previous, LAST_SUCCESS);
  const carriedCopies = previousSamples(previous, LAST_COPY);
  for (const host of report.hosts) {
    const h = { host: host.name, command };
    for (const status of HOST_STATUSES)
      add(
        "rlvm_fleet_host_status",
        "1 for the host's status in the run, 0 for the other statuses (ok, partial, failed, unreachable, skipped).",
        { ...h, status },
        host.status === status ? 1 : 0,
      );
    add("rlvm_fleet_host_duration_seconds", "How long the host's run took.", h, seconds(host.duration_ms));
    if (host.error !== null)
      add(
        "rlvm_fleet_host_error",
        "1 with the code of the host's error (absent when it had none).",
        { ...h, code: host.error.code },
        1,
      );
    // A skipped host never started: it has no run to date.
    if (host.status !== "skipped")
      add(
        "rlvm_fleet_host_last_run_timestamp_seconds",
        "When the run that includes the host finished (Unix time).",
        h,
        finished,
      );

    for (const job of host.jobs) {
      const j = { host: host.name, job: job.name };
      if (job.snapshot !== null) {
        add(
          "rlvm_fleet_snapshot_lifetime_seconds",
          "How long the job's LVM snapshot existed.",
          j,
          seconds(job.snapshot.lifetime_ms),
        );
        add(
          "rlvm_fleet_snapshot_cow_peak_ratio",
          "The highest COW use of the job's LVM snapshot, 0 to 1 (the report's cow_peak_percent / 100).",
          j,
          job.snapshot.cow_peak_percent === null ? null : job.snapshot.cow_peak_percent / 100,
        );
      }
      for (const repo of job.repos) {
        const r = { ...j, repository: repo.repo };
        for (const status of RUN_STATUSES)
          add(
            "rlvm_fleet_backup_status",
            "1 for the backup's status in this repository, 0 for the others.",
            { ...r, status },
            repo.status === status ? 1 : 0,
          );
        // ok and partial (restic exit 3) both stored a snapshot, which `status` counts as the latest.
        const stored = repo.snapshot_id !== null && (repo.status === "ok" || repo.status === "partial");
        add(
          LAST_SUCCESS,
          "When a backup of the job last stored a snapshot in the repository (Unix time).",
          r,
          stored ? finished : (carried.get(`${LAST_SUCCESS}${labelText(r)}`) ?? null),
        );
        add("rlvm_fleet_backup_files_new", "Files restic found new in the backup.", r, repo.files_new);
        add(
          "rlvm_fleet_backup_files_changed",
          "Files restic found changed in the backup.",
          r,
          repo.files_changed,
        );
        add(
          "rlvm_fleet_backup_data_added_bytes",
          "Bytes the backup added to the repository.",
          r,
          repo.data_added,
        );
        add(
          "rlvm_fleet_backup_data_added_packed_bytes",
          "Bytes the repository grew by, after compression (restic 0.16 and later).",
          r,
          repo.data_added_packed,
        );
        add(
          "rlvm_fleet_backup_duration_seconds",
          "How long the backup into the repository took.",
          r,
          repo.duration_ms === null ? null : seconds(repo.duration_ms),
        );
      }
      for (const copy of job.copies) {
        const c = { ...j, repository: copy.from, destination: copy.to };
        for (const status of RUN_STATUSES)
          add(
            "rlvm_fleet_copy_status",
            "1 for the status of restic copy from the repository into the copy_to destination, 0 for the others.",
            { ...c, status },
            copy.status === status ? 1 : 0,
          );
        add(
          LAST_COPY,
          "When restic copy last copied the job's snapshots into the destination (Unix time).",
          c,
          copy.status === "ok" ? finished : (carriedCopies.get(`${LAST_COPY}${labelText(c)}`) ?? null),
        );
        add(
          "rlvm_fleet_copy_duration_seconds",
          "How long restic copy into the destination took.",
          c,
          copy.duration_ms === null ? null : seconds(copy.duration_ms),
        );
      }
      for (const prune of job.prunes) {
        const r = { ...j, repository: prune.repo };
        for (const status of RUN_STATUSES)
          add(
            "rlvm_fleet_prune_status",
            "1 for the forget/prune's status in this repository, 0 for the others.",
            { ...r, status },
            prune.status === status ? 1 : 0,
          );
        add(
          "rlvm_fleet_prune_snapshots_kept",
          "Snapshots of the host and job that restic forget kept.",
          r,
          prune.kept,
        );
        add(
          "rlvm_fleet_prune_snapshots_removed",
          "Snapshots of the host and job that restic forget removed (with --dry-run: would remove).",
          r,
          prune.removed,
        );
      }
      if (job.restore !== undefined) {
        const restore = job.restore;
        // Written by verify and by backup --verify-sample: the command keeps their files' series apart.
        const r = { ...j, command, repository: restore.repo };
        for (const status of RUN_STATUSES)
          add(
            "rlvm_fleet_restore_sample_status",
            "1 for the status of the job's restore drill (verify; backup --verify-sample), 0 for the others.",
            { ...r, status },
            restore.status === status ? 1 : 0,
          );
        const results = [
          ["matched", restore.matched],
          ["changed", restore.changed_since_backup],
          ["mismatch", restore.mismatched],
          ["missing", restore.missing],
        ] as const;
        for (const [result, value] of results)
          add(
            "rlvm_fleet_restore_sample_files",
            "Files of the job's restore drill by result: matched (same bytes), changed (size or mtime changed since the backup, not compared), mismatch (other bytes), missing (not restored).",
            { ...r, result },
            value,
          );
        add(
          "rlvm_fleet_restore_sample_duration_seconds",
          "How long the job's restore drill took (list, restore, compare); in backup, also how much longer the LVM snapshot stayed mounted.",
          r,
          restore.duration_ms === null ? null : seconds(restore.duration_ms),
        );
      }
      for (const latest of job.latest) {
        const r = { ...j, repository: latest.repo };
        const time = latest.time === null || latest.age_s === null ? null : timestampSeconds(latest.time);
        add(
          "rlvm_fleet_latest_snapshot_age_seconds",
          "Age of the job's latest snapshot in the repository when status ran (absent: none, or no valid time).",
          r,
          latest.age_s,
        );
        add(
          "rlvm_fleet_latest_snapshot_timestamp_seconds",
          "Time of the job's latest snapshot in the repository (Unix time; absent: none, or no valid time).",
          r,
          time,
        );
        add(
          "rlvm_fleet_latest_snapshot_stale",
          "1 when the job's latest snapshot in the repository is older than --max-age, or missing.",
          r,
          latest.stale ? 1 : 0,
        );
        add(
          "rlvm_fleet_latest_snapshot_readable",
          "1 when status could read the repository, 0 when it could not.",
          r,
          latest.error === null ? 1 : 0,
        );
      }
    }
  }

  // prune and verify: each repository's one prune or check (phase 2), by repository, whoever ran it.
  const carriedPrunes = previousSamples(previous, LAST_PRUNE);
  const carriedChecks = previousSamples(previous, LAST_CHECK);
  for (const repository of report.repositories) {
    const r = { repository: repository.url, repository_id: repository.id ?? "" };
    for (const prune of repository.actions.filter((a) => a.action === "prune")) {
      for (const status of RUN_STATUSES)
        add(
          "rlvm_fleet_repository_prune_status",
          "1 for the status of the repository's prune in this run (planned: a dry run's), 0 for the others.",
          { ...r, host: prune.host, status },
          prune.status === status ? 1 : 0,
        );
      add(
        "rlvm_fleet_repository_prune_duration_seconds",
        "How long restic prune of the repository took.",
        r,
        prune.duration_ms === null ? null : seconds(prune.duration_ms),
      );
      add(
        LAST_PRUNE,
        "When the repository was last pruned successfully (Unix time; kept from the previous file when this run's prune did not succeed).",
        r,
        prune.status === "ok" ? finished : (carriedPrunes.get(`${LAST_PRUNE}${labelText(r)}`) ?? null),
      );
    }
    for (const check of repository.actions.filter((a) => a.action === "check")) {
      for (const status of RUN_STATUSES)
        add(
          "rlvm_fleet_repository_check_status",
          "1 for the status of the repository's restic check in this run (planned: a dry run's), 0 for the others.",
          { ...r, host: check.host, status },
          check.status === status ? 1 : 0,
        );
      add(
        "rlvm_fleet_repository_check_duration_seconds",
        "How long restic check --read-data-subset of the repository took.",
        r,
        check.duration_ms === null ? null : seconds(check.duration_ms),
      );
      add(
        LAST_CHECK,
        "When restic check of the repository last succeeded (Unix time; kept from the previous file when this run's check did not succeed).",
        r,
        check.status === "ok" ? finished : (carriedChecks.get(`${LAST_CHECK}${labelText(r)}`) ?? null),
      );
    }
    // An entry without an id (no host could read it) is not one known repository: its hosts' own
    // prune status says what happened there.
    if (report.command === "prune" && repository.id !== null)
      add(
        "rlvm_fleet_repository_missing_forgets",
        "Hosts using the repository whose forget did not happen in this prune run (their snapshots were kept).",
        r,
        repository.missing_forgets.length,
      );
  }

  const lines: string[] = [];
  for (const family of families.values()) {
    lines.push(`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} gauge`);
    for (const s of family.samples) lines.push(`${family.name}${labelText(s.labels)} ${s.value}`);
  }
  return `${lines.join("\n")}\n`;
}

/** The samples of one family in the file a run replaces, by their series (name and labels as written). */
function previousSamples(previous: string, family: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of previous.split("\n")) {
    if (!line.startsWith(`${family}{`)) continue;
    const space = line.lastIndexOf(" ");
    const value = Number(line.slice(space + 1));
    if (space > 0 && line.slice(space + 1) !== "" && Number.isFinite(value))
      samples.set(line.slice(0, space), value);
  }
  return samples;
}
