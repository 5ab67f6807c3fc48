// Scale (issue 17, point 3): `rlvm-fleet ping` with every host at once (`--forks N`) at up to 1,000
// hosts, and what that costs the controller itself: wall time, CPU per host, peak RSS, peak open file
// descriptors and event-loop delay, and how many hosts were not ok. The hosts are ssh2 stand-in hosts
// (not sshd; bench/stand-in-host.ts), one separate process outside the controller's CPU group; with
// BENCH_SCALE_REAL, also real loopback sshd hosts (the harness's startFleet), as far as they go.
//
//   BENCH_SCALE_SIZES=200,1000   stand-in fleet sizes (default; "none" for none)
//   BENCH_SCALE_REAL=50,200      real sshd fleet sizes, measured the same way (default: none)
//   BENCH_REPEATS=3              timed rounds per size (default 3)
//   BENCH_WARMUP=1               untimed rounds per size first (default 1)
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { userInfo } from "node:os";
import { startFleet, type Fleet, type FleetHost } from "../test/integration/harness/fleet.js";
import { generateEd25519Key, type KeyPair } from "../test/integration/harness/ssh-keys.js";
import { createCpuGroup, type CpuGroup } from "./cpu.js";
import type { BenchContext, Dimension, DimensionResult } from "./dimension.js";
import { envCount, envNumbers } from "./env.js";
import { measureCommand } from "./measure.js";
import { median, type Goal } from "./report.js";
import { rlvmFleetRunner, runnerContext } from "./runners.js";

const STAND_IN = "ssh2 stand-in hosts (not sshd)";
const RUN_TIMEOUT_MS = 10 * 60_000;
// src/cli/event-loop-stats.ts
const EVENT_LOOP_STATS_ENV = "RLVM_FLEET_EVENT_LOOP_STATS";
/** Error codes a host gets when the controller, not the host, ran out of something. */
const CONTROLLER_LIMIT = /EMFILE|ENFILE|too many open files|timed out/i;

type Kind = "stand-in" | "sshd";

/** The soft open-files limit the controller inherits from this process. */
function openFilesLimit(): string {
  try {
    return /^Max open files\s+(\S+)/m.exec(readFileSync("/proc/self/limits", "utf8"))?.[1] ?? "unknown";
  } catch {
    return "unknown";
  }
}

export interface StandInStats {
  logins: number[];
  agents: number;
  checksum_mismatch: number;
  refused: number;
  auth_failures: number;
}

/** The hosts a run goes to, whichever kind. */
export interface Endpoint {
  kind: Kind;
  fleet: Fleet;
  /** Stand-in only: what its hosts saw since the last call. */
  stats(): Promise<StandInStats | null>;
  /** Real sshd only: the summed PSS of every process of the hosts (listeners, sessions, sudo, agents), KiB. */
  hostsPssKb(): number | null;
  stop(): Promise<void>;
}

/**
 * Time the process spent runnable, waiting for a CPU (/proc/PID/schedstat, second field), in ms: the
 * part of its event-loop delay that the machine's other work, not the controller, caused.
 */
function runQueueWaitMs(pid: number): number | null {
  try {
    const waited = Number(readFileSync(`/proc/${pid}/schedstat`, "latin1").split(" ")[1]);
    return Number.isFinite(waited) ? waited / 1e6 : null;
  } catch {
    return null;
  }
}

/** Proportional set size: shared pages (sshd's and bash's code, libraries) split among their users. */
function pssKbOf(pid: number): number {
  try {
    return Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "latin1"))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/**
 * A Fleet as rlvmFleetRunner and writeInventory use it (hosts, login user, key, known_hosts); what
 * only sshd hosts can do (restart, replace keys, run commands) is not there.
 */
function standInFleet(
  dir: string,
  hosts: FleetHost[],
  loginUser: string,
  asRoot: boolean,
  clientKey: KeyPair,
  knownHostsFile: string,
): Fleet {
  const notHere = (what: string) => () => {
    throw new Error(`${what}: not on ${STAND_IN}`);
  };
  return {
    id: `stand-in-${process.pid}`,
    mode: asRoot ? "root" : "user",
    dir,
    hosts,
    loginUser,
    passwordUser: undefined,
    sudoPassword: undefined,
    clientKey,
    knownHostsFile,
    host(name) {
      const host = hosts.find((h) => h.name === name);
      if (host === undefined) throw new Error(`no stand-in host ${name}`);
      return host;
    },
    createKey: notHere("createKey"),
    createWrongKey: notHere("createWrongKey"),
    createPassphraseKey: notHere("createPassphraseKey"),
    writeKnownHosts: notHere("writeKnownHosts"),
    stopHost: notHere("stopHost"),
    killSshd: notHere("killSshd"),
    startHost: notHere("startHost"),
    replaceHostKey: notHere("replaceHostKey"),
    sshArgs: notHere("sshArgs"),
    sshExec: notHere("sshExec"),
    processIds: () => [],
    stop: () => Promise.resolve(),
  };
}

