// report merge: shards' reports as one (counts, exit code, repositories), and its refusals (exit 2).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { UsageError } from "../../../src/errors.js";
import { mergeReports } from "../../../src/report/merge-reports.js";
import { reportSchema, type Report } from "../../../src/report/report-schema.js";
import { hostResult, report } from "../../helpers/report-fixture.js";
import { runCli, writeTree } from "../../helpers/run-cli.js";

const ID_A = "a".repeat(64);

function shard(k: number, n: number, base: Report, extra: Partial<Report> = {}): Report {
  return { ...base, options: { ...base.options, shard: { k, n } }, ...extra };
}

const files = (...reports: Report[]) => reports.map((r, i) => ({ file: `shard-${i + 1}.json`, report: r }));

describe("mergeReports", () => {
  it("sorts hosts, recomputes counts and the exit code, and spans the runs' times", () => {
    const one = shard(1, 2, report("ping", [hostResult("web2", "ok"), hostResult("db1", "unreachable")]), {
      run_id: "r1",
      started_at: "2026-01-01T00:00:05.000Z",
      finished_at: "2026-01-01T00:00:09.000Z",
    });
    const two = shard(2, 2, report("ping", [hostResult("web1", "failed")]), {
      run_id: "r2",
      started_at: "2026-01-01T00:00:01.000Z",
      finished_at: "2026-01-01T00:00:07.000Z",
    });
    const merged = reportSchema.parse(mergeReports(files(two, one)));
    expect(merged.hosts.map((h) => [h.name, h.status])).toEqual([
      ["db1", "unreachable"],
      ["web1", "failed"],
      ["web2", "ok"],
    ]);
    expect(merged.summary).toEqual({ hosts: 3, ok: 1, partial: 0, failed: 1, unreachable: 1, skipped: 0 });
    expect(merged.exit_code).toBe(1);
    expect(merged.run_id).toBe("r1+r2");
    expect(merged.started_at).toBe("2026-01-01T00:00:01.000Z");
    expect(merged.finished_at).toBe("2026-01-01T00:00:09.000Z");
    expect(merged.options.shard).toBeNull();
    expect(merged.warnings).toEqual([]);
  });

  it.each<[string[], number]>([
    [["ok", "ok"], 0],
    [["ok", "partial"], 3],
    [["unreachable", "partial"], 4],
    [["failed", "unreachable"], 1],
  ])("gives the exit code of one run over the same hosts: %j → %i", (statuses, code) => {
    const reports = statuses.map((status, i) =>
      shard(i + 1, 2, report("check", [hostResult(`h${i}`, status as never)])),
    );
    expect(mergeReports(files(...reports)).exit_code).toBe(code);
    const single = report(
      "check",
      statuses.map((status, i) => hostResult(`h${i}`, status as never)),
    );
    expect(single.exit_code).toBe(code);
  });

  it("stays interrupted (130) when one shard was", () => {
    const one = shard(1, 2, report("backup", [hostResult("a", "skipped")], { interrupted: true }));
    const two = shard(2, 2, report("backup", [hostResult("b", "failed")]));
    expect(one.exit_code).toBe(130);
    expect(mergeReports(files(one, two)).exit_code).toBe(130);
  });

  it("warns about shards with no report, and keeps the shards' warnings", () => {
    const empty = shard(2, 3, report("ping", []), {
      warnings: [{ code: "empty_shard", message: "shard 2/3 holds none of the 4 selected hosts" }],
    });
    const one = shard(1, 3, report("ping", [hostResult("a", "ok")]));
    const merged = mergeReports(files(empty, one));
    expect(merged.exit_code).toBe(0);
    expect(merged.warnings).toEqual([
      { code: "empty_shard", message: "shard 2/3 holds none of the 4 selected hosts" },
      { code: "missing_shards", message: "no report of shard 3/3: its hosts are not in this report" },
    ]);
  });

  it("combines entries of one repository id, and keeps host-local paths apart", () => {
    const repo = (host: string, jobs: string[], id: string | null, url: string) => ({
      id,
      url,
      hosts: [{ host, jobs }],
      actions: [],
      missing_forgets: [],
    });
    const one = shard(1, 2, report("backup", [hostResult("a", "ok")]), {
      repositories: [repo("a", ["data"], ID_A, "s3:s3.example/b"), repo("a", ["etc"], null, "/srv/backup")],
    });
    const two = shard(2, 2, report("backup", [hostResult("b", "unreachable")]), {
      repositories: [repo("b", ["data"], null, "s3:s3.example/b/"), repo("b", ["etc"], null, "/srv/backup")],
    });
    const merged = reportSchema.parse(mergeReports(files(one, two)));
    expect(merged.repositories).toEqual([
      repo("a", ["etc"], null, "/srv/backup"),
      repo("b", ["etc"], null, "/srv/backup"),
      {
        id: ID_A,
        url: "s3:s3.example/b",
        hosts: [
          { host: "a", jobs: ["data"] },
          { host: "b", jobs: ["data"] },
        ],
        actions: [],
        missing_forgets: [],
      },
    ]);
  });

  it.each<[string, Report[], RegExp]>([
    ["mixed commands", [shard(1, 2, report("ping", [])), shard(2, 2, report("check", []))], /mixed command/],
    [
      "mixed dry runs",
      [shard(1, 2, report("backup", [], { dryRun: true })), shard(2, 2, report("backup", []))],
      /mixed dry run/,
    ],
    ["different N", [shard(1, 2, report("ping", [])), shard(2, 3, report("ping", []))], /mixed split/],
    [
      "a host in two shards",
      [
        shard(1, 2, report("ping", [hostResult("a", "ok")])),
        shard(2, 2, report("ping", [hostResult("a", "ok")])),
      ],
      /overlap/,
    ],
    ["one shard twice", [shard(1, 2, report("ping", [])), shard(1, 2, report("ping", []))], /overlap/],
  ])("refuses %s", (_what, reports, message) => {
    expect(() => mergeReports(files(...reports))).toThrow(UsageError);
    expect(() => mergeReports(files(...reports))).toThrow(message);
  });
});

