// --junit FILE: the report as JUnit XML, validated with xmllint against the Jenkins xUnit plugin's
// JUnit schema (test/fixtures/junit/), and its counts, failures and errors read back.
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { renderReportJunit } from "../../../../src/cli/render/junit.js";
import type { JobResult } from "../../../../src/report/report-schema.js";
import { hostResult as host, jobResult, repoResult, report } from "../../../helpers/report-fixture.js";
import { skipOrFail, type SkippableContext } from "../../../helpers/skip-or-fail.js";

const XSD = join(import.meta.dirname, "../../../fixtures/junit/junit-10.xsd");

const job = (name: string, extra: Partial<JobResult> = {}) =>
  jobResult({ name, category: "standard_path", ...extra });
const repo = repoResult;

/** xmllint --schema on `xml`: its exit code and what it said. */
function validate(ctx: SkippableContext, xml: string): { code: number | null; output: string } {
  const file = join(mkdtempSync(join(tmpdir(), "rlvm-junit-")), "junit.xml");
  writeFileSync(file, xml);
  const run = spawnSync("xmllint", ["--noout", "--schema", XSD, file], { encoding: "utf8" });
  const missing = (run.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT";
  skipOrFail(
    ctx,
    "unit",
    missing ? "xmllint is not installed (Debian: apt-get install libxml2-utils)" : undefined,
  );
  return { code: run.status, output: `${run.stdout}${run.stderr}` };
}

/** The test cases of `xml`, each as its opening tag's attributes and what it holds. */
function cases(xml: string) {
  return [
    ...xml.matchAll(/<testcase classname="([^"]*)" name="([^"]*)"[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g),
  ].map((m) => ({ classname: m[1], name: m[2], body: m[4] ?? "" }));
}

const attribute = (xml: string, element: string, name: string) =>
  new RegExp(`<${element}\\b[^>]*\\s${name}="([^"]*)"`).exec(xml)?.[1];

describe("renderReportJunit", () => {
  it("backup: a case per host and job; a failed job is a failure, an unreachable host an error, a skipped one skipped", (ctx) => {
    const xml = renderReportJunit(
      report("backup", [
        host("web1", "ok", { jobs: [job("data", { repos: [repo("/srv/a")] }), job("etc")] }),
        host("web2", "partial", {
          warnings: [{ code: "cow_high", message: "snapshot reached 80%" }],
          jobs: [job("data", { status: "partial" })],
        }),
        host("db1", "failed", {
          error: {
            code: "backup_failed",
            message: "1 of 2 jobs failed",
            hint: "see the failed repositories",
          },
          jobs: [
            job("data", {
              status: "failed",
              repos: [
                repo("rest:https://u:***@vault/db1/", {
                  status: "failed",
                  snapshot_id: null,
                  error: 'Fatal: wrong password <or> "no key" & more\x1b[31m',
                }),
              ],
            }),
            job("etc"),
          ],
        }),
        host("db2", "unreachable", {
          error: {
            code: "refused",
            message: "connection refused by 192.0.2.3:22",
            hint: "check that sshd runs",
          },
        }),
        host("db3", "skipped", { jobs: [job("data", { status: "skipped" })] }),
      ]),
    );
    expect(validate(ctx, xml)).toMatchObject({ code: 0 });
    expect(xml.match(/<testsuite\b/g)).toHaveLength(1);
    for (const element of ["testsuites", "testsuite"]) {
      expect(attribute(xml, element, "tests")).toBe("7");
      expect(attribute(xml, element, "failures")).toBe("1");
      expect(attribute(xml, element, "errors")).toBe("1");
    }
    expect(attribute(xml, "testsuite", "skipped")).toBe("1");
    expect(attribute(xml, "testsuite", "name")).toBe("rlvm-fleet backup");
    expect(xml).toContain('<property name="exit_code" value="1"/>');
    const all = cases(xml);
    expect(all.map((c) => `${c.classname} ${c.name}`)).toEqual([
      "rlvm-fleet.backup.web1 data",
      "rlvm-fleet.backup.web1 etc",
      "rlvm-fleet.backup.web2 data",
      "rlvm-fleet.backup.db1 data",
      "rlvm-fleet.backup.db1 etc",
      "rlvm-fleet.backup.db2 db2",
      "rlvm-fleet.backup.db3 data",
    ]);
    const [web1data, web1etc, web2, db1data, db1etc, db2, db3] = all;
    expect(web1data?.body).toBe("");
    expect(web1etc?.body).toBe("");
    expect(web2?.body).toContain(
      "<system-out>job data: partial\nwarning cow_high: snapshot reached 80%</system-out>",
    );
    // The failure carries the code, message and hint, and the repository's error, escaped.
    expect(db1data?.body).toContain('<failure type="backup_failed" message="1 of 2 jobs failed">');
    expect(db1data?.body).toContain("hint: see the failed repositories\n");
    expect(db1data?.body).toContain(
      'backup failed rest:https://u:***@vault/db1/: Fatal: wrong password &lt;or&gt; "no key" &amp; more\\u001b[31m</failure>',
    );
    expect(db1etc?.body).toBe("");
    expect(db2?.body).toContain(
      '<error type="refused" message="connection refused by 192.0.2.3:22">hint: check that sshd runs</error>',
    );
    expect(db3?.body).toContain('<skipped type="skipped"');
  });

  it("check and ping: one case per host, failed checks in the failure", (ctx) => {
    const xml = renderReportJunit(
      report("check", [
        host("web1", "ok", {
          checks: [{ name: "restic", ok: true, detail: "restic 0.16.4", hint: "", code: null }],
        }),
        host("db1", "failed", {
          error: { code: "preflight", message: "1 of 2 checks failed", hint: "fix the failed checks" },
          checks: [
            { name: "bash", ok: true, detail: "5.2", hint: "", code: null },
            { name: "restic", ok: false, detail: "restic not found", hint: "install restic", code: null },
          ],
          // check lists the jobs it checked; its cases are still per host.
          jobs: [job("data")],
        }),
      ]),
    );
    expect(validate(ctx, xml)).toMatchObject({ code: 0 });
    expect(cases(xml).map((c) => c.name)).toEqual(["web1", "db1"]);
    expect(attribute(xml, "testsuite", "failures")).toBe("1");
    expect(xml).toContain(
      '<failure type="preflight" message="1 of 2 checks failed">hint: fix the failed checks\ncheck restic: restic not found (install restic)</failure>',
    );
  });

  it("a failed host fails its cases even when no job failed (it stopped before them)", (ctx) => {
    const xml = renderReportJunit(
      report("backup", [
        host("db1", "failed", {
          error: { code: "locked", message: "already running", hint: "wait for the other run" },
          jobs: [job("data", { status: "skipped" }), job("etc", { status: "skipped" })],
        }),
        host("db2", "failed", {
          error: { code: "agent_error", message: "the agent stopped", hint: "run with --verbose" },
          jobs: [job("data")],
        }),
      ]),
    );
    expect(validate(ctx, xml)).toMatchObject({ code: 0 });
    expect(attribute(xml, "testsuite", "failures")).toBe("3");
    expect(cases(xml).every((c) => c.body.includes("<failure "))).toBe(true);
  });

  it("status: a stale job's case fails with what is stale; a host with no jobs is one case", (ctx) => {
    const xml = renderReportJunit(
      report("status", [
        host("web1", "failed", {
          error: {
            code: "stale",
            message: "no snapshot newer than --max-age for data in /srv/a",
            hint: "run backup",
          },
          jobs: [
            job("data", {
              status: "failed",
              latest: [
                {
                  repo: "/srv/a",
                  snapshot_id: "1a2b3c4d",
                  time: "2025-01-01T00:00:00Z",
                  age_s: 90000,
                  stale: true,
                  error: null,
                  error_code: null,
                },
              ],
            }),
          ],
        }),
        host("web2", "ok"),
      ]),
    );
    expect(validate(ctx, xml)).toMatchObject({ code: 0 });
    expect(cases(xml).map((c) => c.name)).toEqual(["data", "web2"]);
    expect(xml).toContain("status /srv/a: stale (latest 1a2b3c4d, age 90000 s)</failure>");
  });

  it("keeps XML well-formed whatever a host sends: characters XML cannot hold are shown, quotes escaped", (ctx) => {
    const xml = renderReportJunit(
      report("ping", [
        host('we"b1', "failed", {
          error: { code: "agent_error", message: "bad\u0000byte\nnext\ttab \ud800 lone", hint: "]]> <!-- &" },
        }),
      ]),
    );
    expect(validate(ctx, xml)).toMatchObject({ code: 0 });
    expect(xml).toContain('classname="rlvm-fleet.ping.we&quot;b1"');
    expect(xml).toContain('message="bad\\u0000byte&#10;next&#9;tab \\ud800 lone"');
    expect(xml).toContain("hint: ]]&gt; &lt;!-- &amp;</failure>");
  });

  it("the schema rejects what it should, so its verdict above means something", (ctx) => {
    expect(validate(ctx, '<testsuites><testsuite name="x"/></testsuites>\n').code).not.toBe(0);
  });
});
