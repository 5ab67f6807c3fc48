// Statistics, the markdown table and the issue's goals, from the measured runs.
import type { MachineFacts } from "./tools.js";
import { RUNNER_LABELS, type RunnerId } from "./runners.js";

export interface RunRecord {
  n: number;
  /** BENCH_RTT_MS: the round trip the latency proxy added in front of every host (0: none). */
  rttMs: number;
  runner: RunnerId;
  wallMs: number;
  /** CPU time of the runner's process tree (NaN without cgroup accounting). */
  controllerCpuMs: number;
  /** CPU time of every host-side process of the run: sshd sessions, sudo, bash, the agent (NaN without). */
  hostsCpuMs: number;
  /** Largest VmHWM of any one process of the runner's tree (KiB). */
  processHwmKb: number;
  /** Largest sampled sum of VmRSS over the runner's process tree (KiB). */
  treeRssKb: number;
  /** "Accepted publickey" lines in the hosts' sshd logs during the run: min and max per host. */
  connectionsMin: number;
  connectionsMax: number;
}

export interface Summary {
  n: number;
  rttMs: number;
  runner: RunnerId;
  runs: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
  /** This runner's median wall time over rlvm-fleet's at the same N and RTT (null for rlvm-fleet or when absent). */
  ratio: number | null;
  controllerCpuMs: number;
  hostsCpuMs: number;
  processHwmMb: number;
  treeRssMb: number;
  connectionsMin: number;
  connectionsMax: number;
}

export const RUNNER_ORDER: RunnerId[] = ["rlvm-fleet", "floor", "parallel-ssh", "ansible"];

const SHORT: Record<RunnerId, string> = {
  "rlvm-fleet": "rlvm-fleet",
  floor: "floor",
  "parallel-ssh": "parallel-ssh",
  ansible: "Ansible",
};

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function summarize(records: readonly RunRecord[]): Summary[] {
  const keys = [...new Set(records.map((r) => `${r.n} ${r.rttMs}`))]
    .map((k) => k.split(" ").map(Number) as [number, number])
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out: Summary[] = [];
  for (const [n, rttMs] of keys) {
    const at = records.filter((r) => r.n === n && r.rttMs === rttMs);
    const rlvm = at.filter((r) => r.runner === "rlvm-fleet");
    const rlvmMedian = rlvm.length > 0 ? median(rlvm.map((r) => r.wallMs)) : null;
    for (const runner of RUNNER_ORDER) {
      const runs = at.filter((r) => r.runner === runner);
      if (runs.length === 0) continue;
      const walls = runs.map((r) => r.wallMs);
      const med = median(walls);
      out.push({
        n,
        rttMs,
        runner,
        runs: runs.length,
        medianMs: med,
        minMs: Math.min(...walls),
        maxMs: Math.max(...walls),
        ratio: runner === "rlvm-fleet" || rlvmMedian === null ? null : med / rlvmMedian,
        controllerCpuMs: median(runs.map((r) => r.controllerCpuMs)),
        hostsCpuMs: median(runs.map((r) => r.hostsCpuMs)),
        processHwmMb: Math.max(...runs.map((r) => r.processHwmKb)) / 1024,
        treeRssMb: Math.max(...runs.map((r) => r.treeRssKb)) / 1024,
        connectionsMin: Math.min(...runs.map((r) => r.connectionsMin)),
        connectionsMax: Math.max(...runs.map((r) => r.connectionsMax)),
      });
    }
  }
  return out;
}

const s = (ms: number) => (Number.isNaN(ms) ? "–" : (ms / 1000).toFixed(2));

