// What every dimension that runs tools against a real loopback fleet needs around each run: the hosts'
// sshd logins counted, the fleet settled between runs, the runners' environment, and what a run left
// on the hosts.
import { existsSync, readdirSync, statSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import type { Fleet } from "../test/integration/harness/fleet.js";
import type { CpuGroup } from "./cpu.js";
import { measureCommand, type Measured } from "./measure.js";

export function logSizes(fleet: Fleet): number[] {
  return fleet.hosts.map((h) => {
    try {
      return statSync(h.logFile).size;
    } catch {
      return 0;
    }
  });
}

/** What each host's sshd logged since the offsets. */
export async function logsSince(fleet: Fleet, offsets: readonly number[]): Promise<string[]> {
  return Promise.all(
    fleet.hosts.map(async (host, i) => {
      const handle = await open(host.logFile, "r");
      try {
        const { size } = await handle.stat();
        const from = offsets[i] ?? 0;
        const buffer = Buffer.alloc(Math.max(0, size - from));
        await handle.read(buffer, 0, buffer.length, from);
        return buffer.toString("utf8");
      } finally {
        await handle.close();
      }
    }),
  );
}

/** "Accepted publickey" lines each host's sshd logged since the offsets. */
export async function loginsSince(fleet: Fleet, offsets: readonly number[]): Promise<number[]> {
  return (await logsSince(fleet, offsets)).map((text) => text.split("Accepted publickey").length - 1);
}

/** Wait until only the listening sshds are left (the last run's sessions have ended). */
export async function settle(fleet: Fleet): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (fleet.processIds().length > fleet.hosts.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 300));
}

export function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  // Every runner authenticates with the fleet's key file alone, and the floor runs without a loader.
  delete env["SSH_AUTH_SOCK"];
  delete env["NODE_OPTIONS"];
  return env;
}

export function payloadDirs(): string[] {
  return readdirSync("/tmp")
    .filter((d) => d.startsWith("rlvm-bench."))
    .map((d) => `/tmp/${d}`);
}

/**
 * What is left on the "hosts" of the runs: rlvm-fleet's run directories, the payload's temp dirs
 * (but those that were there before, `payloadDirsBefore`: another bench's).
 */
export function leftovers(
  runIds: readonly string[],
  payloadDirsBefore: ReadonlySet<string> = new Set(),
): string[] {
  const runDirs = existsSync("/run/rlvm-fleet")
    ? readdirSync("/run/rlvm-fleet")
        .filter((d) => runIds.some((id) => d.startsWith(`${id}.`)))
        .map((d) => `/run/rlvm-fleet/${d}`)
    : [];
  return [...runDirs, ...payloadDirs().filter((d) => !payloadDirsBefore.has(d))];
}

export interface MeasuredRun {
  measured: Measured;
  /** CPU time of the runner's process tree during the run (NaN without cgroup accounting). */
  controllerMs: number;
  stdoutFile: string;
  stderrFile: string;
}

/**
 * Runs a runner's command once in runDir, timed and measured (measure.ts), its process tree in the
 * controller's CPU group; stdout and stderr go to files there.
 */
export async function measureRun(
  setup: { argv: string[]; env?: NodeJS.ProcessEnv; stdinFile?: string },
  runDir: string,
  controllerCpu: CpuGroup | null,
  options: { timeoutMs: number; countFds?: boolean; onSpawn?: (pid: number) => void },
): Promise<MeasuredRun> {
  const stdoutFile = join(runDir, "stdout");
  const stderrFile = join(runDir, "stderr");
  const before = controllerCpu?.usageMs() ?? NaN;
  const measured = await measureCommand(setup.argv, {
    cwd: runDir,
    env: setup.env ?? childEnv(),
    ...(setup.stdinFile === undefined ? {} : { stdinFile: setup.stdinFile }),
    stdoutFile,
    stderrFile,
    timeoutMs: options.timeoutMs,
    ...(options.countFds === true ? { countFds: true } : {}),
    onSpawn: (pid) => {
      controllerCpu?.add(pid);
      options.onSpawn?.(pid);
    },
  });
  return { measured, controllerMs: (controllerCpu?.usageMs() ?? NaN) - before, stdoutFile, stderrFile };
}
