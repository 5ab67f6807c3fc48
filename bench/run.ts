// `npm run bench`: rlvm-fleet against Ansible, parallel-ssh and a bare ssh2 floor, on N loopback sshd
// hosts, the same work on every host (the agent's `ping`, as root), side by side in one run.
//
//   BENCH_SIZES=10,50,200   fleet sizes (default)
//   BENCH_RTT_MS=0,50       round trips a latency proxy adds in front of every host's sshd, each
//                           measured side by side at every size (default 0: none; bench/latency-proxy.ts)
//   BENCH_REPEATS=5         timed rounds per size (default: 5 up to 50 hosts, 3 above)
//   BENCH_WARMUP=1          untimed rounds per size first (default: 1 up to 50 hosts, 0 above)
//   BENCH_RUNNERS=rlvm-fleet,floor,parallel-ssh,ansible    a subset, e.g. while working on one
//   BENCH_RESULTS=FILE      where the markdown goes (default bench/results/latest.md; "-" for nowhere)
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { startFleet, type Fleet } from "../test/integration/harness/fleet.js";
import { createCpuGroup, type CpuGroup } from "./cpu.js";
import { startLatencyProxy } from "./latency-proxy.js";
import { measureCommand } from "./measure.js";
import { buildPayload } from "./payload.js";
import {
  checkGoals,
  goalsText,
  machineText,
  markdownTable,
  methodText,
  RUNNER_ORDER,
  summarize,
  type RunRecord,
} from "./report.js";
import {
  ansibleRunner,
  floorRunner,
  parallelSshRunner,
  rlvmFleetRunner,
  RUNNER_LABELS,
  type Runner,
  type RunnerContext,
  type RunnerId,
} from "./runners.js";
import { ensureTools, machineFacts } from "./tools.js";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));
const RUN_TIMEOUT_MS = 10 * 60_000;
const CONNECT_TIMEOUT_S = 60;
const WANT_OPEN_FILES = 65_536;

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

function envList(name: string): string[] | undefined {
  const value = process.env[name];
  return value === undefined || value.trim() === "" ? undefined : value.split(",").map((v) => v.trim());
}

