import { readFileSync, readdirSync } from "node:fs";

// Everything here is synchronous on purpose: it must also work inside a process 'exit' handler.

interface ProcStat {
  pid: number;
  ppid: number;
  state: string;
}

function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name (field 2) may itself contain spaces and parentheses.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const state = fields[0];
  const ppid = Number(fields[1]);
  if (state === undefined || !Number.isInteger(ppid)) return undefined;
  return { pid, ppid, state };
}

function listPids(): number[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number);
}

/** True if the process exists and is not a zombie waiting to be reaped. */
export function isProcessAlive(pid: number): boolean {
  const stat = readProcStat(pid);
  return stat !== undefined && stat.state !== "Z" && stat.state !== "X";
}

/** All live descendants of the given processes (not including them). */
export function listDescendants(rootPids: Iterable<number>): number[] {
  const childrenByParent = new Map<number, number[]>();
  for (const pid of listPids()) {
    const stat = readProcStat(pid);
    if (stat === undefined) continue;
    const siblings = childrenByParent.get(stat.ppid) ?? [];
    siblings.push(pid);
    childrenByParent.set(stat.ppid, siblings);
  }
  const seen = new Set<number>(rootPids);
  const queue = [...seen];
  const descendants: number[] = [];
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
    for (const child of childrenByParent.get(pid) ?? []) {
      if (seen.has(child)) continue;
      seen.add(child);
      descendants.push(child);
      queue.push(child);
    }
  }
  return descendants.filter(isProcessAlive);
}

/**
 * Processes whose environment contains every one of the given NAME=value entries. sshd puts the harness's
 * SetEnv marker into every session, so this finds commands that daemonized away from the sshd process tree
 * (as long as they did not clear their environment, which sudo does by default). Environments of other
 * users' processes are unreadable when not root; those are skipped.
 */
export function listProcessesWithEnvironment(entries: readonly string[]): number[] {
  const matches: number[] = [];
  for (const pid of listPids()) {
    let environ: string;
    try {
      environ = readFileSync(`/proc/${pid}/environ`, "latin1");
    } catch {
      continue;
    }
    const variables = new Set(environ.split("\0"));
    if (entries.every((entry) => variables.has(entry)) && isProcessAlive(pid)) matches.push(pid);
  }
  return matches;
}

export function sendSignal(pids: Iterable<number>, signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone, or (user mode) not ours: nothing we can do about either.
    }
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * SIGTERM the processes and everything they spawned, SIGKILL whatever is left after graceMs.
 * Descendants are re-collected while waiting so that children forked during shutdown are not missed.
 */
export async function terminateProcesses(
  pids: readonly number[],
  options: { graceMs: number; includeDescendants?: boolean; findMore?: () => number[] },
): Promise<void> {
  const targets = new Set<number>();
  const collect = () => {
    const live = [...pids, ...targets].filter(isProcessAlive);
    const descendants = options.includeDescendants === false ? [] : listDescendants(live);
    for (const pid of [...live, ...descendants, ...(options.findMore?.() ?? [])]) targets.add(pid);
    return [...targets].filter(isProcessAlive);
  };
  const terminated = new Set<number>();
  const deadline = Date.now() + options.graceMs;
  for (;;) {
    const remaining = collect();
    if (remaining.length === 0) return;
    const newlyFound = remaining.filter((pid) => !terminated.has(pid));
    sendSignal(newlyFound, "SIGTERM");
    for (const pid of newlyFound) terminated.add(pid);
    if (Date.now() >= deadline) break;
    await sleep(50);
  }
  for (let attempt = 0; attempt < 20; attempt++) {
    const remaining = collect();
    if (remaining.length === 0) return;
    sendSignal(remaining, "SIGKILL");
    await sleep(50);
  }
  const survivors = collect();
  if (survivors.length > 0) throw new Error(`processes survived SIGKILL: ${survivors.join(", ")}`);
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Synchronous terminateProcesses for 'exit' and signal handlers, which cannot wait for timers. SIGTERM
 * comes first because sudo passes it on to its command, which a SIGKILLed sudo would leave orphaned.
 */
export function killProcessesNow(
  pids: readonly number[],
  options: { graceMs: number; findMore?: () => number[] },
) {
  const targets = new Set<number>();
  const collect = () => {
    const live = [...pids, ...targets].filter(isProcessAlive);
    for (const pid of [...live, ...listDescendants(live), ...(options.findMore?.() ?? [])]) targets.add(pid);
    return [...targets].filter(isProcessAlive);
  };
  sendSignal(collect(), "SIGTERM");
  for (let waited = 0; waited < options.graceMs && collect().length > 0; waited += 20) sleepSync(20);
  for (let attempt = 0; attempt < 10; attempt++) {
    const remaining = collect();
    if (remaining.length === 0) return;
    sendSignal(remaining, "SIGKILL");
    sleepSync(20);
  }
}
