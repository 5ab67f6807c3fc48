// verify's renderings: the table, markdown and metrics (checked by promtool) of one report with a
// failed repository check, a mismatch, a changed file and an unreachable host; and the dry run's.
import { describe, expect, it } from "vitest";
import { renderReportMarkdown } from "../../../../src/cli/render/markdown.js";
import { LAST_CHECK, renderReportMetrics } from "../../../../src/cli/render/metrics.js";
import { renderReportTable } from "../../../../src/cli/render/report-table.js";
import { makeStyle } from "../../../../src/cli/render/style.js";
import {
  reportSchema,
  type Report,
  type Repository,
  type RestoreResult,
} from "../../../../src/report/report-schema.js";
import { hostResult as host, jobResult as job, report } from "../../../helpers/report-fixture.js";
import { promtool } from "../../../helpers/promtool.js";

const ID_A = "a".repeat(64);
const ID_B = "b".repeat(64);
const FACTS = {
  hostname: "h",
  kernel: "6.1",
  os: "Debian",
  bash: "5.2",
  restic: "0.14.0",
  lvm: null,
  user: "root",
};

const restore = (extra: Partial<RestoreResult> = {}): RestoreResult => ({
  repo: "/srv/a",
  status: "ok",
  requested: 5,
  compared_with: "live",
  snapshot_id: "1a2b3c4d",
  candidates: 40,
  sampled: 5,
  matched: 4,
  changed_since_backup: 1,
  mismatched: 0,
  missing: 0,
  mismatch_paths: [],
  changed_paths: ["/srv/data/log.txt"],
  missing_paths: [],
  sampled_paths: ["/srv/data/a", "/srv/data/b", "/srv/data/db.bin", "/srv/data/log.txt", "/srv/data/z"],
  duration_ms: 1200,
  snapshot_held_ms: null,
  error: null,
  ...extra,
});

const checked = (
  url: string,
  id: string,
  on: string,
  status: "ok" | "failed" | "planned",
  error: string | null = null,
): Repository => ({
  id,
  url,
  hosts: [{ host: on, jobs: ["data"] }],
  actions: [
    {
      action: "check",
      host: on,
      for_host: null,
      status,
      duration_ms: status === "planned" ? null : 3000,
      error,
      subset: "3/7",
    },
  ],
  missing_forgets: [],
});

const REASON = "restic check failed (exit 1): Pack ID does not match | Fatal: repository contains errors";

function verifyReport(): Report {
  const base = report("verify", [
    host("web1", "ok", { facts: FACTS, jobs: [job({ restore: restore() })] }),
    host("web2", "failed", {
      facts: FACTS,
      error: {
        code: "verify_failed",
        message: `restic check of rest:http://vault/fleet/: ${REASON}; restore drill of job data: 1 file(s) differ`,
        hint: "see restic's reason",
      },
      jobs: [
        job({
          status: "failed",
          restore: restore({
            status: "failed",
            matched: 3,
            mismatched: 1,
            changed_since_backup: 1,
            mismatch_paths: ["/srv/data/db.bin"],
            error: "1 file(s) differ from the snapshot with the same size and mtime: /srv/data/db.bin",
          }),
        }),
      ],
    }),
    host("web3", "unreachable", {
      error: { code: "refused", message: "connection refused", hint: "check sshd" },
      jobs: [job({ status: "skipped", restore: restore({ status: "skipped", ...UNRUN }) })],
    }),
  ]);
  return reportSchema.parse({
    ...base,
    repositories: [
      checked("/srv/a", ID_A, "web1", "ok"),
      checked("rest:http://vault/fleet/", ID_B, "web2", "failed", REASON),
    ],
  });
}

const UNRUN = {
  snapshot_id: null,
  candidates: null,
  sampled: null,
  matched: null,
  changed_since_backup: null,
  mismatched: null,
  missing: null,
  changed_paths: [],
  sampled_paths: [],
  duration_ms: null,
};

function samples(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.trimEnd().split("\n")) {
    if (line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    out[line.slice(0, space)] = Number(line.slice(space + 1));
  }
  return out;
}