describe("rlvm-fleet report merge", () => {
  const write = (dir: string, name: string, r: Report | string) =>
    writeFileSync(join(dir, name), typeof r === "string" ? r : JSON.stringify(r));

  it("prints the merged report and exits with its exit code, in every format and file", async () => {
    const tree = writeTree({});
    try {
      write(tree.dir, "1.json", shard(1, 2, report("ping", [hostResult("a", "ok")])));
      write(tree.dir, "2.json", shard(2, 2, report("ping", [hostResult("b", "unreachable")])));
      const json = await runCli(
        ["report", "merge", "1.json", "2.json", "--format", "json", "--report", "m.json"],
        {
          cwd: tree.dir,
        },
      );
      expect(json.stderr).toBe("");
      expect(json.code).toBe(4);
      expect(reportSchema.parse(JSON.parse(json.stdout)).summary).toMatchObject({
        hosts: 2,
        ok: 1,
        unreachable: 1,
      });
      const table = await runCli(["report", "merge", "1.json", "2.json", "--junit", "m.xml"], {
        cwd: tree.dir,
      });
      expect(table.code).toBe(4);
      expect(table.stdout).toMatch(/RECAP ping 2 hosts: ok=1 .*unreachable=1 .*exit 4/);
      const markdown = await runCli(["report", "merge", "1.json", "2.json", "--format", "markdown"], {
        cwd: tree.dir,
      });
      expect(markdown.stdout).toMatch(/^## rlvm-fleet ping$/m);
      // The merged report merges again, alone: the same document.
      const again = await runCli(["report", "merge", "m.json", "--format", "json"], { cwd: tree.dir });
      expect(JSON.parse(again.stdout)).toEqual(JSON.parse(json.stdout));
    } finally {
      tree.cleanup();
    }
  });

  it.each<[string, string, RegExp]>([
    ["not JSON", "{", /bad\.json is not a JSON report/],
    ["not a report", JSON.stringify({ schema: "x" }), /bad\.json is not an rlvm-fleet report/],
  ])("refuses a file that is %s with exit 2 and one message naming it", async (_what, text, message) => {
    const tree = writeTree({});
    try {
      write(tree.dir, "1.json", shard(1, 2, report("ping", [])));
      write(tree.dir, "bad.json", text);
      const result = await runCli(["report", "merge", "1.json", "bad.json"], { cwd: tree.dir });
      expect(result.code).toBe(2);
      expect(result.stdout).toBe("");
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toMatch(/ at .*\.ts:\d+/);
    } finally {
      tree.cleanup();
    }
  });

  it("refuses a missing file, mixed commands and duplicate hosts with exit 2", async () => {
    const tree = writeTree({});
    try {
      write(tree.dir, "1.json", shard(1, 2, report("ping", [hostResult("a", "ok")])));
      write(tree.dir, "2.json", shard(2, 2, report("check", [])));
      write(tree.dir, "3.json", shard(2, 2, report("ping", [hostResult("a", "ok")])));
      const missing = await runCli(["report", "merge", "1.json", "nope.json"], { cwd: tree.dir });
      expect([missing.code, missing.stderr]).toEqual([
        2,
        expect.stringContaining("nope.json cannot be read"),
      ]);
      const mixed = await runCli(["report", "merge", "1.json", "2.json"], { cwd: tree.dir });
      expect([mixed.code, mixed.stderr]).toEqual([2, expect.stringContaining("mixed command")]);
      const nowhere = await runCli(["report", "merge", "1.json", "--junit", "no/dir/m.xml"], {
        cwd: tree.dir,
      });
      expect([nowhere.code, nowhere.stderr]).toEqual([2, expect.stringContaining("--junit no/dir/m.xml")]);
      const duplicate = await runCli(["report", "merge", "1.json", "3.json"], { cwd: tree.dir });
      expect([duplicate.code, duplicate.stderr]).toEqual([
        2,
        expect.stringContaining("host a is also in 1.json"),
      ]);
    } finally {
      tree.cleanup();
    }
  });
});