/** Starts the stand-in process for n hosts (in its own CPU group, when there is one). */
export async function startStandIn(
  ctx: BenchContext,
  dir: string,
  n: number,
  cpu: CpuGroup | null,
): Promise<Endpoint> {
  mkdirSync(dir, { recursive: true });
  const hostKey = await generateEd25519Key(join(dir, "stand_in_host_key"), { comment: "stand-in" });
  const clientKey = await generateEd25519Key(join(dir, "client_key"), { comment: "bench-client" });
  const loginUser = ctx.asRoot ? "rlvmtest" : userInfo().username;
  const specFile = join(dir, "stand-in.json");
  writeFileSync(
    specFile,
    JSON.stringify({
      count: n,
      hostKeyPath: hostKey.privateKeyPath,
      authorizedKey: clientKey.publicKey,
      user: loginUser,
    }),
  );
  const env = { ...process.env };
  delete env["NODE_OPTIONS"];
  // Through tsx, as the bench itself runs: its start-up is outside every timed run.
  const child: ChildProcessWithoutNullStreams = spawn(
    process.execPath,
    ["--import", "tsx", join(ctx.repoRoot, "bench/stand-in-host.ts"), specFile],
    { cwd: ctx.repoRoot, env, stdio: ["pipe", "pipe", "pipe"] },
  );
  if (child.pid !== undefined) cpu?.add(child.pid);
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const lines = createInterface({ input: child.stdout });
  const waiting: ((line: string) => void)[] = [];
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  void exited.then(() => {
    for (const w of waiting.splice(0)) w("");
  });
  lines.on("line", (line) => waiting.shift()?.(line));
  const nextLine = () => new Promise<string>((resolve) => waiting.push(resolve));
  const first = await nextLine();
  if (first === "") throw new Error(`the stand-in process exited before listening: ${stderr}`);
  const listening = (JSON.parse(first) as { hosts: { address: string; port: number }[] }).hosts;
  const hosts: FleetHost[] = listening.map(({ address, port }, i) => ({
    name: `host${i + 1}`,
    address,
    port,
    hostKeyPub: hostKey.publicKey,
    hostKeyFingerprint: hostKey.fingerprint,
    knownHostsLine: `[${address}]:${port} ${hostKey.publicKey}`,
    logFile: "/dev/null",
    pid: child.pid,
    running: true,
  }));
  const knownHostsFile = join(dir, "known_hosts");
  writeFileSync(knownHostsFile, hosts.map((h) => `${h.knownHostsLine}\n`).join(""));
  return {
    kind: "stand-in",
    fleet: standInFleet(dir, hosts, loginUser, ctx.asRoot, clientKey, knownHostsFile),
    async stats() {
      const answer = nextLine();
      child.stdin.write("stats\n");
      const line = await answer;
      if (line === "") throw new Error(`the stand-in process exited: ${stderr}`);
      return JSON.parse(line) as StandInStats;
    },
    hostsPssKb: () => null,
    async stop() {
      child.stdin.end();
      const killer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

async function startSshd(n: number): Promise<Endpoint> {
  const fleet = await startFleet({ hosts: n, startTimeoutMs: 60_000 });
  return {
    kind: "sshd",
    fleet,
    stats: () => Promise.resolve(null),
    hostsPssKb: () => fleet.processIds().reduce((sum, pid) => sum + pssKbOf(pid), 0),
    async stop() {
      await fleet.stop();
    },
  };
}

interface ScaleRecord {
  n: number;
  kind: Kind;
  wallMs: number;
  cpuMs: number;
  hwmKb: number;
  fds: number;
  loopMaxMs: number;
  loopP99Ms: number;
  /** Time the controller waited for a CPU while runnable (NaN when unknown). */
  waitedMs: number;
  notOk: number;
  /** Error code → hosts, over the run's report. */
  codes: Record<string, number>;
}

interface HostReport {
  summary: { ok: number; hosts: number };
  hosts: { name: string; status: string; error: { code: string; message: string } | null }[];
}

const sec = (ms: number) => (ms / 1000).toFixed(2);

export const scaleDimension: Dimension = async (ctx): Promise<DimensionResult> => {
  const standInSizes = envNumbers("BENCH_SCALE_SIZES", [200, 1000], 1);
  const sshdSizes = envNumbers("BENCH_SCALE_REAL", [], 1);
  const repeats = envCount("BENCH_REPEATS", 3);
  const warmup = envCount("BENCH_WARMUP", 1);
  const work = join(ctx.work, "scale");
  mkdirSync(work, { recursive: true });
  const controllerCpu = createCpuGroup(`rlvm-fleet-bench-${process.pid}-scale-controller`);
  const standInCpu =
    controllerCpu === null ? null : createCpuGroup(`rlvm-fleet-bench-${process.pid}-scale-stand-in`);
  if (controllerCpu === null) ctx.log("scale: no cgroup CPU accounting here: the CPU column stays empty");
  const records: ScaleRecord[] = [];
  const failures: string[] = [];
  const notes: string[] = [];
  const limit = openFilesLimit();
  const plan: { n: number; kind: Kind }[] = [
    ...standInSizes.map((n) => ({ n, kind: "stand-in" as const })),
    ...sshdSizes.map((n) => ({ n, kind: "sshd" as const })),
  ];
  try {
    for (const { n, kind } of plan) {
      const dir = join(work, `${kind}-${n}`);
      mkdirSync(dir, { recursive: true });
      ctx.log(`scale: starting ${n} ${kind === "stand-in" ? STAND_IN : "loopback sshd hosts"}`);
      let endpoint: Endpoint;
      const startedAt = Date.now();
      try {
        endpoint = kind === "stand-in" ? await startStandIn(ctx, dir, n, standInCpu) : await startSshd(n);
      } catch (error) {
        const why = (error as Error).message.split("\n").slice(0, 3).join(" ");
        failures.push(`${n} ${kind} hosts did not start: ${why}`);
        notes.push(`${n} real sshd hosts did not start on this machine: ${why}`);
        continue;
      }
      ctx.log(`scale: ${n} ${kind} hosts listen (${sec(Date.now() - startedAt)} s)`);
      const standInBefore = standInCpu?.usageMs() ?? NaN;
      try {
        const runner = rlvmFleetRunner(runnerContext(ctx, endpoint.fleet, dir));
        await endpoint.stats();
        const idleKb = endpoint.hostsPssKb() ?? 0;
        for (let round = 0; round < warmup + repeats; round++) {
          const timed = round >= warmup;
          const runDir = join(dir, `run-${round + 1}`);
          mkdirSync(runDir);
          const setup = runner.prepare(runDir);
          const stdoutFile = join(runDir, "stdout");
          const stderrFile = join(runDir, "stderr");
          const loopFile = join(runDir, "event-loop.json");
          const env: NodeJS.ProcessEnv = { ...process.env, [EVENT_LOOP_STATS_ENV]: loopFile };
          // As run.ts's runners: the fleet's key file alone, no loader.
          delete env["SSH_AUTH_SOCK"];
          delete env["NODE_OPTIONS"];
          const before = controllerCpu?.usageMs() ?? NaN;
          // Real sshd: what the hosts' side holds in memory at its peak (what limits how many fit).
          let hostsPeakKb = 0;
          // How long the controller was ready to run but had no CPU (its last sample before it exited).
          let waitedMs = NaN;
          let waitSampler: NodeJS.Timeout | undefined;
          const hostsSampler =
            endpoint.hostsPssKb() === null
              ? undefined
              : setInterval(() => (hostsPeakKb = Math.max(hostsPeakKb, endpoint.hostsPssKb() ?? 0)), 500);
          const measured = await measureCommand(setup.argv, {
            cwd: runDir,
            env,
            stdoutFile,
            stderrFile,
            timeoutMs: RUN_TIMEOUT_MS,
            countFds: true,
            onSpawn: (pid) => {
              controllerCpu?.add(pid);
              waitSampler = setInterval(() => (waitedMs = runQueueWaitMs(pid) ?? waitedMs), 100);
            },
          });
          const cpuMs = (controllerCpu?.usageMs() ?? NaN) - before;
          clearInterval(hostsSampler);
          clearInterval(waitSampler);
          if (hostsSampler !== undefined && timed)
            notes.push(
              `${n} sshd hosts, run ${round + 1}: the hosts' processes peaked at ${(hostsPeakKb / 1024).toFixed(0)} MB (PSS) together (${(hostsPeakKb / 1024 / n).toFixed(1)} MB per host) while the run went on, with ${(idleKb / 1024).toFixed(0)} MB for the ${n} idle listeners (${(idleKb / 1024 / n).toFixed(1)} MB each)`,
            );
          let error: string | null = null;
          try {
            setup.verify(measured.code, stdoutFile, stderrFile);
          } catch (e) {
            error = (e as Error).message;
          }
          const reportFile = join(runDir, "report.json");
          const report = existsSync(reportFile)
            ? (JSON.parse(readFileSync(reportFile, "utf8")) as HostReport)
            : null;
          const codes: Record<string, number> = {};
          for (const host of report?.hosts ?? [])
            if (host.status !== "ok") {
              const code = host.error?.code ?? host.status;
              const limited = CONTROLLER_LIMIT.test(host.error?.message ?? "") ? " (controller limit?)" : "";
              codes[`${code}${limited}`] = (codes[`${code}${limited}`] ?? 0) + 1;
            }
          const notOk = report === null ? n : report.hosts.filter((h) => h.status !== "ok").length;
          const loop = existsSync(loopFile)
            ? (JSON.parse(readFileSync(loopFile, "utf8")) as { max_ms: number; p99_ms: number })
            : { max_ms: NaN, p99_ms: NaN };
          const seen = await endpoint.stats();
          if (seen !== null) {
            const lo = Math.min(...seen.logins);
            const hi = Math.max(...seen.logins);
            if (lo !== 1 || hi !== 1)
              failures.push(`${n} ${kind} hosts, run ${round + 1}: ${lo}–${hi} logins per host, not 1`);
            if (seen.agents !== n)
              failures.push(`${n} ${kind} hosts, run ${round + 1}: ${seen.agents} agents answered, not ${n}`);
            if (seen.checksum_mismatch > 0 || seen.refused > 0 || seen.auth_failures > 0)
              failures.push(
                `${n} ${kind} hosts, run ${round + 1}: ${seen.checksum_mismatch} agent sha256 mismatches, ${seen.refused} commands refused, ${seen.auth_failures} failed logins`,
              );
          }
          const what =
            `${sec(measured.wallMs)} s  cpu ${Number.isNaN(cpuMs) ? "–" : `${(cpuMs / n).toFixed(2)} ms/host`}` +
            `  peak ${(measured.maxProcessHwmKb / 1024).toFixed(0)} MB  fds ${measured.maxFds}` +
            `  loop max ${loop.max_ms.toFixed(0)} ms p99 ${loop.p99_ms.toFixed(0)} ms  waited ${sec(waitedMs)} s  not ok ${notOk}`;
          const tag = `scale: ${String(n).padStart(4)} ${kind.padEnd(8)} run ${round + 1}`;
          if (error !== null) {
            failures.push(`${n} ${kind} hosts, run ${round + 1}: ${error}`);
            ctx.log(`${tag} FAILED after ${what}: ${error.slice(0, 500)}`);
          } else ctx.log(`${tag} ${timed ? "" : "(warm-up) "}${what}`);
          if (timed)
            records.push({
              n,
              kind,
              wallMs: measured.wallMs,
              cpuMs,
              hwmKb: measured.maxProcessHwmKb,
              fds: measured.maxFds,
              loopMaxMs: loop.max_ms,
              loopP99Ms: loop.p99_ms,
              waitedMs,
              notOk,
              codes,
            });
          rmSync(runDir, { recursive: true, force: true });
          // Let the last run's connections (and, on sshd, its sessions) end before the next one starts.
          const settleBy = Date.now() + 20_000;
          while (endpoint.fleet.processIds().length > n && Date.now() < settleBy)
            await new Promise((r) => setTimeout(r, 100));
          await new Promise((r) => setTimeout(r, 500));
        }
      } finally {
        await endpoint.stop();
        if (kind === "stand-in" && standInCpu !== null) {
          const used = standInCpu.usageMs() - standInBefore;
          notes.push(
            `the ${STAND_IN} process for ${n} hosts used ${sec(used)} s of CPU over all ${warmup + repeats} runs (not counted as the controller's)`,
          );
        }
        rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    controllerCpu?.remove();
    standInCpu?.remove();
  }
  return {
    title: `Scale: rlvm-fleet ping with every host at once, up to ${Math.max(0, ...plan.map((p) => p.n))} hosts`,
    table: scaleTable(records),
    goals: scaleGoals(records),
    method: methodText({ repeats, warmup, limit, notes }),
    failures,
  };
};

interface ScaleSummary {
  n: number;
  kind: Kind;
  runs: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
  cpuMsPerHost: number;
  hwmMb: number;
  fds: number;
  loopMaxMs: number;
  loopP99Ms: number;
  waitedMs: number;
  notOk: number;
  codes: Record<string, number>;
}

function summarizeScale(records: readonly ScaleRecord[]): ScaleSummary[] {
  const keys = [...new Set(records.map((r) => `${r.kind} ${r.n}`))];
  return keys
    .map((key) => {
      const runs = records.filter((r) => `${r.kind} ${r.n}` === key);
      const first = runs[0] as ScaleRecord;
      const walls = runs.map((r) => r.wallMs);
      const codes: Record<string, number> = {};
      for (const r of runs)
        for (const [code, count] of Object.entries(r.codes)) codes[code] = (codes[code] ?? 0) + count;
      return {
        n: first.n,
        kind: first.kind,
        runs: runs.length,
        medianMs: median(walls),
        minMs: Math.min(...walls),
        maxMs: Math.max(...walls),
        cpuMsPerHost: median(runs.map((r) => r.cpuMs)) / first.n,
        hwmMb: Math.max(...runs.map((r) => r.hwmKb)) / 1024,
        fds: Math.max(...runs.map((r) => r.fds)),
        loopMaxMs: Math.max(...runs.map((r) => r.loopMaxMs)),
        loopP99Ms: Math.max(...runs.map((r) => r.loopP99Ms)),
        waitedMs: median(runs.map((r) => r.waitedMs)),
        notOk: runs.reduce((sum, r) => sum + r.notOk, 0),
        codes,
      };
    })
    .sort((a, b) => Number(a.kind === "sshd") - Number(b.kind === "sshd") || a.n - b.n);
}

const label = (kind: Kind) => (kind === "stand-in" ? STAND_IN : "loopback sshd");
const num = (x: number, digits: number) => (Number.isNaN(x) ? "–" : x.toFixed(digits));

export function scaleTable(records: readonly ScaleRecord[]): string {
  const rows = [
    "| hosts | endpoint | runs | median wall s | min–max s | wall growth | controller CPU ms per host | peak RSS MB | peak open fds | event-loop delay max / p99 ms | waited for a CPU s | hosts not ok |",
    "| ---: | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |",
  ];
  const summaries = summarizeScale(records);
  for (const x of summaries) {
    const base = summaries.find((s) => s.kind === x.kind);
    const growth =
      base === undefined || base.n === x.n
        ? "baseline"
        : `${(x.medianMs / base.medianMs).toFixed(2)}× for ${(x.n / base.n).toFixed(x.n % base.n === 0 ? 0 : 1)}× the hosts`;
    const codes = Object.entries(x.codes)
      .map(([code, count]) => `${count} ${code}`)
      .join(", ");
    rows.push(
      `| ${x.n} | ${label(x.kind)} | ${x.runs} | ${sec(x.medianMs)} | ${sec(x.minMs)}–${sec(x.maxMs)} | ${growth} | ${num(x.cpuMsPerHost, 2)} | ${x.hwmMb.toFixed(0)} | ${x.fds} | ${num(x.loopMaxMs, 0)} / ${num(x.loopP99Ms, 0)} | ${num(x.waitedMs / 1000, 2)} | ${x.notOk}${codes === "" ? "" : ` (${codes})`} |`,
    );
  }
  return rows.join("\n");
}

export function scaleGoals(records: readonly ScaleRecord[]): Goal[] {
  const summaries = summarizeScale(records);
  const at = (n: number) => summaries.find((s) => s.kind === "stand-in" && s.n === n);
  const big = at(1000);
  const small = at(200);
  const where = `1,000 ${STAND_IN}`;
  const goals: Goal[] = [];
  const rss = "1,000 hosts: controller peak RSS ≤ 300 MB";
  goals.push(
    big === undefined
      ? { goal: rss, verdict: "not measured", detail: "" }
      : {
          goal: rss,
          verdict: big.hwmMb <= 300 ? "met" : "missed",
          detail: `${big.hwmMb.toFixed(0)} MB (VmHWM of the rlvm-fleet process, highest of ${big.runs} runs, on ${where})`,
        },
  );
  const growth = "200 → 1,000 hosts: wall time grows no worse than linearly (≤ 5×)";
  if (big !== undefined && small !== undefined) {
    const ratio = big.medianMs / small.medianMs;
    goals.push({
      goal: growth,
      verdict: ratio <= 5 ? "met" : "missed",
      detail: `${sec(small.medianMs)} s → ${sec(big.medianMs)} s = ${ratio.toFixed(2)}× for 5× the hosts (medians, on ${STAND_IN})`,
    });
  } else goals.push({ goal: growth, verdict: "not measured", detail: "" });
  const fails = "1,000 hosts: no host fails from controller-side limits";
  if (big !== undefined) {
    const codes = Object.entries(big.codes)
      .map(([code, count]) => `${count} ${code}`)
      .join(", ");
    goals.push({
      goal: fails,
      verdict: big.notOk === 0 ? "met" : "missed",
      detail:
        big.notOk === 0
          ? `every host ok in all ${big.runs} runs; at most ${big.fds} open fds, event loop at worst ${num(big.loopMaxMs, 0)} ms late (p99 ${num(big.loopP99Ms, 0)} ms), on ${where}`
          : `${big.notOk} host results not ok over ${big.runs} runs: ${codes}`,
    });
  } else goals.push({ goal: fails, verdict: "not measured", detail: "" });
  const cpu = "controller CPU per host ≤ 5 ms";
  goals.push(
    big === undefined || Number.isNaN(big.cpuMsPerHost)
      ? { goal: cpu, verdict: "not measured", detail: "" }
      : {
          goal: cpu,
          verdict: big.cpuMsPerHost <= 5 ? "met" : "missed",
          detail: `${big.cpuMsPerHost.toFixed(2)} ms per host at 1,000 hosts (median of ${big.runs} runs; on ${STAND_IN}, so the controller's own work: SSH handshake, agent upload, events, report)`,
        },
  );
  return goals;
}

function methodText(options: { repeats: number; warmup: number; limit: string; notes: string[] }): string {
  return [
    "`rlvm-fleet ping --forks N`, every host at once, as bench/runners.ts's rlvmFleetRunner runs it (become =",
    `sudo when the bench runs as root), ${options.repeats} timed rounds per size after ${options.warmup} untimed.`,
    `The hosts are ${STAND_IN}: bench/stand-in-host.ts, one Node process with ssh2's Server API listening on one`,
    "loopback address per host (127.1.x.y) with one ed25519 host key, which the controller verifies against",
    "known_hosts, logging in only the fleet's client key (its signature checked). It answers the bootstrap as a",
    "real host does: the ready line, the agent's bytes read to their length and their sha256 checked (a mismatch",
    "exits 98 and fails the host), the plan read to `end`, then the agent's ping events (agent_start with the",
    "uploaded agent's version, result pong). It runs no sudo, bash or agent, so the hosts' own work (about 80 ms",
    "of CPU per host with sshd, README Performance) is not in these wall times: they are the controller's. It",
    "runs outside the controller's process tree and CPU group; every run checks that each stand-in host saw",
    "exactly one login and no sha256 mismatch. Loopback sshd rows (BENCH_SCALE_REAL) use the harness's startFleet",
    "instead, and add the hosts' memory: the PSS of every host process, sampled every 500 ms.",
    "Wall time: spawn to exit. CPU: the kernel's cgroup accounting of the controller. Peak RSS: its VmHWM. Open",
    "fds: /proc/PID/fd counted every 100 ms, the highest. Event-loop delay: RLVM_FLEET_EVENT_LOOP_STATS",
    "(src/cli/event-loop-stats.ts; Node's monitorEventLoopDelay, a 10 ms timer, how late it fired), worst and",
    "99th percentile of the worst run, from start-up (loading the inventory) to exit. It is wall-clock lateness,",
    "so it includes time the controller was runnable but had no CPU on this shared 2-core machine: `waited for a",
    "CPU` is that time (/proc/PID/schedstat), median over runs. Hosts not ok: from the report, with their error",
    `codes. The controller's open-files limit (inherited from the bench): ${options.limit}.`,
    ...options.notes.map((note) => `- ${note}`),
  ].join("\n");
}
