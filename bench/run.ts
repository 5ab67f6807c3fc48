// `npm run bench`: rlvm-fleet against Ansible, parallel-ssh, a bare ssh2 floor and per-host tools, on
// real loopback sshd hosts (and, for the controller's own cost at 1,000 hosts, ssh2 stand-ins), side
// by side in one run. One table per dimension, each with medians, min–max and ratios, and the goals
// it decides; all of it goes to bench/results/latest.md.
//
//   BENCH_DIMENSIONS=latency,scale,bastion,prune   a subset (latency gives the CPU-per-host table too)
//   BENCH_RESULTS=FILE      where the markdown goes (default bench/results/latest.md; "-" for nowhere)
//   BENCH_REPEATS, BENCH_WARMUP   timed and untimed rounds, for every dimension
// Each dimension's own settings are at the top of its file (side-by-side.ts, scale.ts, bastion.ts,
// prune.ts).
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { bastionDimension } from "./bastion.js";
import type { BenchContext, Dimension, DimensionResult } from "./dimension.js";
import { envList } from "./env.js";
import { buildPayload } from "./payload.js";
import { pruneDimension } from "./prune.js";
import { goalsText, machineText } from "./report.js";
import { scaleDimension } from "./scale.js";
import { sideBySide } from "./side-by-side.js";
import { ensureTools, machineFacts } from "./tools.js";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));
const CONNECT_TIMEOUT_S = 60;
const WANT_OPEN_FILES = 65_536;

const one = (dimension: Dimension) => async (ctx: BenchContext) => [await dimension(ctx)];

const DIMENSIONS: Record<string, (ctx: BenchContext) => Promise<DimensionResult[]>> = {
  latency: sideBySide,
  scale: one(scaleDimension),
  bastion: one(bastionDimension),
  prune: one(pruneDimension),
};

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

/** Many sshd sessions and sockets at once: raise the open-files limit by re-running under `ulimit -n`. */
function raiseOpenFilesLimit(): void {
  if (process.env["RLVM_BENCH_ULIMIT"] !== undefined) return;
  const soft = Number(spawnSync("bash", ["-c", "ulimit -Sn"], { encoding: "utf8" }).stdout.trim());
  const hard = spawnSync("bash", ["-c", "ulimit -Hn"], { encoding: "utf8" }).stdout.trim();
  const hardN = hard === "unlimited" ? Infinity : Number(hard);
  if (!(soft < WANT_OPEN_FILES) || !(hardN > soft)) return;
  const target = Math.min(WANT_OPEN_FILES, hardN);
  log(`raising the open-files limit from ${soft} to ${target}`);
  const result = spawnSync(
    "bash",
    [
      "-c",
      `ulimit -n ${target} && exec "$0" "$@"`,
      process.execPath,
      ...process.execArgv,
      ...process.argv.slice(1),
    ],
    { stdio: "inherit", env: { ...process.env, RLVM_BENCH_ULIMIT: String(target) } },
  );
  process.exit(result.status ?? 1);
}

/**
 * The floor as plain JavaScript in the bench's work directory, so that no TypeScript loader is part of
 * its time; its `import "ssh2"` points at the project's ssh2 by absolute path.
 */
async function bundleFloor(work: string): Promise<string[]> {
  const esbuild = await import("esbuild");
  const ssh2 = pathToFileURL(createRequire(join(repoRoot, "package.json")).resolve("ssh2")).href;
  const outfile = join(work, "floor.mjs");
  await esbuild.build({
    entryPoints: [join(repoRoot, "bench/floor.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile,
    logLevel: "warning",
    plugins: [
      {
        name: "project-ssh2",
        setup(build) {
          build.onResolve({ filter: /^ssh2$/ }, () => ({ path: ssh2, external: true }));
        },
      },
    ],
  });
  return [process.execPath, outfile];
}

async function main(): Promise<void> {
  raiseOpenFilesLimit();
  const chosen = envList("BENCH_DIMENSIONS") ?? Object.keys(DIMENSIONS);
  for (const name of chosen) {
    if (DIMENSIONS[name] === undefined)
      throw new Error(
        `BENCH_DIMENSIONS: unknown dimension "${name}" (known: ${Object.keys(DIMENSIONS).join(", ")})`,
      );
  }
  const asRoot = process.getuid?.() === 0;
  if (!asRoot) {
    log(
      "not root: the hosts' sshd runs unprivileged and logs in only you, so every runner runs the agent as you, " +
        "without sudo. That is not the comparison the issue asks for: run it as root (as CI does) for that.",
    );
  }
  const tools = ensureTools(log);
  for (const [runner, why] of Object.entries(tools.skipped)) log(`SKIPPING ${runner}: ${why}`);
  const facts = machineFacts(tools);
  log(`${facts.cpus} CPUs, Linux ${facts.kernel}, Node ${facts.node}, ${facts.openssh}, ${facts.ansible}`);

  const work = mkdtempSync(join(tmpdir(), "rlvm-fleet-bench-"));
  const ansibleRemoteTmp = `/tmp/.rlvm-fleet-bench-ansible-${process.pid}`;
  process.on("exit", () => {
    rmSync(work, { recursive: true, force: true });
    rmSync(ansibleRemoteTmp, { recursive: true, force: true });
  });
  const payloadFile = join(work, "payload.sh");
  writeFileSync(payloadFile, buildPayload(`bench-${Date.now()}`), { mode: 0o644 });
  const ctx: BenchContext = {
    work,
    repoRoot,
    tools,
    asRoot,
    floorCommand: await bundleFloor(work),
    payloadFile,
    connectTimeoutS: CONNECT_TIMEOUT_S,
    ansibleRemoteTmp,
    log,
  };
  const started = Date.now();
  const results: DimensionResult[] = [];
  for (const name of chosen) {
    const dimensionStarted = Date.now();
    log(`dimension ${name}`);
    results.push(...(await (DIMENSIONS[name] as (c: BenchContext) => Promise<DimensionResult[]>)(ctx)));
    log(`dimension ${name} took ${Math.round((Date.now() - dimensionStarted) / 1000)} s`);
  }

  const failures = results.flatMap((r) => r.failures);
  const skipped = Object.entries(tools.skipped).map(([runner, why]) => `- skipped ${runner}: ${why}`);
  const text = [
    `## Benchmark, ${facts.date.slice(0, 10)}`,
    "",
    machineText(facts),
    ...(skipped.length > 0 ? ["", ...skipped] : []),
    ...(asRoot ? [] : ["", "- not run as root: the agent ran as the login user, without sudo"]),
    ...results.flatMap((r) => [
      "",
      `### ${r.title}`,
      "",
      r.table,
      "",
      ...(r.goals.length > 0
        ? ["Goals, measured side by side in this run:", "", goalsText(r.goals), ""]
        : []),
      `How: ${r.method}`,
    ]),
    ...(failures.length > 0 ? ["", "Failures:", "", ...failures.map((f) => `- ${f}`)] : []),
    "",
    `The bench took ${Math.round((Date.now() - started) / 1000)} s (dimensions: ${chosen.join(", ")}).`,
    "",
  ].join("\n");
  process.stdout.write(`\n${text}`);
  const resultsFile = process.env["BENCH_RESULTS"] ?? join(repoRoot, "bench/results/latest.md");
  if (resultsFile !== "-") {
    mkdirSync(dirname(resultsFile), { recursive: true });
    writeFileSync(resultsFile, text);
    log(`wrote ${resultsFile}`);
  }
  if (failures.length > 0) process.exitCode = 1;
}

await main();
