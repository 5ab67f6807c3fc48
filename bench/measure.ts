// Runs one command and measures it: wall time from spawn to exit, and the memory of its process tree
// (and, when asked, the open file descriptors of its top process), sampled from /proc while it runs.
import { spawn } from "node:child_process";
import { closeSync, openSync, readdirSync, readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

export interface Measured {
  code: number | null;
  signal: NodeJS.Signals | null;
  wallMs: number;
  /** Largest sum of VmRSS over the whole process tree seen in one sample (KiB). */
  treeRssKb: number;
  /** Largest VmHWM (a process's own high-water mark) of any process of the tree (KiB). */
  maxProcessHwmKb: number;
  /** VmHWM of the top process at its last sample (KiB). */
  topHwmKb: number;
  samples: number;
  /** Most processes seen in the tree at once. */
  maxProcesses: number;
  /** Most open file descriptors of the top process in one sample (0 unless `countFds`). */
  maxFds: number;
}

export interface MeasureOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** File to feed on stdin (default: /dev/null). */
  stdinFile?: string;
  stdoutFile: string;
  stderrFile: string;
  timeoutMs: number;
  sampleEveryMs?: number;
  /** Called with the child's pid right after it is spawned (e.g. to put it in a CPU accounting group). */
  onSpawn?: (pid: number) => void;
  /** Also count the top process's open file descriptors (/proc/PID/fd) at every sample. */
  countFds?: boolean;
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, "latin1").trim();
      if (text !== "") for (const child of text.split(" ")) out.push(Number(child));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

/** VmRSS and VmHWM in KiB, or null when the process is gone (or a zombie, which has neither). */
function memoryOf(pid: number): { rss: number; hwm: number } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, "latin1");
  } catch {
    return null;
  }
  const rss = /^VmRSS:\s+(\d+) kB/m.exec(text);
  const hwm = /^VmHWM:\s+(\d+) kB/m.exec(text);
  if (rss === null || hwm === null) return null;
  return { rss: Number(rss[1]), hwm: Number(hwm[1]) };
}

/** Entries of /proc/PID/fd, or 0 when the process is gone. */
function openFdsOf(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

export function measureCommand(argv: readonly string[], options: MeasureOptions): Promise<Measured> {
  const stdin = openSync(options.stdinFile ?? "/dev/null", "r");
  const stdout = openSync(options.stdoutFile, "w");
  const stderr = openSync(options.stderrFile, "w");
  const started = performance.now();
  const child = spawn(argv[0] as string, argv.slice(1), {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: [stdin, stdout, stderr],
  });
  if (child.pid !== undefined) options.onSpawn?.(child.pid);
  closeSync(stdin);
  closeSync(stdout);
  closeSync(stderr);
  const result: Measured = {
    code: null,
    signal: null,
    wallMs: 0,
    treeRssKb: 0,
    maxProcessHwmKb: 0,
    topHwmKb: 0,
    samples: 0,
    maxProcesses: 0,
    maxFds: 0,
  };
  const sample = () => {
    const top = child.pid;
    if (top === undefined) return;
    let total = 0;
    let count = 0;
    const queue = [top];
    while (queue.length > 0) {
      const pid = queue.pop() as number;
      const memory = memoryOf(pid);
      if (memory !== null) {
        total += memory.rss;
        count++;
        if (memory.hwm > result.maxProcessHwmKb) result.maxProcessHwmKb = memory.hwm;
        if (pid === top) result.topHwmKb = memory.hwm;
      }
      queue.push(...childrenOf(pid));
    }
    if (options.countFds === true) result.maxFds = Math.max(result.maxFds, openFdsOf(top));
    result.samples++;
    if (total > result.treeRssKb) result.treeRssKb = total;
    if (count > result.maxProcesses) result.maxProcesses = count;
  };
  const sampler = setInterval(sample, options.sampleEveryMs ?? 100);
  return new Promise((resolve, reject) => {
    const killer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs);
    child.once("error", (error) => {
      clearInterval(sampler);
      clearTimeout(killer);
      reject(error);
    });
    child.once("exit", (code, signal) => {
      result.wallMs = performance.now() - started;
      clearInterval(sampler);
      clearTimeout(killer);
      result.code = code;
      result.signal = signal;
      resolve(result);
    });
  });
}
