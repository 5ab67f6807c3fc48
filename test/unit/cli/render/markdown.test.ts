// The markdown report (--format markdown): for a ticket, a wiki or a CI summary, the same facts as the
// table: every host with its status, and every failure with its reason.
import { describe, expect, it } from "vitest";
import { renderReportMarkdown } from "../../../../src/cli/render/markdown.js";
import type { JobResult } from "../../../../src/report/report-schema.js";
import { hostResult as host, jobResult, repoResult, report } from "../../../helpers/report-fixture.js";

const job = (extra: Partial<JobResult>) => jobResult({ category: "standard_path", ...extra });
const repo = repoResult;

const unreachable = host("db3", "unreachable", {
  error: { code: "refused", message: "connection refused by 192.0.2.3:22", hint: "check that sshd runs" },
});

describe("renderReportMarkdown", () => {
  it("backup: a row per repository and copy, for ok, partial, failed and unreachable hosts, with the errors", () => {
    const hosts = [
      host("web1", "ok", {
        jobs: [
          job({
            repos: [
              repo("/srv/backup/a"),
              repo("/srv/backup/b", { snapshot_id: "5e6f7a8b", data_added: 3 * 1024 * 1024 }),
            ],
            copies: [
              {
                from: "/srv/backup/a",
                to: "sftp:vault:/copy",
                status: "ok",
                duration_ms: 50,
                error: null,
                error_code: null,
              },
            ],
          }),
        ],
      }),
      host("web2", "partial", {
        warnings: [{ code: "restic_partial", message: "restic could not read 1 file" }],
        jobs: [
          job({
            status: "partial",
            repos: [repo("/srv/backup/a", { status: "partial", error: "1 file unreadable" })],
          }),
        ],
      }),
      host("db1", "failed", {
        error: {
          code: "backup_failed",
          message: "1 of 2 repositories failed",
          hint: "see the failed repositories",
        },
        jobs: [
          job({
            status: "failed",
            repos: [
              repo("/srv/backup/a"),
              repo("rest:https://u:***@vault/db1/", {
                status: "failed",
                snapshot_id: null,
                files_new: null,
                files_changed: null,
                files_unmodified: null,
                data_added: null,
                data_added_packed: null,
                error: "restic backup failed (exit 1): Fatal: wrong password | or no key found\nsecond line",
              }),
            ],
            copies: [
              {
                from: "rest:https://u:***@vault/db1/",
                to: "/srv/copy",
                status: "failed",
                duration_ms: null,
                error: "not run: its source repository failed",
                error_code: null,
              },
            ],
          }),
        ],
      }),
      unreachable,
    ];
    expect(renderReportMarkdown(report("backup", hosts))).toBe(
      [
        "## rlvm-fleet backup",
        "",
        "Run `20260101T000000Z-abc123`: 4 hosts, ok 1, partial 1, failed 1, unreachable 1, skipped 0; exit 1.",
        "",
        "| host | job | status | repository | snapshot | files new/changed | added | error |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        "| web1 | data | ok | /srv/backup/a | 1a2b3c4d | 3/1 | 2.0 KiB |  |",
        "| web1 | data | ok | /srv/backup/b | 5e6f7a8b | 3/1 | 3.0 MiB |  |",
        "| web1 | data | ok | copy → sftp:vault:/copy |  |  |  |  |",
        "| web2 | data | partial | /srv/backup/a | 1a2b3c4d | 3/1 | 2.0 KiB | 1 file unreadable |",
        "| db1 | data | ok | /srv/backup/a | 1a2b3c4d | 3/1 | 2.0 KiB |  |",
        "| db1 | data | failed | rest:https://u:***@vault/db1/ |  |  |  | restic backup failed (exit 1): Fatal: wrong password \\| or no key found second line |",
        "| db1 | data | failed | copy → /srv/copy |  |  |  | not run: its source repository failed |",
        "| db3 |  | unreachable |  |  |  |  | connection refused by 192.0.2.3:22 |",
        "",
        "- **web2** warning (`restic_partial`): restic could not read 1 file",
        "- **db1** failed (`backup_failed`): 1 of 2 repositories failed. see the failed repositories",
        "- **db3** unreachable (`refused`): connection refused by 192.0.2.3:22. check that sshd runs",
        "",
      ].join("\n"),
    );
  });

  it("check and ping: a row per host with its error, hint and failed checks", () => {
    const hosts = [
      host("web1", "ok", {
        checks: [{ name: "restic", ok: true, detail: "restic 0.16.4", hint: "", code: null }],
      }),
      host("db1", "failed", {
        error: {
          code: "preflight",
          message: "2 of 3 checks failed",
          hint: "fix the failed checks: restic, lock",
        },
        checks: [
          { name: "bash", ok: true, detail: "5.2", hint: "", code: null },
          { name: "restic", ok: false, detail: "restic not found", hint: "install restic", code: null },
          { name: "lock", ok: false, detail: "held by another run", hint: "wait", code: null },
        ],
      }),
      unreachable,
    ];
    expect(renderReportMarkdown(report("check", hosts))).toBe(
      [
        "## rlvm-fleet check",
        "",
        "Run `20260101T000000Z-abc123`: 3 hosts, ok 1, partial 0, failed 1, unreachable 1, skipped 0; exit 1.",
        "",
        "| host | status | error | hint | failed checks |",
        "| --- | --- | --- | --- | --- |",
        "| web1 | ok |  |  |  |",
        "| db1 | failed | 2 of 3 checks failed | fix the failed checks: restic, lock | restic: restic not found; lock: held by another run |",
        "| db3 | unreachable | connection refused by 192.0.2.3:22 | check that sshd runs |  |",
        "",
      ].join("\n"),
    );
  });

  it("status: the latest snapshot per repository, stale and never marked, a failed host's error", () => {
    const latest = (
      repoPath: string,
      snapshot: string | null,
      age: number | null,
      stale: boolean,
      error: string | null = null,
    ) => ({
      repo: repoPath,
      snapshot_id: snapshot,
      time: snapshot === null ? null : "2026-01-01T00:00:00Z",
      age_s: age,
      stale,
      error,
      error_code: null,
    });
    const hosts = [
      host("web1", "ok", { jobs: [job({ latest: [latest("/srv/backup/a", "1a2b3c4d", 3600, false)] })] }),
      host("db1", "failed", {
        error: {
          code: "stale",
          message: "no snapshot newer than --max-age for data in /srv/backup/a",
          hint: "run backup",
        },
        jobs: [
          job({
            latest: [
              latest("/srv/backup/a", "5e6f7a8b", 90_000, true),
              latest("/srv/backup/b", null, null, true),
              latest("/srv/backup/c", null, null, false, "repository does not exist"),
            ],
          }),
        ],
      }),
      unreachable,
    ];
    expect(renderReportMarkdown(report("status", hosts))).toBe(
      [
        "## rlvm-fleet status",
        "",
        "Run `20260101T000000Z-abc123`: 3 hosts, ok 1, partial 0, failed 1, unreachable 1, skipped 0; exit 1.",
        "",
        "| host | job | repository | latest | age (s) | stale | error |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        "| web1 | data | /srv/backup/a | 1a2b3c4d | 3600 |  |  |",
        "| db1 | data | /srv/backup/a | 5e6f7a8b | 90000 | STALE |  |",
        "| db1 | data | /srv/backup/b | never |  | STALE |  |",
        "| db1 | data | /srv/backup/c | never |  |  | repository does not exist |",
        "| db3 |  |  |  |  |  | connection refused by 192.0.2.3:22 |",
        "",
        "- **db1** failed (`stale`): no snapshot newer than --max-age for data in /srv/backup/a. run backup",
        "- **db3** unreachable (`refused`): connection refused by 192.0.2.3:22. check that sshd runs",
        "",
      ].join("\n"),
    );
  });

  it("prune --dry-run: says so, and lists what each repository keeps and would remove", () => {
    const prune = (repoPath: string, extra: Partial<JobResult["prunes"][number]> = {}) => ({
      repo: repoPath,
      status: "ok" as const,
      kept: 3,
      removed: 2,
      removed_ids: ["aaaa1111", "bbbb2222"],
      dry_run: true,
      error: null,
      error_code: null,
      ...extra,
    });
    const hosts = [
      host("web1", "ok", { jobs: [job({ prunes: [prune("/srv/backup/a")] })] }),
      host("db1", "failed", {
        error: { code: "prune_failed", message: "1 repository failed", hint: "see below" },
        jobs: [
          job({
            status: "failed",
            prunes: [
              prune("/srv/backup/b", {
                status: "failed",
                kept: null,
                removed: null,
                removed_ids: [],
                error: "repository is locked",
                error_code: null,
              }),
            ],
          }),
        ],
      }),
      unreachable,
    ];
    expect(renderReportMarkdown(report("prune", hosts, { dryRun: true }))).toBe(
      [
        "## rlvm-fleet prune (dry run)",
        "",
        "Run `20260101T000000Z-abc123`: 3 hosts, ok 1, partial 0, failed 1, unreachable 1, skipped 0; exit 1.",
        "",
        "| host | job | repository | status | kept | removed | error |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        "| web1 | data | /srv/backup/a | ok | 3 | 2 |  |",
        "| db1 | data | /srv/backup/b | failed |  |  | repository is locked |",
        "| db3 |  |  | unreachable |  |  | connection refused by 192.0.2.3:22 |",
        "",
        "- **db1** failed (`prune_failed`): 1 repository failed. see below",
        "- **db3** unreachable (`refused`): connection refused by 192.0.2.3:22. check that sshd runs",
        "",
      ].join("\n"),
    );
  });

  it("an interrupted run: skipped hosts are listed, and the exit is 130", () => {
    const hosts = [
      host("web1", "failed", {
        error: { code: "interrupted", message: "interrupted before the host finished", hint: "run again" },
      }),
      host("web2", "skipped"),
    ];
    const text = renderReportMarkdown(report("ping", hosts, { interrupted: true }));
    expect(text).toContain("2 hosts, ok 0, partial 0, failed 1, unreachable 0, skipped 1; exit 130.");
    expect(text).toContain("| web1 | failed | interrupted before the host finished | run again |  |");
    expect(text).toContain("| web2 | skipped |  |  |  |");
  });
});
