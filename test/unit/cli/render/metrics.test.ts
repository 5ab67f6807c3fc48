// --metrics FILE: the report as Prometheus text, checked by promtool itself (Debian's prometheus
// package) and read back sample by sample.
import { describe, expect, it } from "vitest";
import { escapeLabelValue, renderReportMetrics } from "../../../../src/cli/render/metrics.js";
import type { Report } from "../../../../src/report/report-schema.js";
import { hostResult as host, jobResult, repoResult, report } from "../../../helpers/report-fixture.js";
import { promtool } from "../../../helpers/promtool.js";

const job = jobResult;
const repo = repoResult;

const failedRepo = (path: string) =>
  repo(path, {
    status: "failed",
    snapshot_id: null,
    files_new: null,
    files_changed: null,
    files_unmodified: null,
    data_added: null,
    data_added_packed: null,
    error: "restic backup failed (exit 1)",
  });

// A repository label as a masked URL can hold every character the format must escape.
const ODD = 'rest:https://u:***@vault/a "b" \\c\nd/';

/** The samples of `text` as "name{labels}" → value, and the families' HELP and TYPE lines. */
function parse(text: string) {
  const samples = new Map<string, number>();
  const help = new Set<string>();
  const type = new Map<string, string>();
  for (const line of text.trimEnd().split("\n")) {
    const meta = /^# (HELP|TYPE) (\S+) (.+)$/.exec(line);
    if (meta !== null) {
      if (meta[1] === "HELP") help.add(meta[2] ?? "");
      else type.set(meta[2] ?? "", meta[3] ?? "");
      continue;
    }
    const space = line.lastIndexOf(" ");
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return { samples, help, type };
}

const finished = (r: Report) => Date.parse(r.finished_at) / 1000;

const backupReport = () =>
  report("backup", [
    host("web1", "ok", {
      duration_ms: 2500,
      jobs: [
        job({
          snapshot: { name: "lv_data_rlvm_x", lifetime_ms: 4200, cow_peak_percent: 12.5, overflowed: false },
          repos: [repo("/srv/backup/a"), repo(ODD, { data_added: 3 * 1024 * 1024, files_new: 0 })],
          copies: [
            {
              from: "/srv/backup/a",
              to: "sftp:vault:/c",
              status: "ok",
              duration_ms: 1200,
              error: null,
              error_code: null,
            },
            {
              from: "/srv/backup/a",
              to: "/mnt/usb",
              status: "failed",
              duration_ms: null,
              error: "restic copy failed",
              error_code: null,
            },
          ],
        }),
      ],
    }),
    host("db1", "failed", {
      error: { code: "backup_failed", message: "1 of 1 jobs failed", hint: "see below" },
      jobs: [job({ status: "failed", repos: [failedRepo("/srv/backup/a")] })],
    }),
    host("db3", "unreachable", { error: { code: "refused", message: "refused", hint: "start sshd" } }),
  ]);

describe("renderReportMetrics", () => {
  it("backup: per host status, duration and run time; per job and repository the backup's numbers", (ctx) => {
    const r = backupReport();
    const text = renderReportMetrics(r);
    const { samples, help, type } = parse(text);
    const t = finished(r);
    const a = 'host="web1",job="data",repository="/srv/backup/a"';
    const odd = `host="web1",job="data",repository="${escapeLabelValue(ODD)}"`;
    expect(Object.fromEntries(samples)).toMatchObject({
      'rlvm_fleet_run_exit_code{command="backup"}': 1,
      'rlvm_fleet_run_duration_seconds{command="backup"}': 1.5,
      'rlvm_fleet_run_hosts{command="backup",status="failed"}': 1,
      'rlvm_fleet_host_status{host="web1",command="backup",status="ok"}': 1,
      'rlvm_fleet_host_status{host="web1",command="backup",status="failed"}': 0,
      'rlvm_fleet_host_status{host="db1",command="backup",status="failed"}': 1,
      'rlvm_fleet_host_status{host="db3",command="backup",status="unreachable"}': 1,
      'rlvm_fleet_host_error{host="db3",command="backup",code="refused"}': 1,
      'rlvm_fleet_host_duration_seconds{host="web1",command="backup"}': 2.5,
      'rlvm_fleet_host_last_run_timestamp_seconds{host="db3",command="backup"}': t,
      'rlvm_fleet_snapshot_lifetime_seconds{host="web1",job="data"}': 4.2,
      'rlvm_fleet_snapshot_cow_peak_ratio{host="web1",job="data"}': 0.125,
      [`rlvm_fleet_backup_last_success_timestamp_seconds{${a}}`]: t,
      [`rlvm_fleet_backup_files_new{${a}}`]: 3,
      [`rlvm_fleet_backup_files_changed{${a}}`]: 1,
      [`rlvm_fleet_backup_data_added_bytes{${a}}`]: 2048,
      [`rlvm_fleet_backup_duration_seconds{${a}}`]: 0.9,
      [`rlvm_fleet_backup_status{${a},status="ok"}`]: 1,
      [`rlvm_fleet_backup_data_added_bytes{${odd}}`]: 3 * 1024 * 1024,
      [`rlvm_fleet_backup_files_new{${odd}}`]: 0,
      'rlvm_fleet_backup_status{host="db1",job="data",repository="/srv/backup/a",status="failed"}': 1,
      [`rlvm_fleet_copy_status{${a},destination="sftp:vault:/c",status="ok"}`]: 1,
      [`rlvm_fleet_copy_last_success_timestamp_seconds{${a},destination="sftp:vault:/c"}`]: t,
      [`rlvm_fleet_copy_duration_seconds{${a},destination="sftp:vault:/c"}`]: 1.2,
      [`rlvm_fleet_copy_status{${a},destination="/mnt/usb",status="failed"}`]: 1,
    });
    // A copy that failed has no success time of its own (none earlier either) and no duration.
    expect(text).not.toMatch(
      /rlvm_fleet_copy_(last_success_timestamp|duration)_seconds\{[^}]*destination="\/mnt\/usb"/,
    );
    // Escaped as the exposition format says: \\, \" and \n, on one line.
    expect(text).toContain('repository="rest:https://u:***@vault/a \\"b\\" \\\\c\\nd/"');
    // A failed backup with no earlier success has no success time, and no numbers it never had.
    expect(text).not.toMatch(/rlvm_fleet_backup_(last_success_timestamp_seconds|files_new)\{host="db1"/);
    expect(text).not.toMatch(/rlvm_fleet_host_error\{host="web1"/);
    // Every family has HELP and TYPE (gauge), and every sample belongs to one.
    const names = new Set([...samples.keys()].map((k) => k.replace(/\{.*$/, "")));
    for (const name of names) {
      expect(name).toMatch(/^rlvm_fleet_[a-z_]+$/);
      expect(help, name).toContain(name);
      expect(type.get(name), name).toBe("gauge");
    }
    expect(help.size).toBe(names.size);
    expect(promtool(ctx, text)).toEqual({ code: 0, output: "" });
  });

  it("a backup that did not succeed keeps the last success time of the file it replaces", () => {
    const first = backupReport();
    const before = renderReportMetrics(first);
    const key =
      'rlvm_fleet_backup_last_success_timestamp_seconds{host="web1",job="data",repository="/srv/backup/a"}';
    const oddKey = `rlvm_fleet_backup_last_success_timestamp_seconds{host="web1",job="data",repository="${escapeLabelValue(ODD)}"}`;
    expect(parse(before).samples.get(key)).toBe(finished(first));
    // The next run: web1's first repository fails, the odd one succeeds again, later.
    const next: Report = {
      ...report("backup", [
        host("web1", "failed", {
          error: { code: "backup_failed", message: "1 of 1 jobs failed", hint: "see below" },
          jobs: [
            job({
              status: "failed",
              repos: [failedRepo("/srv/backup/a"), repo(ODD)],
              copies: [
                {
                  from: "/srv/backup/a",
                  to: "sftp:vault:/c",
                  status: "failed",
                  duration_ms: null,
                  error: "x",
                  error_code: null,
                },
              ],
            }),
          ],
        }),
      ]),
      finished_at: "2026-01-02T03:04:05.000Z",
    };
    const after = parse(renderReportMetrics(next, before)).samples;
    expect(after.get(key)).toBe(finished(first));
    // The same for a copy_to destination: the failed copy keeps the earlier copy's time.
    const copyKey =
      'rlvm_fleet_copy_last_success_timestamp_seconds{host="web1",job="data",repository="/srv/backup/a",destination="sftp:vault:/c"}';
    expect(parse(before).samples.get(copyKey)).toBe(finished(first));
    expect(after.get(copyKey)).toBe(finished(first));
    expect(after.get(oddKey)).toBe(Date.parse("2026-01-02T03:04:05.000Z") / 1000);
    // Without the earlier file there is nothing to keep; garbage in it is ignored.
    expect(parse(renderReportMetrics(next)).samples.has(key)).toBe(false);
    expect(parse(renderReportMetrics(next, `${key} not-a-number\n${key}\n`)).samples.has(key)).toBe(false);
    // A series the new report does not have is not carried (the host left the selection).
    expect(
      parse(renderReportMetrics(next, before.replaceAll('host="web1"', 'host="gone"'))).samples.has(
        key.replace("web1", "gone"),
      ),
    ).toBe(false);
  });

  it("prune: kept and removed per host, job and repository; status: age, time and staleness", (ctx) => {
    const prune = report("prune", [
      host("web1", "ok", {
        jobs: [
          job({
            prunes: [
              {
                repo: "/srv/a",
                status: "ok",
                kept: 7,
                removed: 2,
                removed_ids: ["a", "b"],
                dry_run: false,
                error: null,
                error_code: null,
              },
            ],
          }),
        ],
      }),
    ]);
    const pruneText = renderReportMetrics(prune);
    expect(Object.fromEntries(parse(pruneText).samples)).toMatchObject({
      'rlvm_fleet_prune_snapshots_kept{host="web1",job="data",repository="/srv/a"}': 7,
      'rlvm_fleet_prune_snapshots_removed{host="web1",job="data",repository="/srv/a"}': 2,
      'rlvm_fleet_prune_status{host="web1",job="data",repository="/srv/a",status="ok"}': 1,
    });
    expect(pruneText).not.toContain("rlvm_fleet_backup_");
    expect(promtool(ctx, pruneText)).toEqual({ code: 0, output: "" });

    const time = "2025-12-31T23:00:00.5Z";
    const status = report("status", [
      host("web1", "failed", {
        error: { code: "stale", message: "no snapshot newer than --max-age", hint: "run backup" },
        jobs: [
          job({
            status: "failed",
            latest: [
              {
                repo: "/srv/a",
                snapshot_id: "1a2b3c4d",
                time,
                age_s: 3600,
                stale: false,
                error: null,
                error_code: null,
              },
              {
                repo: "/srv/b",
                snapshot_id: null,
                time: null,
                age_s: null,
                stale: true,
                error: null,
                error_code: null,
              },
              {
                repo: "/srv/c",
                snapshot_id: "5e6f7a8b",
                time: "not a time",
                age_s: null,
                stale: true,
                error: null,
                error_code: null,
              },
              {
                repo: "/srv/d",
                snapshot_id: null,
                time: null,
                age_s: null,
                stale: false,
                error: "wrong password",
                error_code: null,
              },
            ],
          }),
        ],
      }),
    ]);
    const statusText = renderReportMetrics(status);
    const s = parse(statusText).samples;
    const r = (repository: string) => `{host="web1",job="data",repository="${repository}"}`;
    expect(s.get(`rlvm_fleet_latest_snapshot_age_seconds${r("/srv/a")}`)).toBe(3600);
    expect(s.get(`rlvm_fleet_latest_snapshot_timestamp_seconds${r("/srv/a")}`)).toBe(Date.parse(time) / 1000);
    expect(s.get(`rlvm_fleet_latest_snapshot_stale${r("/srv/a")}`)).toBe(0);
    // No snapshot, or a time that is not one: no age and no time, and stale says so.
    for (const repository of ["/srv/b", "/srv/c"]) {
      expect(s.has(`rlvm_fleet_latest_snapshot_age_seconds${r(repository)}`)).toBe(false);
      expect(s.has(`rlvm_fleet_latest_snapshot_timestamp_seconds${r(repository)}`)).toBe(false);
      expect(s.get(`rlvm_fleet_latest_snapshot_stale${r(repository)}`)).toBe(1);
    }
    expect(s.get(`rlvm_fleet_latest_snapshot_readable${r("/srv/d")}`)).toBe(0);
    expect(s.get(`rlvm_fleet_latest_snapshot_readable${r("/srv/a")}`)).toBe(1);
    expect(s.get('rlvm_fleet_host_error{host="web1",command="status",code="stale"}')).toBe(1);
    expect(promtool(ctx, statusText)).toEqual({ code: 0, output: "" });
  });

  it("prune: each repository's one prune by id; its last success carried over a failed prune", (ctx) => {
    const id = "a".repeat(64);
    const pruned = (status: "ok" | "failed"): Report => ({
      ...report("prune", [host("web1", status === "ok" ? "ok" : "failed")]),
      repositories: [
        {
          id,
          url: "/srv/restic",
          hosts: [{ host: "web1", jobs: ["data"] }],
          actions: [
            { action: "forget", host: "web1", for_host: null, status: "ok", duration_ms: 100, error: null },
            { action: "prune", host: "web1", for_host: null, status, duration_ms: 2500, error: null },
          ],
          missing_forgets: ["web2"],
        },
        // No host could read this one: it has no identity, and no repository series.
        {
          id: null,
          url: "/srv/other",
          hosts: [{ host: "web1", jobs: ["x"] }],
          actions: [],
          missing_forgets: [],
        },
      ],
    });
    const first = renderReportMetrics(pruned("ok"));
    expect(promtool(ctx, first)).toEqual({ code: 0, output: "" });
    const r = `{repository="/srv/restic",repository_id="${id}"}`;
    const m = parse(first).samples;
    expect(
      m.get(
        `rlvm_fleet_repository_prune_status{repository="/srv/restic",repository_id="${id}",host="web1",status="ok"}`,
      ),
    ).toBe(1);
    expect(m.get(`rlvm_fleet_repository_prune_duration_seconds${r}`)).toBe(2.5);
    expect(m.get(`rlvm_fleet_repository_last_prune_timestamp_seconds${r}`)).toBe(1.5);
    expect(m.get(`rlvm_fleet_repository_missing_forgets${r}`)).toBe(1);
    expect(first).not.toContain("/srv/other");
    // The next run's prune fails: the series keeps the last success instead of vanishing.
    const failed = { ...pruned("failed"), finished_at: new Date(9000).toISOString() };
    const second = parse(renderReportMetrics(failed, first)).samples;
    expect(second.get(`rlvm_fleet_repository_last_prune_timestamp_seconds${r}`)).toBe(1.5);
    expect(
      second.get(
        `rlvm_fleet_repository_prune_status{repository="/srv/restic",repository_id="${id}",host="web1",status="failed"}`,
      ),
    ).toBe(1);
  });

  it("check, ping and a skipped host: host families only; a skipped host has no run time", (ctx) => {
    const text = renderReportMetrics(
      report("check", [host("web1", "ok"), host("db1", "skipped")], { interrupted: true }),
    );
    const s = parse(text).samples;
    expect(s.get('rlvm_fleet_run_exit_code{command="check"}')).toBe(130);
    expect(s.get('rlvm_fleet_host_status{host="db1",command="check",status="skipped"}')).toBe(1);
    expect(s.has('rlvm_fleet_host_last_run_timestamp_seconds{host="db1",command="check"}')).toBe(false);
    expect(s.has('rlvm_fleet_host_last_run_timestamp_seconds{host="web1",command="check"}')).toBe(true);
    expect(text).not.toMatch(/rlvm_fleet_(backup|prune|latest|snapshot)_/);
    expect(promtool(ctx, text)).toEqual({ code: 0, output: "" });
  });

  it("promtool rejects what the format forbids, so its verdict above means something", (ctx) => {
    const bad = promtool(ctx, 'rlvm_fleet_x{repository="a"b"} 1\n');
    expect(bad.code).not.toBe(0);
  });
});
