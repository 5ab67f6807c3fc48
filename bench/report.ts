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

const compared = (x: Summary, ratio: number | null, what = "") =>
  ratio === null
    ? "baseline"
    : x.runner === "floor"
      ? `rlvm-fleet / floor = ${(1 / ratio).toFixed(2)}×${what}`
      : `${SHORT[x.runner]} / rlvm-fleet = ${ratio.toFixed(2)}×${what}`;

export function latencyTable(summaries: readonly Summary[]): string {
  const rows = [
    "| hosts | RTT ms | runner | runs | median wall s | min–max s | compared | SSH logins per host |",
    "| ---: | ---: | --- | ---: | ---: | ---: | --- | ---: |",
  ];
  for (const x of summaries) {
    const logins =
      x.connectionsMin === x.connectionsMax
        ? `${x.connectionsMin}`
        : `${x.connectionsMin}–${x.connectionsMax}`;
    rows.push(
      `| ${x.n} | ${x.rttMs} | ${RUNNER_LABELS[x.runner]} | ${x.runs} | ${s(x.medianMs)} | ${s(x.minMs)}–${s(x.maxMs)} | ${compared(x, x.ratio)} | ${logins} |`,
    );
  }
  return rows.join("\n");
}

const perHost = (ms: number, n: number) => (Number.isNaN(ms) ? "–" : (ms / n).toFixed(1));

export function cpuTable(summaries: readonly Summary[]): string {
  const rows = [
    "| hosts | RTT ms | runner | controller CPU ms per host | compared | hosts' CPU ms per host | peak RSS MB (largest process) | peak RSS MB (process tree) |",
    "| ---: | ---: | --- | ---: | --- | ---: | ---: | ---: |",
  ];
  for (const x of summaries) {
    const rlvm = summaries.find((r) => r.n === x.n && r.rttMs === x.rttMs && r.runner === "rlvm-fleet");
    const ratio =
      x.runner === "rlvm-fleet" || rlvm === undefined || Number.isNaN(x.controllerCpuMs)
        ? null
        : x.controllerCpuMs / rlvm.controllerCpuMs;
    rows.push(
      `| ${x.n} | ${x.rttMs} | ${RUNNER_LABELS[x.runner]} | ${perHost(x.controllerCpuMs, x.n)} | ${compared(x, ratio, " of CPU")} | ${perHost(x.hostsCpuMs, x.n)} | ${x.processHwmMb.toFixed(0)} | ${x.treeRssMb.toFixed(0)} |`,
    );
  }
  return rows.join("\n");
}

export interface Goal {
  goal: string;
  verdict: "met" | "missed" | "not measured";
  detail: string;
}

const findIn =
  (summaries: readonly Summary[]) =>
  (n: number, runner: RunnerId, rttMs = 0) =>
    summaries.find((x) => x.n === n && x.runner === runner && x.rttMs === rttMs);

export function latencyGoals(summaries: readonly Summary[], records: readonly RunRecord[]): Goal[] {
  const find = findIn(summaries);
  const cpu = (x: Summary) => x.controllerCpuMs + x.hostsCpuMs;
  const goals: Goal[] = [];
  const where = (rttMs: number) => `50 hosts at ${rttMs} ms RTT`;
  const ratioGoal = (runner: RunnerId, atLeast: number, rttMs: number, issue: string) => {
    const goal = `${where(rttMs)}: rlvm-fleet ≥ ${atLeast}× faster than ${SHORT[runner]} (${issue})`;
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
  const floorGoal = (atMost: number, rttMs: number, issue: string) => {
    const goal = `${where(rttMs)}: rlvm-fleet within ${atMost}× of the bare ssh2 floor (${issue})`;
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
  // Over a 50 ms network (issue 17), and on loopback (issue 8).
  ratioGoal("ansible", 5, 50, "issue 17");
  ratioGoal("parallel-ssh", 2, 50, "issue 17");
  floorGoal(1.15, 50, "issue 17");
  ratioGoal("ansible", 5, 0, "issue 8");
  ratioGoal("parallel-ssh", 2.5, 0, "issue 8");
  floorGoal(1.3, 0, "issue 8");
  const rlvm50 = find(50, "rlvm-fleet");
  const floor50 = find(50, "floor");
  const rlvm200 = find(200, "rlvm-fleet");
  // Issue 8's goals at 200 hosts, when BENCH_SIZES has 200 (the scale table goes to 1,000).
  if (rlvm50 !== undefined && rlvm200 !== undefined) {
    const growth = rlvm200.medianMs / rlvm50.medianMs;
    const floor200 = find(200, "floor");
    const floorNote =
      floor50 !== undefined && floor200 !== undefined
        ? `; the floor: ${(floor200.medianMs / floor50.medianMs).toFixed(2)}×`
        : "";
    goals.push({
      goal: "50 → 200 hosts: wall time grows no worse than linearly (≤ 4×) (issue 8)",
      verdict: growth <= 4 ? "met" : "missed",
      detail: `${s(rlvm50.medianMs)} s → ${s(rlvm200.medianMs)} s = ${growth.toFixed(2)}× for 4× the hosts${floorNote}`,
    });
  }
  if (rlvm200 !== undefined) {
    goals.push({
      goal: "200 hosts: controller peak RSS ≤ 150 MB (issue 8)",
      verdict: rlvm200.processHwmMb <= 150 ? "met" : "missed",
      detail: `${rlvm200.processHwmMb.toFixed(0)} MB (VmHWM of the rlvm-fleet process, its only process; highest of ${rlvm200.runs} runs)`,
    });
  }
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

export function cpuGoals(summaries: readonly Summary[]): Goal[] {
  const find = findIn(summaries);
  const goal = "controller CPU per host ≤ 5 ms (issue 17; 50 hosts at 50 ms RTT, real sshd hosts)";
  const rlvm = find(50, "rlvm-fleet", 50);
  if (rlvm === undefined || Number.isNaN(rlvm.controllerCpuMs))
    return [{ goal, verdict: "not measured", detail: "" }];
  const perHostMs = rlvm.controllerCpuMs / rlvm.n;
  const others = RUNNER_ORDER.filter((r) => r !== "rlvm-fleet")
    .map((r) => find(50, r, 50))
    .filter((x): x is Summary => x !== undefined)
    .map((x) => `${SHORT[x.runner]} ${(x.controllerCpuMs / x.n).toFixed(1)} ms`);
  return [
    {
      goal,
      verdict: perHostMs <= 5 ? "met" : "missed",
      detail: `${perHostMs.toFixed(1)} ms per host (${s(rlvm.controllerCpuMs)} s for ${rlvm.n} hosts, median of ${rlvm.runs} runs${others.length > 0 ? `; ${others.join(", ")}` : ""})`,
    },
  ];
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
