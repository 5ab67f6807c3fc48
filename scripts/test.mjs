#!/usr/bin/env node
// The test command (`npm test`): lint, format check, type check and the dependency rules, then every
// test tier, ending with one line that totals them all: "N passed, N failed".
// `npm test -- unit` runs only the named tiers. The integration tier runs twice, side by side: with the
// machine's restic (Debian 12's 0.14), and with Debian 13's 0.18 (scripts/fetch-restic.sh puts it in
// RLVM_RESTIC_018, default ~/.cache/rlvm-fleet/restic-trixie/restic) bound over /usr/bin/restic. Each
// pass runs in namespaces of its own (ISOLATE below), so the two never meet and nothing outside changes.
import { spawn, spawnSync } from "node:child_process";
import {
  accessSync,
  constants,
  createWriteStream,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
} from "node:fs";
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

/** Why the integration passes cannot run side by side here (or with restic 0.18), or null when they can. */
function isolationProblem(restic) {
  if (process.getuid?.() !== 0)
    return "not root: the integration passes need private namespaces (unshare) to run side by side";
  if (restic === null) return null;
  try {
    accessSync(restic, constants.X_OK);
  } catch {
    return `${restic} is missing: run scripts/fetch-restic.sh`;
  }
  return null;
}

/**
 * An integration pass's namespaces: its own network (a loopback of its own: the passes' sshd ports never
 * meet), PIDs (process checks see only its own) and mounts, with a private tmpfs over each machine path
 * that tests and agents write (/tmp, whose names may hold a PID that the other pass has too; the agents'
 * locks and run directories; install-agent's files) and a private copy of /etc/sudoers.d
 * (install-agent's drop-in). $1: a restic to bind over /usr/bin/restic, or "".
 */
const ISOLATE = `set -e
ip link set lo up
mount -t tmpfs -o mode=1777 tmpfs /run/lock
mount -t tmpfs -o mode=1777 tmpfs /tmp
for d in /run/rlvm-fleet /usr/local/libexec/rlvm-fleet /etc/rlvm-fleet; do
  mkdir -p "$d" && mount -t tmpfs -o mode=0755 tmpfs "$d"
done
saved=$(mktemp -d) && cp -a /etc/sudoers.d/. "$saved" && mount -t tmpfs -o mode=0755 tmpfs /etc/sudoers.d
cp -a "$saved"/. /etc/sudoers.d && rm -rf "$saved"
if [ -n "$1" ]; then mount --bind -- "$1" /usr/bin/restic; fi
shift
exec "$@"`;

const isolated = (restic) => {
  // Not root, the machine's restic pass runs alone, as it is; the 0.18 pass cannot run.
  if (process.getuid?.() !== 0 && restic === null) return [];
  const problem = isolationProblem(restic);
  if (problem !== null) return problem;
  const unshare = ["unshare", "--mount", "--propagation", "private", "--net", "--pid", "--fork"];
  return [...unshare, "--mount-proc", "--kill-child", "--", "sh", "-c", ISOLATE, "isolate", restic ?? ""];
};

/**
 * The tiers' passes: [label, vitest project, wrapper argv before `npx vitest ...` (or a reason it cannot
 * run), group]. Passes of one group run side by side.
 */
const passes = tiers.flatMap((tier) => {
  if (tier !== "integration") return [[tier, tier, [], tier]];
  return [
    [tier, tier, isolated(null), tier],
    ["integration (restic 0.18)", tier, isolated(RESTIC_018), tier],
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

// Not under /tmp, which each isolated pass has its own of.
const dir = mkdtempSync(join(existsSync("/var/tmp") ? "/var/tmp" : tmpdir(), "rlvm-fleet-results-"));
const totals = { passed: 0, failed: 0, skipped: 0 };
const lines = [];
/** The failed tests, repeated at the end: CI keeps only the tail of a long run's output. */
const failures = [];

/** Runs argv; with a log file, its output goes there (a pass beside another), else to this terminal. */
function runAsync(argv, log) {
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), {
      stdio: log === null ? "inherit" : ["ignore", "pipe", "pipe"],
    });
    if (log !== null) {
      const out = createWriteStream(log);
      child.stdout.pipe(out, { end: false });
      child.stderr.pipe(out, { end: false });
      child.on("close", (code) => out.end(() => resolve(code === 0)));
    } else child.on("close", (code) => resolve(code === 0));
  });
}

/** One pass: its counts and failed tests, read from vitest's JSON report. */
async function runPass(index, [tier, project, wrapper], log) {
  if (typeof wrapper === "string") {
    // Like a test whose tools are missing: skipped with its reason, a failure where the tier is required.
    const required = process.env.RLVM_REQUIRE_INTEGRATION === "1";
    console.log(
      `${tier}: cannot run: ${wrapper}${required ? " (RLVM_REQUIRE_INTEGRATION=1 forbids skipping)" : ""}`,
    );
    return {
      counts: { passed: 0, failed: required ? 1 : 0, skipped: required ? 0 : 1 },
      failed: required ? [`${tier}: cannot run: ${wrapper}`] : [],
    };
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
  const ok = await runAsync([...wrapper, ...vitest], log);
  const failed = [];
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
        failed.push(`${tier}: ${file.name} > ${test.fullName}\n    ${message.slice(0, 600)}`);
      }
      if (file.status === "failed" && (file.assertionResults ?? []).length === 0)
        failed.push(`${tier}: ${file.name}\n    ${String(file.message ?? "").slice(0, 600)}`);
    }
  } catch {
    counts = { passed: 0, failed: 1, skipped: 0 }; // the runner itself broke
  }
  if (!ok && counts.failed === 0) counts.failed = 1;
  // A tier that collected no test at all is broken. A tier skipped for missing tools (printed, with the
  // reason) shows in the totals; CI sets RLVM_REQUIRE_UNIT/INTEGRATION/VM, so there it fails.
  if (counts.passed + counts.failed + counts.skipped === 0) counts.failed = 1;
  return { counts, failed };
}

const groups = [...new Set(passes.map((pass) => pass[3]))];
for (const group of groups) {
  const members = [...passes.entries()].filter(([, pass]) => pass[3] === group);
  const runnable = members.filter(([, pass]) => typeof pass[2] !== "string");
  const beside = runnable.length > 1;
  if (beside) {
    // The passes share dist/: it is built once here, not by each pass's global setup at once.
    console.log(`\n== ${group}: building dist/ for its ${runnable.length} passes`);
    if (!run("npx", ["tsc", "-p", "tsconfig.build.json"])) failedChecks++;
    process.env.RLVM_DIST_BUILT = "1";
    console.log(
      `== ${members.map(([, [tier]]) => tier).join(" and ")} tests, side by side (each printed when done)`,
    );
  }
  const started = Date.now();
  const outcomes = await Promise.all(
    members.map(async ([index, pass]) => {
      if (!beside) console.log(`\n== ${pass[0]} tests`);
      const log = beside ? join(dir, `${index}.log`) : null;
      const outcome = await runPass(index, pass, log);
      if (log !== null) {
        console.log(`\n== ${pass[0]} tests (done after ${Math.round((Date.now() - started) / 1000)} s)`);
        process.stdout.write(readFileSync(log, "utf8"));
      }
      return outcome;
    }),
  );
  delete process.env.RLVM_DIST_BUILT;
  for (const [i, { counts, failed }] of outcomes.entries()) {
    const tier = members[i][1][0];
    failures.push(...failed);
    lines.push(`${tier}: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
    for (const key of Object.keys(totals)) totals[key] += counts[key];
  }
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
