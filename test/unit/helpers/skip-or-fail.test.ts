// The skip rule: printed and skipped on a laptop, a failure where the tier is required (CI).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { REQUIRE_VARIABLES, skipOrFail, type Tier } from "../../helpers/skip-or-fail.js";

const ROOT = join(import.meta.dirname, "../../..");
const FIXTURE_CONFIG = join(ROOT, "test/fixtures/skip-or-fail/vitest.config.ts");
const TIERS: readonly Tier[] = ["unit", "integration", "vm"];
const out = mkdtempSync(join(tmpdir(), "rlvm-fleet-skip-"));

interface VitestJson {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  testResults: { assertionResults: { title: string; status: string; failureMessages: string[] }[] }[];
}

/** A real vitest run of the fixture's cases, which need a tool no machine has. */
function runFixture(env: Record<string, string>) {
  const outputFile = join(out, `${Object.keys(env).join("-") || "laptop"}.json`);
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  // This test may itself run where the unit tier is required: the laptop run must not inherit that.
  if (!("RLVM_REQUIRE_UNIT" in env)) delete childEnv["RLVM_REQUIRE_UNIT"];
  const run = spawnSync(
    "npx",
    [
      "vitest",
      "run",
      "--config",
      FIXTURE_CONFIG,
      "--reporter=default",
      "--reporter=json",
      `--outputFile=${outputFile}`,
    ],
    { cwd: ROOT, env: childEnv, encoding: "utf8" },
  );
  const report = JSON.parse(readFileSync(outputFile, "utf8")) as VitestJson;
  // The default reporter prints what the cases logged.
  return { code: run.status, output: run.stdout + run.output, report };
}

describe("skipOrFail and describeOrSkip, in a real vitest run", { timeout: 60_000 }, () => {
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it("skip both kinds of case with the reason printed when the tier is not required", () => {
    const run = runFixture({});
    expect(run.code, run.output).toBe(0);
    expect(run.report).toMatchObject({ numPassedTests: 0, numFailedTests: 0, numPendingTests: 2 });
    expect(run.output).toContain(
      'Skipping "frobnicates": frobnicate not installed (apt-get install frobnicate). Set RLVM_REQUIRE_UNIT=1 to make this an error.',
    );
    expect(run.output).toContain('Skipping "frobnication": frobnicate not installed');
  });

  it("fail both, naming the reason and the variable, when RLVM_REQUIRE_UNIT=1", () => {
    const run = runFixture({ RLVM_REQUIRE_UNIT: "1" });
    expect(run.code).toBe(1);
    expect(run.report).toMatchObject({ numPassedTests: 0, numFailedTests: 2, numPendingTests: 0 });
    const failures = run.report.testResults.flatMap((file) => file.assertionResults);
    expect(failures.map((f) => [f.title, f.status])).toEqual([
      ["frobnicates", "failed"],
      ["has what its cases need", "failed"],
    ]);
    for (const failure of failures) {
      expect(failure.failureMessages.join("\n")).toContain(
        "frobnicate not installed (apt-get install frobnicate) (RLVM_REQUIRE_UNIT=1 forbids skipping)",
      );
    }
  });
});

describe("skipOrFail", () => {
  const context = () => ({ skip: vi.fn(), task: { name: "a case" } });

  it.each(TIERS.map((tier) => [tier, REQUIRE_VARIABLES[tier]] as const))(
    "the %s tier fails instead of skipping when %s=1",
    (tier, variable) => {
      const ctx = context();
      expect(() => skipOrFail(ctx, tier, "no sshd", { [variable]: "1" })).toThrow(
        `no sshd (${variable}=1 forbids skipping)`,
      );
      expect(ctx.skip).not.toHaveBeenCalled();
      // Another tier's variable does not count, nor any value but 1: then the skip is printed.
      const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
      try {
        skipOrFail(ctx, tier, "no sshd", { RLVM_REQUIRE_OTHER: "1", [variable]: "true" });
        expect(warn).toHaveBeenCalledWith(
          `Skipping "a case": no sshd. Set ${variable}=1 to make this an error.`,
        );
      } finally {
        warn.mockRestore();
      }
      expect(ctx.skip).toHaveBeenCalledWith("no sshd");
    },
  );

  it("does nothing when nothing is missing", () => {
    const ctx = context();
    skipOrFail(ctx, "unit", undefined, { RLVM_REQUIRE_UNIT: "1" });
    skipOrFail(ctx, "unit", "", { RLVM_REQUIRE_UNIT: "1" });
    expect(ctx.skip).not.toHaveBeenCalled();
  });
});