function envCount(name: string, fallback: number): number {
  const value = process.env[name];
  if (value === undefined || value.trim() === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number, got "${value}"`);
  return n;
}

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

function logSizes(fleet: Fleet): number[] {
  return fleet.hosts.map((h) => {
    try {
      return statSync(h.logFile).size;
    } catch {
      return 0;
    }
  });
}

/** "Accepted publickey" lines each host's sshd logged since the offsets. */
async function loginsSince(fleet: Fleet, offsets: readonly number[]): Promise<number[]> {
  return Promise.all(
    fleet.hosts.map(async (host, i) => {
      const handle = await open(host.logFile, "r");
      try {
        const { size } = await handle.stat();
        const length = Math.max(0, size - (offsets[i] ?? 0));
        const buffer = Buffer.alloc(length);
        await handle.read(buffer, 0, length, offsets[i] ?? 0);
        return buffer
          .toString("utf8")
          .split("\n")
          .filter((l) => l.includes("Accepted publickey")).length;
      } finally {
        await handle.close();
      }
    }),
  );
}

/** Wait until only the listening sshds are left (the last run's sessions have ended). */
async function settle(fleet: Fleet): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (fleet.processIds().length > fleet.hosts.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 300));
}

function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  // Every runner authenticates with the fleet's key file alone, and the floor runs without a loader.
  delete env["SSH_AUTH_SOCK"];
  delete env["NODE_OPTIONS"];
  return env;
}

/** What is left on the "hosts" of the runs: rlvm-fleet's run directories, the payload's temp dirs. */
function leftovers(runIds: readonly string[]): string[] {
  const runDirs = existsSync("/run/rlvm-fleet")
    ? readdirSync("/run/rlvm-fleet")
        .filter((d) => runIds.some((id) => d.startsWith(`${id}.`)))
        .map((d) => `/run/rlvm-fleet/${d}`)
    : [];
  const payloadDirs = readdirSync("/tmp")
    .filter((d) => d.startsWith("rlvm-bench."))
    .map((d) => `/tmp/${d}`);
  return [...runDirs, ...payloadDirs];
}

async function main(): Promise<void> {
  raiseOpenFilesLimit();
  const sizes = (envList("BENCH_SIZES") ?? ["10", "50", "200"]).map(Number);
  const rtts = (envList("BENCH_RTT_MS") ?? ["0"]).map(Number);
  if (rtts.some((r) => !Number.isInteger(r) || r < 0)) {
    throw new Error(`BENCH_RTT_MS must be whole milliseconds, got "${process.env["BENCH_RTT_MS"]}"`);
  }
  if (sizes.some((n) => !Number.isInteger(n) || n < 1))
    throw new Error(`BENCH_SIZES must be whole numbers of hosts, got "${process.env["BENCH_SIZES"]}"`);
  const repeatsFor = (n: number) => envCount("BENCH_REPEATS", n <= 50 ? 5 : 3);
  const warmupFor = (n: number) => envCount("BENCH_WARMUP", n <= 50 ? 1 : 0);
  const wanted = new Set((envList("BENCH_RUNNERS") ?? RUNNER_ORDER) as RunnerId[]);
  for (const id of wanted) {
    if (!RUNNER_ORDER.includes(id)) throw new Error(`BENCH_RUNNERS: unknown runner "${id}"`);
  }
  const asRoot = process.getuid?.() === 0;
  if (!asRoot) {
    log(
      "not root: the hosts' sshd runs unprivileged and logs in only you, so every runner runs the agent as you, " +
        "without sudo. That is not the comparison the issue asks for: run it as root (as CI does) for that.",
    );
  }
  const tools = ensureTools(log);
  for (const [runner, why] of Object.entries(tools.skipped)) {
    if (wanted.has(runner as RunnerId)) log(`SKIPPING ${runner}: ${why}`);
  }
  const facts = machineFacts(tools);
  log(`${facts.cpus} CPUs, Linux ${facts.kernel}, Node ${facts.node}, ${facts.openssh}, ${facts.ansible}`);

  const work = mkdtempSync(join(tmpdir(), "rlvm-fleet-bench-"));
  const ansibleRemoteTmp = `/tmp/.rlvm-fleet-bench-ansible-${process.pid}`;
  const controllerCpu = createCpuGroup(`rlvm-fleet-bench-${process.pid}-controller`);
  if (controllerCpu === null) log("no cgroup CPU accounting here: the CPU columns stay empty");
  const groups: CpuGroup[] = controllerCpu === null ? [] : [controllerCpu];
  const cleanup = () => {
    rmSync(work, { recursive: true, force: true });
    rmSync(ansibleRemoteTmp, { recursive: true, force: true });
    for (const group of groups) group.remove();
  };
  process.on("exit", cleanup);
  const floorCommand = await bundleFloor(work);
  const payloadFile = join(work, "payload.sh");
  writeFileSync(payloadFile, buildPayload(`bench-${Date.now()}`), { mode: 0o644 });
  const records: RunRecord[] = [];
  const failures: string[] = [];
  const runIds: string[] = [];
  const started = Date.now();

  for (const n of sizes) {
    log(`starting ${n} loopback sshd hosts`);
    const fleet = await startFleet({ hosts: n });
    const hostsCpu =
      controllerCpu === null ? null : createCpuGroup(`rlvm-fleet-bench-${process.pid}-hosts-${n}`);
    if (hostsCpu !== null) {
      groups.push(hostsCpu);
      // Every session, sudo and agent is forked by a listener from now on, so it is counted here.
      for (const host of fleet.hosts) if (host.pid !== undefined) hostsCpu.add(host.pid);
    }
    try {
      const dir = join(work, `n${n}`);
      mkdirSync(dir);
      for (const rttMs of rtts) {
        // The tools see the hosts through the latency proxy; logins, CPU and settling stay on the real fleet.
        const proxy = rttMs > 0 ? await startLatencyProxy(fleet, rttMs) : null;
        if (proxy !== null) {
          const ping = await proxy.calibrate();
          log(
            `latency proxy: ${rttMs} ms RTT asked, TCP ping through it ${ping.medianMs.toFixed(1)} ms median (${ping.minMs.toFixed(1)}–${ping.maxMs.toFixed(1)})`,
          );
        }
        try {
          const ctx: RunnerContext = {
            fleet: proxy?.view ?? fleet,
            dir,
            repoRoot,
            payloadFile,
            floorCommand,
            tools,
            connectTimeoutS: CONNECT_TIMEOUT_S,
            ansibleRemoteTmp,
            asRoot,
          };
          const runners: Runner[] = [];
          for (const id of RUNNER_ORDER) {
            if (!wanted.has(id)) continue;
            if (id === "rlvm-fleet") runners.push(rlvmFleetRunner(ctx));
            if (id === "floor") runners.push(floorRunner(ctx));
            if (id === "parallel-ssh" && tools.parallelSsh !== undefined)
              runners.push(parallelSshRunner(ctx));
            if (id === "ansible" && tools.ansiblePlaybook !== undefined) runners.push(ansibleRunner(ctx));
          }
          const warmup = warmupFor(n);
          const rounds = warmup + repeatsFor(n);
          let runNumber = 0;
          for (let round = 0; round < rounds; round++) {
            const timed = round >= warmup;
            // Rotate the order every round, so no runner always follows the same one.
            const order = runners.map((_, i) => runners[(i + round) % runners.length] as Runner);
            for (const runner of order) {
              await settle(fleet);
              const runDir = join(dir, `${runner.id}-${rttMs}ms-${++runNumber}`);
              mkdirSync(runDir);
              const setup = runner.prepare(runDir);
              const offsets = logSizes(fleet);
              const stdoutFile = join(runDir, "stdout");
              const stderrFile = join(runDir, "stderr");
              const controllerBefore = controllerCpu?.usageMs() ?? NaN;
              const hostsBefore = hostsCpu?.usageMs() ?? NaN;
              const measured = await measureCommand(setup.argv, {
                cwd: runDir,
                env: setup.env ?? childEnv(),
                ...(setup.stdinFile === undefined ? {} : { stdinFile: setup.stdinFile }),
                stdoutFile,
                stderrFile,
                timeoutMs: RUN_TIMEOUT_MS,
                onSpawn: (pid) => controllerCpu?.add(pid),
              });
              const controllerMs = (controllerCpu?.usageMs() ?? NaN) - controllerBefore;
              let error: string | null = null;
              try {
                setup.verify(measured.code, stdoutFile, stderrFile);
              } catch (e) {
                error = (e as Error).message;
              }
              setup.after?.();
              // The hosts' share ends when the last session has: wait for that before reading it.
              await settle(fleet);
              const hostsMs = (hostsCpu?.usageMs() ?? NaN) - hostsBefore;
              const logins = await loginsSince(fleet, offsets);
              if (runner.id === "rlvm-fleet") {
                const report = join(runDir, "report.json");
                if (existsSync(report))
                  runIds.push((JSON.parse(readFileSync(report, "utf8")) as { run_id: string }).run_id);
              }
              const cpu = Number.isNaN(controllerMs)
                ? ""
                : `  cpu ${(controllerMs / 1000).toFixed(2)} s + hosts ${(hostsMs / 1000).toFixed(2)} s`;
              const what =
                `${(measured.wallMs / 1000).toFixed(2)} s${cpu}  peak ${(measured.maxProcessHwmKb / 1024).toFixed(0)} MB` +
                ` (tree ${(measured.treeRssKb / 1024).toFixed(0)} MB)  logins/host ${Math.min(...logins)}–${Math.max(...logins)}`;
              const tag = `${String(n).padStart(3)} hosts ${String(rttMs).padStart(3)} ms RTT  ${RUNNER_LABELS[runner.id].padEnd(24)}`;
              if (error !== null) {
                failures.push(`${n} hosts at ${rttMs} ms RTT, ${runner.id}: ${error}`);
                log(`${tag} FAILED after ${what}: ${error}`);
              } else {
                log(`${tag} ${timed ? "" : "(warm-up) "}${what}`);
                if (timed)
                  records.push({
                    n,
                    rttMs,
                    runner: runner.id,
                    wallMs: measured.wallMs,
                    controllerCpuMs: controllerMs,
                    hostsCpuMs: hostsMs,
                    processHwmKb: measured.maxProcessHwmKb,
                    treeRssKb: measured.treeRssKb,
                    connectionsMin: Math.min(...logins),
                    connectionsMax: Math.max(...logins),
                  });
              }
              rmSync(runDir, { recursive: true, force: true });
            }
          }
        } finally {
          await proxy?.stop();
        }
      }
    } finally {
      await fleet.stop();
      hostsCpu?.remove();
    }
  }

  const left = leftovers(runIds);
  if (left.length > 0) failures.push(`left on the hosts: ${left.join(", ")}`);

  const summaries = summarize(records);
  const goals = checkGoals(summaries, records);
  const skipped = Object.entries(tools.skipped).map(([runner, why]) => `- skipped ${runner}: ${why}`);
  const text = [
    `## Benchmark, ${facts.date.slice(0, 10)}`,
    "",
    machineText(facts),
    "",
    markdownTable(summaries),
    "",
    "Goals (issue 8), measured side by side in this run:",
    "",
    goalsText(goals),
    ...(skipped.length > 0 ? ["", ...skipped] : []),
    ...(asRoot ? [] : ["", "- not run as root: the agent ran as the login user, without sudo"]),
    ...(failures.length > 0 ? ["", "Failures:", "", ...failures.map((f) => `- ${f}`)] : []),
    "",
    methodText({ warmup: sizes.map((n) => `${warmupFor(n)} at ${n}`).join(", ") }),
    "",
    `The bench took ${Math.round((Date.now() - started) / 1000)} s.`,
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
