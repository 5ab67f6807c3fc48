import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { describe, expect, it } from "vitest";
import { buildReport } from "../../../src/report/build-report.js";
import { reportJsonSchema } from "../../../src/report/json-schema.js";
import type { HostResult } from "../../../src/report/report-schema.js";
import { renderReportTable } from "../../../src/cli/render/report-table.js";
import { makeStyle } from "../../../src/cli/render/style.js";
import { hostResult as host, reportInput } from "../../helpers/report-fixture.js";

const SCHEMA_FILE = join(import.meta.dirname, "../../../schema/report.schema.json");

/** The report as buildReport makes it, not read back through the zod schema: the JSON Schema checks it. */
const report = (hosts: HostResult[], interrupted = false, command = "ping") =>
  buildReport(reportInput(command, hosts, { interrupted }));

describe("report", () => {
  it("schema/report.schema.json is the one generated from the zod schema (npm run schema)", () => {
    expect(JSON.parse(readFileSync(SCHEMA_FILE, "utf8"))).toEqual(reportJsonSchema());
  });

  it("validates against the exported JSON Schema", () => {
    const validate = new Ajv2020({ strict: false }).compile(JSON.parse(readFileSync(SCHEMA_FILE, "utf8")));
    const sample = report([
      host("a", "ok"),
      host("b", "failed", { error: { code: "auth", message: "m", hint: "h" } }),
    ]);
    expect(validate(sample), JSON.stringify(validate.errors)).toBe(true);
    expect(validate({ ...sample, summary: { hosts: "x" } })).toBe(false);
  });

  it.each([
    [["ok", "ok"], false, 0],
    [["ok", "partial"], false, 3],
    [["ok", "unreachable", "partial"], false, 4],
    [["unreachable", "failed"], false, 1],
    [["ok", "skipped"], true, 130],
    [["failed", "skipped"], true, 130],
    [[], false, 0],
  ] as const)("statuses %j (interrupted %s) exit %i", (statuses, interrupted, code) => {
    const r = report(
      statuses.map((s, i) => host(`h${i}`, s)),
      interrupted,
    );
    expect(r.exit_code).toBe(code);
    expect(r.summary.hosts).toBe(statuses.length);
  });

  it("renders failed and unreachable apart, with the hint, and a recap line", () => {
    const text = renderReportTable(
      report([
        host("web1", "ok", {
          facts: {
            hostname: "web1",
            kernel: "6.1",
            os: "Debian GNU/Linux 12 (bookworm)",
            bash: "5.2",
            restic: "0.14.0",
            lvm: null,
            user: "root",
          },
        }),
        host("web2", "unreachable", {
          error: { code: "refused", message: "connection refused by web2:22", hint: "check sshd" },
        }),
        host("db1", "failed", {
          error: { code: "auth", message: "authentication failed", hint: "check the key" },
        }),
      ]),
      makeStyle(false),
    );
    expect(text).toContain("web2: refused: connection refused by web2:22");
    expect(text).toContain("hint: check sshd");
    expect(text).toContain("db1: auth: authentication failed");
    expect(text).toMatch(
      /RECAP ping 3 hosts: ok=1 partial=0 failed=1 unreachable=1 skipped=0 {2}in 1\.5s, exit 1/,
    );
  });

  it("renders checks with ✓/✗ and the hint of each failure", () => {
    const text = renderReportTable(
      report(
        [
          host("db1", "failed", {
            error: { code: "preflight", message: "1 of 2 checks failed", hint: "fix" },
            checks: [
              { name: "restic", ok: true, detail: "0.14.0", hint: "", code: null },
              {
                name: "password_file:/etc/pw",
                ok: false,
                detail: "mode 644",
                hint: "chmod 600 /etc/pw",
                code: null,
              },
            ],
          }),
        ],
        false,
        "check",
      ),
      makeStyle(false),
    );
    expect(text).toContain("✓ restic: 0.14.0");
    expect(text).toContain("✗ password_file:/etc/pw: mode 644");
    expect(text).toContain("hint: chmod 600 /etc/pw");
  });
});