export function markdownTable(summaries: readonly Summary[]): string {
  const rows = [
    "| hosts | RTT ms | runner | runs | median wall s | min–max s | compared | controller CPU s | controller CPU ms per host | hosts' CPU s | peak RSS MB (largest process) | peak RSS MB (process tree) | SSH logins per host |",
    "| ---: | ---: | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const x of summaries) {
    const compared =
      x.ratio === null
        ? "baseline"
        : x.runner === "floor"
          ? `rlvm-fleet / floor = ${(1 / x.ratio).toFixed(2)}×`
          : `${SHORT[x.runner]} / rlvm-fleet = ${x.ratio.toFixed(2)}×`;
    const logins =
      x.connectionsMin === x.connectionsMax
        ? `${x.connectionsMin}`
        : `${x.connectionsMin}–${x.connectionsMax}`;
    rows.push(
      `| ${x.n} | ${x.rttMs} | ${RUNNER_LABELS[x.runner]} | ${x.runs} | ${s(x.medianMs)} | ${s(x.minMs)}–${s(x.maxMs)} | ${compared} | ${s(x.controllerCpuMs)} | ${Number.isNaN(x.controllerCpuMs) ? "–" : (x.controllerCpuMs / x.n).toFixed(1)} | ${s(x.hostsCpuMs)} | ${x.processHwmMb.toFixed(0)} | ${x.treeRssMb.toFixed(0)} | ${logins} |`,
    );
  }
  return rows.join("\n");
}

export interface Goal {
  goal: string;
  verdict: "met" | "missed" | "not measured";
  detail: string;
}

export function checkGoals(summaries: readonly Summary[], records: readonly RunRecord[]): Goal[] {
  const find = (n: number, runner: RunnerId, rttMs = 0) =>
    summaries.find((x) => x.n === n && x.runner === runner && x.rttMs === rttMs);
  const cpu = (x: Summary) => x.controllerCpuMs + x.hostsCpuMs;
  const goals: Goal[] = [];
  const where = (rttMs: number) => `50 hosts${rttMs === 0 ? "" : ` at ${rttMs} ms RTT`}`;
  const ratioGoal = (runner: RunnerId, atLeast: number, rttMs: number) => {
    const goal = `${where(rttMs)}: rlvm-fleet ≥ ${atLeast}× faster than ${SHORT[runner]}`;
    const x = find(50, runner, rttMs);
    const rlvm = find(50, "rlvm-fleet", rttMs);
    const floor = find(50, "floor", rttMs);
    if (x === undefined || rlvm === undefined || x.ratio === null) {
      goals.push({ goal, verdict: "not measured", detail: "" });
      return;
    }
    const cpuNote = Number.isNaN(cpu(x))
      ? ""
      : `; CPU, controller and hosts together: ${s(cpu(x))} s vs ${s(cpu(rlvm))} s = ${(cpu(x) / cpu(rlvm)).toFixed(2)}×`;
    const floorNote =
      floor === undefined
        ? ""
        : `; even the floor is only ${(x.medianMs / floor.medianMs).toFixed(2)}× faster than ${SHORT[runner]}`;
    goals.push({
      goal,
      verdict: x.ratio >= atLeast ? "met" : "missed",
      detail: `${SHORT[runner]} / rlvm-fleet = ${x.ratio.toFixed(2)}× (${s(x.medianMs)} s vs ${s(rlvm.medianMs)} s${cpuNote}${x.ratio >= atLeast ? "" : floorNote})`,
    });
  };
  const floorGoal = (atMost: number, rttMs: number) => {
    const goal = `${where(rttMs)}: rlvm-fleet within ${atMost}× of the bare ssh2 floor`;
    const floor = find(50, "floor", rttMs);
    const rlvm = find(50, "rlvm-fleet", rttMs);
    if (floor?.ratio == null || rlvm === undefined) {
      goals.push({ goal, verdict: "not measured", detail: "" });
      return;
    }
    const over = 1 / floor.ratio;
    goals.push({
      goal,
      verdict: over <= atMost ? "met" : "missed",
      detail: `rlvm-fleet / floor = ${over.toFixed(2)}× (${s(rlvm.medianMs)} s vs ${s(floor.medianMs)} s)`,
    });
  };
  // On loopback (issue 9's goals), and over a 50 ms network (issue 17's: BENCH_RTT_MS with 50).
  ratioGoal("ansible", 5, 0);
  ratioGoal("parallel-ssh", 2.5, 0);
  floorGoal(1.3, 0);
  ratioGoal("ansible", 5, 50);
  ratioGoal("parallel-ssh", 2, 50);
  floorGoal(1.15, 50);
  const rlvm50 = find(50, "rlvm-fleet");
  const floor50 = find(50, "floor");
  const growthGoal = "50 → 200 hosts: wall time grows no worse than linearly (≤ 4×)";
  const rlvm200 = find(200, "rlvm-fleet");
  if (rlvm50 !== undefined && rlvm200 !== undefined) {
    const growth = rlvm200.medianMs / rlvm50.medianMs;
    const floor200 = find(200, "floor");
    const floorNote =
      floor50 !== undefined && floor200 !== undefined
        ? `; the floor: ${(floor200.medianMs / floor50.medianMs).toFixed(2)}×`
        : "";
    goals.push({
      goal: growthGoal,
      verdict: growth <= 4 ? "met" : "missed",
      detail: `${s(rlvm50.medianMs)} s → ${s(rlvm200.medianMs)} s = ${growth.toFixed(2)}× for 4× the hosts${floorNote}`,
    });
  } else goals.push({ goal: growthGoal, verdict: "not measured", detail: "" });
  const rssGoal = "200 hosts: controller peak RSS ≤ 150 MB";
  if (rlvm200 !== undefined) {
    goals.push({
      goal: rssGoal,
      verdict: rlvm200.processHwmMb <= 150 ? "met" : "missed",
      detail: `${rlvm200.processHwmMb.toFixed(0)} MB (VmHWM of the rlvm-fleet process, its only process; highest of ${rlvm200.runs} runs)`,
    });
  } else goals.push({ goal: rssGoal, verdict: "not measured", detail: "" });
  const rlvmRuns = records.filter((r) => r.runner === "rlvm-fleet");
  if (rlvmRuns.length > 0) {
    const bad = rlvmRuns.filter((r) => r.connectionsMin !== 1 || r.connectionsMax !== 1);
    goals.push({
      goal: "one SSH connection per host",
      verdict: bad.length === 0 ? "met" : "missed",
      detail:
        bad.length === 0
          ? `every host's sshd logged exactly one "Accepted publickey" in each of the ${rlvmRuns.length} rlvm-fleet runs`
          : `${bad.length} of ${rlvmRuns.length} runs had hosts with ${bad.map((r) => `${r.connectionsMin}–${r.connectionsMax}`).join(", ")} logins`,
    });
  } else goals.push({ goal: "one SSH connection per host", verdict: "not measured", detail: "" });
  return goals;
}

