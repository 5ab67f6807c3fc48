// CPU time of a group of processes and everything they start, from the kernel's cgroup accounting:
// the runner under test (the controller) in one group, the hosts' sshd listeners (and so every session,
// sudo and agent they fork) in another. Unlike wall time, these do not depend on what else the machine
// runs meanwhile. Needs root and a cgroup v1 `cpuacct` hierarchy or cgroup v2; otherwise null.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface CpuGroup {
  readonly path: string;
  /** Moves a process into the group; what it forks from then on is counted too. */
  add(pid: number): void;
  /** CPU time used by the group's processes so far, in milliseconds. */
  usageMs(): number;
  /** Removes the group (it must be empty by then; best effort). */
  remove(): void;
}

const V1 = "/sys/fs/cgroup/cpuacct";
const V2 = "/sys/fs/cgroup";

export function createCpuGroup(name: string): CpuGroup | null {
  try {
    if (existsSync(join(V1, "cpuacct.usage"))) {
      const path = join(V1, name);
      mkdirSync(path, { recursive: true });
      return group(path, () => Number(readFileSync(join(path, "cpuacct.usage"), "utf8")) / 1e6);
    }
    if (existsSync(join(V2, "cgroup.controllers"))) {
      const path = join(V2, name);
      mkdirSync(path, { recursive: true });
      const usage = () => {
        const line = /^usage_usec (\d+)$/m.exec(readFileSync(join(path, "cpu.stat"), "utf8"));
        return Number(line?.[1] ?? NaN) / 1e3;
      };
      if (Number.isNaN(usage())) return null;
      return group(path, usage);
    }
  } catch {
    // Not root, or no cgroup filesystem we can use.
  }
  return null;
}

function group(path: string, usageMs: () => number): CpuGroup {
  return {
    path,
    add(pid) {
      try {
        writeFileSync(join(path, "cgroup.procs"), `${pid}\n`);
      } catch {
        // Gone already: it used no CPU worth counting.
      }
    },
    usageMs,
    remove() {
      try {
        rmdirSync(path);
      } catch {
        // Still has processes (or already gone): the kernel keeps an empty group harmlessly.
      }
    },
  };
}
