// The bastion dimension (issue 17, point 4): N hosts reachable only through one bastion. rlvm-fleet
// (`proxy_jump = "bastion"`, one connection to the bastion shared by every host) against Ansible and
// parallel-ssh with ProxyJump in their ssh args (OpenSSH opens one connection to the bastion per host),
// the same work on every host, and the connections each opened at the bastion.
//
//   BENCH_BASTION_HOSTS=200   hosts behind the bastion (default 200; the bastion is one more sshd)
//   BENCH_REPEATS=3           timed rounds (default 3)
//   BENCH_WARMUP=0            untimed rounds first (default 0: a round at 200 hosts takes minutes)
//   BENCH_RUNNERS=…           a subset of rlvm-fleet, parallel-ssh, ansible (the floor has no ProxyJump)
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { startFleet, type Fleet, type FleetHost } from "../test/integration/harness/fleet.js";
import { createCpuGroup } from "./cpu.js";
import type { BenchContext, Dimension, DimensionResult } from "./dimension.js";
import { envChoices, envCount } from "./env.js";
import { leftovers, logSizes, logsSince, measureRun, payloadDirs, settle } from "./fleet-runs.js";
import { median, type Goal } from "./report.js";
import {
  ansibleRunner,
  parallelSshRunner,
  rlvmFleetRunner,
  RUNNER_LABELS,
  type Runner,
  runnerContext,
  type RunnerId,
} from "./runners.js";

const RUN_TIMEOUT_MS = 10 * 60_000;
const GOAL_HOSTS = 200;
const GOAL_RATIO = 3;
const BASTION = "bastion";
const ORDER: RunnerId[] = ["rlvm-fleet", "parallel-ssh", "ansible"];
const SHORT: Partial<Record<RunnerId, string>> = {
  "rlvm-fleet": "rlvm-fleet",
  "parallel-ssh": "parallel-ssh",
  ansible: "Ansible",
};

function wantedRunners(log: (line: string) => void): Set<RunnerId> {
  const wanted = envChoices<RunnerId | "floor">("BENCH_RUNNERS", [...ORDER, "floor"], ORDER);
  if (wanted.delete("floor")) log("bastion: the floor connects directly only: not run here");
  return wanted as Set<RunnerId>;
}

interface BastionRecord {
  runner: RunnerId;
  wallMs: number;
  controllerCpuMs: number;
  /** Everything the bastion's sshd forked during the run: its sessions and their forwards (NaN without cgroups). */
  bastionCpuMs: number;
  processHwmKb: number;
  /** "Accepted publickey" lines in the bastion's sshd log during the run. */
  bastionLogins: number;
  targetLoginsMin: number;
  targetLoginsMax: number;
}

const count = (text: string, needle: string) => text.split(needle).length - 1;

/** The targets as the runners see them: a view of the fleet without the bastion. */
function targetsView(fleet: Fleet, targets: readonly FleetHost[]): Fleet {
  const byName = new Map(targets.map((h) => [h.name, h]));
  return Object.create(fleet, {
    hosts: { value: targets },
    host: {
      value: (name: string) => {
        const host = byName.get(name);
        if (host === undefined) throw new Error(`no target ${name}`);
        return host;
      },
    },
  }) as Fleet;
}

const s = (ms: number) => (Number.isNaN(ms) ? "–" : (ms / 1000).toFixed(2));
const span = (min: number, max: number) => (min === max ? `${min}` : `${min}–${max}`);

