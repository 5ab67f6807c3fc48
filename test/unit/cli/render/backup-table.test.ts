// backup's renderings of a --verify-sample run: the table's verify sample column and failure line,
// markdown's sample row, and the metrics (checked by promtool) with command="backup".
import { describe, expect, it } from "vitest";
import { renderReportMarkdown } from "../../../../src/cli/render/markdown.js";
import { renderReportMetrics } from "../../../../src/cli/render/metrics.js";
import { renderReportTable } from "../../../../src/cli/render/report-table.js";
import { makeStyle } from "../../../../src/cli/render/style.js";
import type { RestoreResult } from "../../../../src/report/report-schema.js";
import { hostResult as host, jobResult as job, repoResult, report } from "../../../helpers/report-fixture.js";
import { promtool } from "../../../helpers/promtool.js";

const sample = (extra: Partial<RestoreResult> = {}): RestoreResult => ({
  repo: "/srv/a",
  status: "ok",
  requested: 5,
  compared_with: "lvm_snapshot",
  snapshot_id: "1a2b3c4d",
  candidates: 40,
  sampled: 5,
  matched: 5,
  changed_since_backup: 0,
  mismatched: 0,
  missing: 0,
  mismatch_paths: [],
  changed_paths: [],
  missing_paths: [],
  sampled_paths: ["/data/a", "/data/b", "/data/c", "/data/d", "/data/e"],
  duration_ms: 1200,
  snapshot_held_ms: 1200,
  error: null,
  ...extra,
});
const SNAPSHOT = { name: "vg0/lv_data_rlvm_x", lifetime_ms: 9000, cow_peak_percent: 3, overflowed: false };
const MISMATCH = "1 file(s) differ from the LVM snapshot restic read them from: /data/c";

function sampledReport() {
  const lv = (status: "ok" | "failed", restore: RestoreResult) =>
    job({
      category: "logical_volume_nonroot",
      status,
      snapshot: SNAPSHOT,
      repos: [repoResult("/srv/a", { snapshot_id: "1a2b3c4d" })],
      restore,
    });
  return report("backup", [
    host("db1", "ok", { jobs: [lv("ok", sample())] }),
    host("db2", "failed", {
      error: {
        code: "verify_sample_failed",
        message: `1 of 1 jobs' backups were written, but their verify sample failed: job data: ${MISMATCH}`,
        hint: "h",
      },
      jobs: [
        lv(
          "failed",
          sample({
            status: "failed",
            matched: 4,
            mismatched: 1,
            mismatch_paths: ["/data/c"],
            error: MISMATCH,
          }),
        ),
      ],
    }),
  ]);
}

describe("backup renderings with --verify-sample", () => {
  it("table: a verify sample column only in a run that sampled, and the mismatch under the table", () => {
    const text = renderReportTable(sampledReport(), makeStyle(false));
    expect(text).toMatch(/│ verify sample +│ time +│/);
    expect(text).toMatch(
      /db1 +│ data +│ ok +│ 1\/1 +│ 1a2b3c4d +│ .*│ 9\.0s, COW 3% +│ 5\/5 matched, \+1\.2s snapshot +│/,
    );
    expect(text).toMatch(/db2 +│ data +│ failed +│ .*│ 1 of 5 differ, \+1\.2s snapshot +│/);
    expect(text).toContain(`✗ db2 / data verify sample from /srv/a: ${MISMATCH}`);
    const plain = renderReportTable(
      report("backup", [host("db1", "ok", { jobs: [job({ repos: [repoResult("/srv/a")] })] })]),
      makeStyle(false),
    );
    expect(plain).not.toContain("verify sample");
  });

  it("markdown: a sample row per job", () => {
    const text = renderReportMarkdown(sampledReport());
    expect(text).toContain(
      "| db1 | data | ok | verify sample ← /srv/a | 1a2b3c4d | 5/5 matched, +1.2s snapshot |  |  |",
    );
    expect(text).toContain(
      `| db2 | data | failed | verify sample ← /srv/a | 1a2b3c4d | 1 of 5 differ, +1.2s snapshot |  | ${MISMATCH} |`,
    );
  });

  it('metrics: the restore sample families with command="backup", which promtool accepts', (ctx) => {
    const text = renderReportMetrics(sampledReport());
    expect(text).toContain(
      'rlvm_fleet_restore_sample_files{host="db2",job="data",command="backup",repository="/srv/a",result="mismatch"} 1',
    );
    expect(promtool(ctx, text)).toEqual({ code: 0, output: "" });
  });
});
