#!/usr/bin/env node
// The test command (`npm test`): lint, format check, type check and the dependency rules, then every
// test tier, ending with one line that totals them all: "N passed, N failed".
// `npm test -- unit` runs only the named tiers.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const TIERS = ["unit", "integration", "vm"];
const wanted = process.argv.slice(2);
const tiers = wanted.length > 0 ? TIERS.filter((t) => wanted.includes(t)) : TIERS;
const unknown = wanted.filter((t) => !TIERS.includes(t));
if (unknown.length > 0) {
  console.error(`unknown tier: ${unknown.join(", ")} (tiers: ${TIERS.join(", ")})`);
  process.exit(2);
}

const run = (command, args) => spawnSync(command, args, { stdio: "inherit" }).status === 0;
let failedChecks = 0;
for (const [name, command, args] of [
  ["lint", "npx", ["eslint", "."]],
  ["format", "npx", ["prettier", "--check", "."]],
  ["typecheck", "npx", ["tsc", "-p", "tsconfig.json", "--noEmit"]],
  // The layering rules in .dependency-cruiser.mjs: no cycle, no import against DESIGN §11's arrows.
  ["deps", "npx", ["depcruise", "src", "--config", ".dependency-cruiser.mjs"]],
]) {
  console.log(`\n== ${name}`);
  if (!run(command, args)) {
    console.log(`${name}: FAILED`);
    failedChecks++;
  }
}

const dir = mkdtempSync(join(tmpdir(), "rlvm-fleet-results-"));
const totals = { passed: 0, failed: 0, skipped: 0 };
const lines = [];
/** The failed tests, repeated at the end: CI keeps only the tail of a long run's output. */
const failures = [];
for (const tier of tiers) {
  console.log(`\n== ${tier} tests`);
  const output = join(dir, `${tier}.json`);
  const ok = run("npx", [
    "vitest",
    "run",
    "--project",
    tier,
    "--reporter=default",
    "--reporter=json",
    `--outputFile=${output}`,
  ]);
  let counts;
  try {
    const report = JSON.parse(readFileSync(output, "utf8"));
    counts = {
      passed: report.numPassedTests,
      failed: report.numFailedTests,
      skipped: report.numPendingTests + report.numTodoTests,
    };
    for (const file of report.testResults ?? []) {
      for (const test of file.assertionResults ?? []) {
        if (test.status !== "failed") continue;
        const message = (test.failureMessages ?? []).join(" ").split("\n").slice(0, 3).join(" | ");
        failures.push(`${tier}: ${file.name} > ${test.fullName}\n    ${message.slice(0, 600)}`);
      }
      if (file.status === "failed" && (file.assertionResults ?? []).length === 0)
        failures.push(`${tier}: ${file.name}\n    ${String(file.message ?? "").slice(0, 600)}`);
    }
  } catch {
    counts = { passed: 0, failed: 1, skipped: 0 }; // the runner itself broke
  }
  if (!ok && counts.failed === 0) counts.failed = 1;
  // A tier that collected no test at all is broken. A tier skipped for missing tools (printed, with the
  // reason) shows in the totals; CI sets RLVM_REQUIRE_UNIT/INTEGRATION/VM, so there it fails.
  if (counts.passed + counts.failed + counts.skipped === 0) counts.failed = 1;
  lines.push(`${tier}: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
  for (const key of Object.keys(totals)) totals[key] += counts[key];
}
rmSync(dir, { recursive: true, force: true });

console.log("\n== summary");
if (failures.length > 0) console.log(`failed tests:\n${failures.join("\n")}\n`);
for (const line of lines) console.log(line);
if (failedChecks > 0) console.log(`lint/format/typecheck/deps: ${failedChecks} failed`);
const failed = totals.failed + failedChecks;
console.log(
  `${totals.passed} passed, ${failed} failed${totals.skipped > 0 ? `, ${totals.skipped} skipped` : ""}`,
);
process.exit(failed > 0 ? 1 : 0);