export const bastionDimension: Dimension = async (ctx: BenchContext): Promise<DimensionResult> => {
  const n = envCount("BENCH_BASTION_HOSTS", GOAL_HOSTS);
  if (n < 1) throw new Error("BENCH_BASTION_HOSTS must be at least 1");
  const repeats = envCount("BENCH_REPEATS", 3);
  const warmup = envCount("BENCH_WARMUP", 0);
  const wanted = wantedRunners(ctx.log);
  const title = `Bastion: ${n} hosts behind one proxy_jump bastion`;
  const failures: string[] = [];
  const dir = join(ctx.work, "bastion");
  mkdirSync(dir, { recursive: true });

  // Ansible opens a connection to the bastion per host, all at once: every sshd process holds a few
  // descriptors, the controller's ssh clients too. run.ts raises the limit; say so if it is low.
  const openFiles = Number(spawnSync("bash", ["-c", "ulimit -Sn"], { encoding: "utf8" }).stdout.trim());
  if (openFiles < 8 * n + 256) {
    ctx.log(`bastion: the open-files limit is ${openFiles}, which may be too low for ${n} hosts`);
  }

  const targetNames = Array.from({ length: n }, (_, i) => `t${i + 1}`);
  ctx.log(`bastion: starting ${n + 1} loopback sshd hosts (one bastion, ${n} targets)`);
  const fleet = await startFleet({
    hosts: [BASTION, ...targetNames],
    sshdConfig: {
      [BASTION]: [
        // Ansible's N ProxyJump hops reach the bastion at once, unauthenticated: the harness's
        // MaxStartups 200 (OpenSSH's default 10:30:100 even more) would drop some. A real bastion
        // serving Ansible needs the same.
        `MaxStartups ${Math.max(1000, 2 * n)}`,
        // DEBUG1 logs every forward the bastion opens ("server_request_direct_tcpip: … target ADDR
        // port PORT"): the proof that every target login came through it.
        "LogLevel DEBUG1",
      ],
    },
  });
  const controllerCpu = createCpuGroup(`rlvm-fleet-bench-${process.pid}-bastion-controller`);
  const bastionCpu =
    controllerCpu === null ? null : createCpuGroup(`rlvm-fleet-bench-${process.pid}-bastion-sshd`);
  const records: BastionRecord[] = [];
  const runIds: string[] = [];
  const payloadDirsBefore = new Set(payloadDirs());
  try {
    const bastion = fleet.host(BASTION);
    const targets = fleet.hosts.filter((h) => h.name !== BASTION);
    // Every session and forward of the bastion is forked by its listener from now on.
    if (bastionCpu !== null && bastion.pid !== undefined) bastionCpu.add(bastion.pid);
    const rctx = runnerContext(ctx, targetsView(fleet, targets), dir, { bastion });
    const runners: Runner[] = [];
    if (wanted.has("rlvm-fleet")) runners.push(rlvmFleetRunner(rctx));
    if (wanted.has("parallel-ssh") && ctx.tools.parallelSsh !== undefined)
      runners.push(parallelSshRunner(rctx));
    if (wanted.has("ansible") && ctx.tools.ansiblePlaybook !== undefined) runners.push(ansibleRunner(rctx));

    let runNumber = 0;
    for (let round = 0; round < warmup + repeats; round++) {
      const timed = round >= warmup;
      // Rotate the order every round, so no runner always follows the same one.
      const order = runners.map((_, i) => runners[(i + round) % runners.length] as Runner);
      for (const runner of order) {
        await settle(fleet);
        const runDir = join(dir, `${runner.id}-${++runNumber}`);
        mkdirSync(runDir);
        const setup = runner.prepare(runDir);
        const offsets = logSizes(fleet);
        const bastionBefore = bastionCpu?.usageMs() ?? NaN;
        const { measured, controllerMs, stdoutFile, stderrFile } = await measureRun(
          setup,
          runDir,
          controllerCpu,
          {
            timeoutMs: RUN_TIMEOUT_MS,
          },
        );
        const errors: string[] = [];
        try {
          setup.verify(measured.code, stdoutFile, stderrFile);
        } catch (e) {
          errors.push((e as Error).message);
        }
        setup.after?.();
        await settle(fleet);
        const bastionMs = (bastionCpu?.usageMs() ?? NaN) - bastionBefore;
        const logs = await logsSince(fleet, offsets);
        const bastionLog = logs[0] ?? "";
        const bastionLogins = count(bastionLog, "Accepted publickey");
        const targetLogins = targets.map((_, i) => count(logs[i + 1] ?? "", "Accepted publickey"));
        // Every target login must have come through a forward the bastion opened to that target:
        // more logins than forwards means something reached it directly.
        const forwards = forwardsByTarget(bastionLog);
        const direct = targets.filter(
          (t, i) => (targetLogins[i] ?? 0) > (forwards.get(`${t.address}:${t.port}`) ?? 0),
        );
        if (direct.length > 0) {
          errors.push(
            `${direct.length} targets logged more logins than the bastion forwarded to them (reached directly?): ${direct
              .slice(0, 5)
              .map((t) => t.name)
              .join(", ")}`,
          );
        }
        if (runner.id === "rlvm-fleet") {
          const report = join(runDir, "report.json");
          if (existsSync(report))
            runIds.push((JSON.parse(readFileSync(report, "utf8")) as { run_id: string }).run_id);
        }
        const record: BastionRecord = {
          runner: runner.id,
          wallMs: measured.wallMs,
          controllerCpuMs: controllerMs,
          bastionCpuMs: bastionMs,
          processHwmKb: measured.maxProcessHwmKb,
          bastionLogins,
          targetLoginsMin: Math.min(...targetLogins),
          targetLoginsMax: Math.max(...targetLogins),
        };
        const cpu = Number.isNaN(controllerMs)
          ? ""
          : `  cpu ${s(controllerMs)} s + bastion ${s(bastionMs)} s`;
        const what =
          `${s(measured.wallMs)} s${cpu}  peak ${(measured.maxProcessHwmKb / 1024).toFixed(0)} MB` +
          `  bastion logins ${bastionLogins}  logins/target ${span(record.targetLoginsMin, record.targetLoginsMax)}`;
        const tag = `bastion ${String(n).padStart(3)} hosts  ${RUNNER_LABELS[runner.id].padEnd(24)}`;
        if (errors.length > 0) {
          failures.push(`bastion, ${n} hosts, ${runner.id}: ${errors.join("; ")}`);
          ctx.log(`${tag} FAILED after ${what}: ${errors.join("; ")}`);
        } else {
          ctx.log(`${tag} ${timed ? "" : "(warm-up) "}${what}`);
          if (timed) records.push(record);
        }
        rmSync(runDir, { recursive: true, force: true });
      }
    }
  } finally {
    await fleet.stop();
    bastionCpu?.remove();
    controllerCpu?.remove();
  }
  const left = leftovers(runIds, payloadDirsBefore);
  if (left.length > 0) failures.push(`left on the hosts: ${left.join(", ")}`);

  const summaries = ORDER.flatMap((runner) => {
    const runs = records.filter((r) => r.runner === runner);
    if (runs.length === 0) return [];
    const walls = runs.map((r) => r.wallMs);
    return [
      {
        runner,
        runs: runs.length,
        medianMs: median(walls),
        minMs: Math.min(...walls),
        maxMs: Math.max(...walls),
        controllerCpuMs: median(runs.map((r) => r.controllerCpuMs)),
        bastionCpuMs: median(runs.map((r) => r.bastionCpuMs)),
        processHwmMb: Math.max(...runs.map((r) => r.processHwmKb)) / 1024,
        bastionMin: Math.min(...runs.map((r) => r.bastionLogins)),
        bastionMax: Math.max(...runs.map((r) => r.bastionLogins)),
        targetMin: Math.min(...runs.map((r) => r.targetLoginsMin)),
        targetMax: Math.max(...runs.map((r) => r.targetLoginsMax)),
      },
    ];
  });
  const rlvm = summaries.find((x) => x.runner === "rlvm-fleet");
  const rows = [
    "| hosts | runner | runs | median wall s | min–max s | compared | controller CPU ms per host | bastion CPU s | peak RSS MB (largest process) | connections at the bastion per run | logins per target |",
    "| ---: | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ...summaries.map((x) => {
      const compared =
        x.runner === "rlvm-fleet"
          ? "baseline"
          : rlvm === undefined
            ? "–"
            : `${SHORT[x.runner]} / rlvm-fleet = ${(x.medianMs / rlvm.medianMs).toFixed(2)}×`;
      const perHost = Number.isNaN(x.controllerCpuMs) ? "–" : (x.controllerCpuMs / n).toFixed(1);
      return `| ${n} | ${RUNNER_LABELS[x.runner]} through the bastion | ${x.runs} | ${s(x.medianMs)} | ${s(x.minMs)}–${s(x.maxMs)} | ${compared} | ${perHost} | ${s(x.bastionCpuMs)} | ${x.processHwmMb.toFixed(0)} | ${span(x.bastionMin, x.bastionMax)} | ${span(x.targetMin, x.targetMax)} |`;
    }),
  ];

  // The goals are at 200 hosts: at another size the numbers are shown but decide nothing.
  const atOtherSize =
    n === GOAL_HOSTS ? "" : `measured at ${n} hosts (BENCH_BASTION_HOSTS), not ${GOAL_HOSTS}: `;
  const goals: Goal[] = [];
  const oneGoal = `${GOAL_HOSTS} hosts through one bastion: rlvm-fleet opens exactly one connection to it`;
  const rlvmRuns = records.filter((r) => r.runner === "rlvm-fleet");
  const ansible = summaries.find((x) => x.runner === "ansible");
  if (rlvm === undefined) {
    goals.push({ goal: oneGoal, verdict: "not measured", detail: "" });
  } else {
    const bad = rlvmRuns.filter((r) => r.bastionLogins !== 1);
    const ansibleNote =
      ansible === undefined ? "" : `; Ansible: ${span(ansible.bastionMin, ansible.bastionMax)} per run`;
    const detail =
      bad.length === 0
        ? `the bastion's sshd logged exactly one "Accepted publickey" in each of the ${rlvmRuns.length} rlvm-fleet runs${ansibleNote}`
        : `${bad.length} of ${rlvmRuns.length} runs opened ${bad.map((r) => r.bastionLogins).join(", ")} connections to it${ansibleNote}`;
    goals.push({
      goal: oneGoal,
      verdict: atOtherSize !== "" ? "not measured" : bad.length === 0 ? "met" : "missed",
      detail: `${atOtherSize}${detail}`,
    });
  }
  const ratioGoal = `${GOAL_HOSTS} hosts through one bastion: rlvm-fleet ≥ ${GOAL_RATIO}× faster than Ansible with ProxyJump`;
  if (rlvm === undefined || ansible === undefined) {
    const why = ctx.tools.skipped.ansible ?? (wanted.has("ansible") ? "" : "not in BENCH_RUNNERS");
    goals.push({ goal: ratioGoal, verdict: "not measured", detail: why });
  } else {
    const ratio = ansible.medianMs / rlvm.medianMs;
    const cpu = Number.isNaN(ansible.controllerCpuMs)
      ? ""
      : `; controller CPU ${s(ansible.controllerCpuMs)} s vs ${s(rlvm.controllerCpuMs)} s, the bastion's ${s(ansible.bastionCpuMs)} s vs ${s(rlvm.bastionCpuMs)} s`;
    goals.push({
      goal: ratioGoal,
      verdict: atOtherSize !== "" ? "not measured" : ratio >= GOAL_RATIO ? "met" : "missed",
      detail: `${atOtherSize}Ansible / rlvm-fleet = ${ratio.toFixed(2)}× (${s(ansible.medianMs)} s vs ${s(rlvm.medianMs)} s${cpu})`,
    });
  }

  const method = [
    `${n + 1} loopback sshd hosts: one bastion and ${n} targets, which every runner reaches only through the`,
    'bastion, host keys verified on both hops. rlvm-fleet: `proxy_jump = "bastion"` with a `[jump_hosts.bastion]`;',
    "Ansible (`script` module, forks N, pipelining) and parallel-ssh (`-I`): `-o ProxyJump=` plus an ssh_config",
    "file passed with `-F`, since the hop's ssh that ProxyJump starts takes `-F` but none of the `-o` options.",
    "The work on every host is the agent's `ping` as root, as in the main table. Wall time from spawn to exit,",
    `median of ${repeats} timed rounds after ${warmup} warm-up, the order rotating every round; CPU from cgroup`,
    "accounting, for the runner's process tree and for everything the bastion's sshd forked (its sessions and",
    'forwards). Connections at the bastion: "Accepted publickey" lines in its sshd log during one run; logins',
    "per target likewise in each target's log. The bastion runs with `LogLevel DEBUG1`, which logs every forward",
    "it opens, and a run fails if any target logged more logins than the bastion forwarded to it (reached",
    `directly). The bastion also has \`MaxStartups ${Math.max(1000, 2 * n)}\`: with OpenSSH's default 10:30:100 (the harness's`,
    "200 for every host) it would drop some of Ansible's simultaneous hops; a real bastion serving Ansible at",
    "this fan-out needs the same.",
  ].join("\n");
  return { title, table: rows.join("\n"), goals, method, failures };
};

/** Forwards the bastion's sshd opened, per "address:port": its DEBUG1 "server_request_direct_tcpip" lines. */
function forwardsByTarget(bastionLog: string): Map<string, number> {
  const forwards = new Map<string, number>();
  for (const m of bastionLog.matchAll(
    /server_request_direct_tcpip: originator \S+ port \d+, target (\S+) port (\d+)/g,
  )) {
    const key = `${m[1]}:${m[2]}`;
    forwards.set(key, (forwards.get(key) ?? 0) + 1);
  }
  return forwards;
}