export function goalsText(goals: readonly Goal[]): string {
  const mark = { met: "✓ met", missed: "✗ missed", "not measured": "– not measured" } as const;
  return goals
    .map((g) => `- ${mark[g.verdict]}: ${g.goal}${g.detail === "" ? "" : ` — ${g.detail}`}`)
    .join("\n");
}

export function machineText(m: MachineFacts): string {
  return [
    `- date: ${m.date}`,
    `- machine: ${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB, Linux ${m.kernel}, ${m.os}; load average ${m.loadAverage} when the bench started`,
    `- Node ${m.node}; ${m.openssh}; ${m.restic}`,
    `- ${m.ansible}; ${m.parallelSsh}`,
  ].join("\n");
}

export function methodText(options: { warmup: string }): string {
  return [
    "How: every runner does the same work on every host, the agent's `ping` run as root through `sudo -n`",
    "(rlvm-fleet through its bootstrap; the others through one self-contained bash payload, bench/payload.ts),",
    "with host keys verified. Wall time runs from spawning the runner to its exit; the median is over the timed",
    `rounds (untimed warm-up rounds: ${options.warmup}), the runners alternating in an order that rotates every round.`,
    "CPU: the kernel's cgroup accounting, for the runner's process tree (controller) and for everything the hosts'",
    "sshd forked during the run (sessions, sudo, bash, the agent), medians. Peak RSS: /proc/PID/status sampled every",
    "100 ms; largest process = highest VmHWM of any one process of the runner (rlvm-fleet and the floor have only",
    "one), process tree = highest sum of VmRSS over all its processes at once (Ansible's forks, the ssh clients).",
    'SSH logins per host: "Accepted publickey" lines in each host\'s sshd log during one run, min–max over hosts and runs.',
  ].join("\n");
}
