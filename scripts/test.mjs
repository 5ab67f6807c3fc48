#!/usr/bin/env node
// The test command (`npm test`): lint, format check, type check and the dependency rules, then every
// test tier, ending with one line that totals them all: "N passed, N failed".
// `npm test -- unit` runs only the named tiers. The integration tier runs twice: with the machine's
// restic (Debian 12's 0.14), then with Debian 13's 0.18 (scripts/fetch-restic.sh puts it in
// RLVM_RESTIC_018, default ~/.cache/rlvm-fleet/restic-trixie/restic) bound over /usr/bin/restic in a
// private mount namespace, so that every host, test and tool of that pass runs 0.18 and nothing
// outside it changes.
import { spawnSync } from "node:child_process";
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
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

const RESTIC_018 = process.env.RLVM_RESTIC_018 ?? join(homedir(), ".cache/rlvm-fleet/restic-trixie/restic");

/** Why the restic 0.18 pass cannot run here, or null when it can. */
function restic018Problem() {
  if (process.getuid?.() !== 0)
    return "not root: binding restic 0.18 over /usr/bin/restic needs a private mount namespace";
  try {
    accessSync(RESTIC_018, constants.X_OK);
  } catch {
    return `${RESTIC_018} is missing: run scripts/fetch-restic.sh`;
  }
  return null;
}

/** The tiers' passes: [label, vitest project, wrapper argv before `npx vitest ...`, or a reason it cannot run]. */
const passes = tiers.flatMap((tier) => {
  if (tier !== "integration") return [[tier, tier, []]];
  const problem = restic018Problem();
  const wrapper = [
    "unshare",
    "--mount",
    "--propagation",
    "private",
    "--",
    "sh",
    "-c",
    'mount --bind -- "$0" /usr/bin/restic && exec "$@"',
    RESTIC_018,
  ];
  return [
    [tier, tier, []],
    ["integration (restic 0.18)", tier, problem ?? wrapper],
  ];
});
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
for (const [index, [tier, project, wrapper]] of passes.entries()) {
  console.log(`\n== ${tier} tests`);
  if (typeof wrapper === "string") {
    // Like a test whose tools are missing: skipped with its reason, a failure where the tier is required.
    const required = process.env.RLVM_REQUIRE_INTEGRATION === "1";
    console.log(
      `${tier}: cannot run: ${wrapper}${required ? " (RLVM_REQUIRE_INTEGRATION=1 forbids skipping)" : ""}`,
    );
    if (required) failures.push(`${tier}: cannot run: ${wrapper}`);
    lines.push(`${tier}: 0 passed, ${required ? 1 : 0} failed, ${required ? 0 : 1} skipped`);
    totals[required ? "failed" : "skipped"] += 1;
    continue;
  }
  const output = join(dir, `${index}.json`);
  const vitest = [
    "npx",
    "vitest",
    "run",
    "--project",
    project,
    "--reporter=default",
    "--reporter=json",
    `--outputFile=${output}`,
  ];
  const argv = [...wrapper, ...vitest];
  const ok = run(argv[0], argv.slice(1));
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
