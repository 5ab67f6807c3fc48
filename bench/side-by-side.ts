// The latency and CPU-per-host dimensions: rlvm-fleet, the bare ssh2 floor, parallel-ssh and Ansible
// do the same work on every host (the agent's `ping`, as root), alternating, on N loopback sshd hosts,
// each at every BENCH_RTT_MS behind the latency proxy. One set of runs gives both tables.
//
//   BENCH_SIZES=50           fleet sizes (e.g. 10,50,200; 200 adds issue 8's growth and memory goals)
//   BENCH_RTT_MS=0,50        round trips the latency proxy adds in front of every host's sshd
//   BENCH_REPEATS, BENCH_WARMUP   timed and untimed rounds per size (default 5 and 1 up to 50 hosts, 3 and 0 above)
//   BENCH_RUNNERS=rlvm-fleet,floor,parallel-ssh,ansible    a subset
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { startFleet } from "../test/integration/harness/fleet.js";
import { createCpuGroup } from "./cpu.js";
import type { BenchContext, DimensionResult } from "./dimension.js";
import { envChoices, envCount, envNumbers } from "./env.js";
import { leftovers, loginsSince, logSizes, measureRun, settle } from "./fleet-runs.js";
import { startLatencyProxy } from "./latency-proxy.js";
import {
  cpuGoals,
  cpuTable,
  latencyGoals,
  latencyTable,
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
  runnerContext,
} from "./runners.js";

const RUN_TIMEOUT_MS = 10 * 60_000;

export async function sideBySide(ctx: BenchContext): Promise<DimensionResult[]> {
  const sizes = envNumbers("BENCH_SIZES", [50], 1);
  const rtts = envNumbers("BENCH_RTT_MS", [0, 50], 0);
  const repeatsFor = (n: number) => envCount("BENCH_REPEATS", n <= 50 ? 5 : 3);
  const warmupFor = (n: number) => envCount("BENCH_WARMUP", n <= 50 ? 1 : 0);
  const wanted = envChoices("BENCH_RUNNERS", RUNNER_ORDER);
  const { tools, log } = ctx;
  const controllerCpu = createCpuGroup(`rlvm-fleet-bench-${process.pid}-controller`);
  if (controllerCpu === null) log("no cgroup CPU accounting here: the CPU columns stay empty");
  const records: RunRecord[] = [];
  const failures: string[] = [];
  const runIds: string[] = [];
  const calibrations: string[] = [];

  try {
    for (const n of sizes) {
      log(`starting ${n} loopback sshd hosts`);
      const fleet = await startFleet({ hosts: n });
      const hostsCpu =
        controllerCpu === null ? null : createCpuGroup(`rlvm-fleet-bench-${process.pid}-hosts-${n}`);
      // Every session, sudo and agent is forked by a listener from now on, so it is counted here.
      if (hostsCpu !== null)
        for (const host of fleet.hosts) if (host.pid !== undefined) hostsCpu.add(host.pid);
      try {
        const dir = join(ctx.work, `side-by-side-n${n}`);
        mkdirSync(dir);
        for (const rttMs of rtts) {
          // The tools see the hosts through the latency proxy; logins, CPU and settling stay on the real fleet.
          const proxy = rttMs > 0 ? await startLatencyProxy(fleet, rttMs) : null;
          if (proxy !== null) {
            const ping = await proxy.calibrate();
            const line = `${rttMs} ms RTT asked, TCP ping through it ${ping.medianMs.toFixed(1)} ms median (${ping.minMs.toFixed(1)}–${ping.maxMs.toFixed(1)}, ${n} hosts)`;
            calibrations.push(line);
            log(`latency proxy: ${line}`);
          }
          try {
            const rctx = runnerContext(ctx, proxy?.view ?? fleet, dir);
            const runners: Runner[] = [];
            for (const id of RUNNER_ORDER) {
              if (!wanted.has(id)) continue;
              if (id === "rlvm-fleet") runners.push(rlvmFleetRunner(rctx));
              if (id === "floor") runners.push(floorRunner(rctx));
              if (id === "parallel-ssh" && tools.parallelSsh !== undefined)
                runners.push(parallelSshRunner(rctx));
              if (id === "ansible" && tools.ansiblePlaybook !== undefined) runners.push(ansibleRunner(rctx));
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
                const hostsBefore = hostsCpu?.usageMs() ?? NaN;
                const { measured, controllerMs, stdoutFile, stderrFile } = await measureRun(
                  setup,
                  runDir,
                  controllerCpu,
                  { timeoutMs: RUN_TIMEOUT_MS },
                );
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
  } finally {
    controllerCpu?.remove();
  }

  const left = leftovers(runIds);
  if (left.length > 0) failures.push(`left on the hosts: ${left.join(", ")}`);
  const summaries = summarize(records);
  const warmups = sizes.map((n) => `${warmupFor(n)} at ${n}`).join(", ");
  const proxyText =
    calibrations.length === 0
      ? ""
      : ` The latency proxy (bench/latency-proxy.ts, in the bench's own process: it stands for the network) delays each direction by RTT/2 and holds a new connection's data for one RTT, as a TCP handshake would; calibrated with a 1-byte TCP ping through it to an echo server, median of 20: ${calibrations.join("; ")}.`;
  const method =
    "Every runner does the same work on every host, the agent's `ping` run as root through `sudo -n` (rlvm-fleet through its bootstrap; the others through one self-contained bash payload, bench/payload.ts), with host keys verified, all hosts at once (forks = hosts). " +
    `Wall time runs from spawning the runner to its exit; the median is over the timed rounds (untimed warm-up rounds: ${warmups}), the runners alternating in an order that rotates every round.` +
    proxyText;
  return [
    {
      title: "Latency: the same work on every host, at each round trip",
      table: latencyTable(summaries),
      goals: latencyGoals(summaries, records),
      method,
      failures,
    },
    {
      title: "CPU per host: the controller's own process tree, and the hosts'",
      table: cpuTable(summaries),
      goals: cpuGoals(summaries),
      method:
        "CPU: the kernel's cgroup accounting (bench/cpu.ts), user and system time. Controller: the runner's whole process tree (Ansible's Python workers and ssh clients, parallel-ssh's ssh clients, rlvm-fleet's one process). Hosts: everything the hosts' sshd listeners forked during the run (sessions, sudo, bash, the agent), which is never counted as the controller's. Medians over the same timed runs as the latency table. " +
        "Peak RSS: /proc/PID/status sampled every 100 ms; largest process = highest VmHWM of any one process of the runner, process tree = highest sum of VmRSS over its processes at once. " +
        'SSH logins per host: "Accepted publickey" lines in each host\'s sshd log during one run, min–max over hosts and runs.',
      failures: [],
    },
  ];
}