describe("verify renderings", () => {
  it("table: a row per host and job with the drill's counts, notes, and each repository's one check", () => {
    const text = renderReportTable(verifyReport(), makeStyle(false));
    const row = (host: string) => text.split("\n").find((line) => line.includes(` ${host} `)) ?? "";
    expect(row("web1")).toMatch(/web1 +│ data +│ \/srv\/a +│ ok +│ 1a2b3c4d +│ 5 of 40 +│ 4 +│ 1 +│ 0/);
    expect(row("web2")).toMatch(/web2 +│ data +│ \/srv\/a +│ failed +│ 1a2b3c4d +│ 5 of 40 +│ 3 +│ 1 +│ 1/);
    expect(row("web3")).toMatch(/web3 +│ +│ +│ unreachable/);
    expect(text).toContain("i web1 / data: changed since the backup (not compared): /srv/data/log.txt");
    expect(text).toContain(
      "✗ web2 / data: 1 file(s) differ from the snapshot with the same size and mtime: /srv/data/db.bin",
    );
    expect(text).toContain("checked, once per repository (restic check --read-data-subset):");
    expect(text).toContain("  /srv/a  on web1  ok  subset 3/7 in 3.0s");
    expect(text).toContain(`  rest:http://vault/fleet/  on web2  failed  subset 3/7 in 3.0s: ${REASON}`);
    expect(text).toContain("RECAP verify 3 hosts: ok=1 partial=0 failed=1 unreachable=1 skipped=0");
  });

  it("table of a dry run: what each job would sample and which host would check each repository", () => {
    const dry = report(
      "verify",
      [
        host("web1", "ok", {
          facts: FACTS,
          jobs: [job({ status: "planned", restore: restore({ status: "planned", ...UNRUN }) })],
        }),
      ],
      { dryRun: true },
    );
    const text = renderReportTable(
      { ...dry, repositories: [checked("/srv/a", ID_A, "web1", "planned")] },
      makeStyle(false),
    );
    expect(text).toMatch(/^dry run: no data was read\n/);
    expect(text).toMatch(/web1 +│ data +│ \/srv\/a +│ planned +│ +│ would 5 +│/);
    expect(text).toContain("would check, once per repository (restic check --read-data-subset):");
    expect(text).toContain("  /srv/a  on web1  planned  subset 3/7");
  });

  it("markdown: the drill per job and the check per repository", () => {
    const text = renderReportMarkdown(verifyReport());
    expect(text).toContain("| web1 | data | /srv/a | ok | 1a2b3c4d | 5 of 40 | 4 | 1 | 0 |  |");
    expect(text).toContain(
      "| web2 | data | /srv/a | failed | 1a2b3c4d | 5 of 40 | 3 | 1 | 1 | 1 file(s) differ from the snapshot with the same size and mtime: /srv/data/db.bin |",
    );
    expect(text).toContain("| repository | checked on | status | subset | duration (s) | error |");
    expect(text).toContain("| /srv/a | web1 | ok | 3/7 | 3.0 |  |");
    expect(text).toContain(
      `| rest:http://vault/fleet/ | web2 | failed | 3/7 | 3.0 | ${REASON.replaceAll("|", "\\|")} |`,
    );
  });

  it("metrics: check status, duration and last success per repository (carried over when it failed), and the drill's files per job", (ctx) => {
    const first = verifyReport();
    const text = renderReportMetrics(first);
    const got = samples(text);
    const a = 'repository="/srv/a",repository_id="' + ID_A + '"';
    const b = 'repository="rest:http://vault/fleet/",repository_id="' + ID_B + '"';
    expect(got).toMatchObject({
      [`rlvm_fleet_repository_check_status{${a},host="web1",status="ok"}`]: 1,
      [`rlvm_fleet_repository_check_status{${b},host="web2",status="failed"}`]: 1,
      [`rlvm_fleet_repository_check_status{${b},host="web2",status="ok"}`]: 0,
      [`rlvm_fleet_repository_check_duration_seconds{${a}}`]: 3,
      [`${LAST_CHECK}{${a}}`]: 1.5,
      'rlvm_fleet_restore_sample_files{host="web1",job="data",command="verify",repository="/srv/a",result="matched"}': 4,
      'rlvm_fleet_restore_sample_files{host="web1",job="data",command="verify",repository="/srv/a",result="changed"}': 1,
      'rlvm_fleet_restore_sample_files{host="web2",job="data",command="verify",repository="/srv/a",result="mismatch"}': 1,
      'rlvm_fleet_restore_sample_files{host="web2",job="data",command="verify",repository="/srv/a",result="missing"}': 0,
      'rlvm_fleet_restore_sample_status{host="web2",job="data",command="verify",repository="/srv/a",status="failed"}': 1,
      'rlvm_fleet_restore_sample_duration_seconds{host="web1",job="data",command="verify",repository="/srv/a"}': 1.2,
    });
    // A failed check has no success time of its own, and none to carry without an earlier file.
    expect(Object.keys(got).filter((k) => k.startsWith(`${LAST_CHECK}{${b}`))).toEqual([]);
    // The host that never ran has no counts.
    expect(Object.keys(got).filter((k) => k.includes('host="web3"') && k.includes("sample_files"))).toEqual(
      [],
    );
    expect(promtool(ctx, text)).toEqual({ code: 0, output: "" });
    // The next run, in which the /srv/a check fails, keeps the time of the earlier file.
    const next = {
      ...first,
      finished_at: "2026-01-02T00:00:00.000Z",
      repositories: [checked("/srv/a", ID_A, "web1", "failed", "restic check failed (exit 1): no")],
    };
    expect(samples(renderReportMetrics(next, text))[`${LAST_CHECK}{${a}}`]).toBe(1.5);
  });
});
