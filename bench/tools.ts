// The tools the bench compares against, installed from Debian's packages when missing (as root), and
// the versions and machine facts the results quote.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { findExecutable } from "../test/integration/harness/prerequisites.js";

export interface Tools {
  ssh: string;
  ansiblePlaybook?: string;
  parallelSsh?: string;
  /** Why a runner is skipped, per runner. */
  skipped: { ansible?: string; "parallel-ssh"?: string };
}

// Debian's names: ansible-core brings ansible-playbook and the builtin `script` module (the `ansible`
// package adds the community collections, which the bench does not need); pssh brings parallel-ssh.
const PACKAGES = { ansiblePlaybook: "ansible-core", parallelSsh: "pssh" } as const;
const BINARIES = { ansiblePlaybook: "ansible-playbook", parallelSsh: "parallel-ssh" } as const;

function run(command: string, args: string[]): { code: number | null; out: string } {
  const result = spawnSync(command, args, {
    encoding: "utf8",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
  return { code: result.status, out: `${result.stdout ?? ""}${result.stderr ?? ""}` };
}

function aptCandidate(pkg: string): boolean {
  const policy = run("apt-cache", ["policy", pkg]).out;
  const candidate = /Candidate:\s*(\S+)/.exec(policy)?.[1];
  return candidate !== undefined && candidate !== "(none)";
}

export function ensureTools(log: (line: string) => void): Tools {
  const ssh = findExecutable("ssh");
  if (ssh === undefined) throw new Error("ssh not found: apt-get install openssh-client");
  const tools: Tools = { ssh, skipped: {} };
  const missing = (Object.keys(BINARIES) as (keyof typeof BINARIES)[]).filter(
    (key) => findExecutable(BINARIES[key]) === undefined,
  );
  const isRoot = process.getuid?.() === 0;
  if (missing.length > 0 && isRoot && findExecutable("apt-get") !== undefined) {
    const packages = missing.map((key) => PACKAGES[key]);
    if (!packages.every(aptCandidate)) {
      log("apt-get update (to find " + packages.join(", ") + ")");
      run("apt-get", ["update", "-qq"]);
    }
    log(`installing ${packages.join(" ")} from Debian's packages`);
    const installed = run("apt-get", [
      "install",
      "-y",
      "-qq",
      "--no-install-recommends",
      // Other work on this machine may hold dpkg's lock for a while.
      "-o",
      "DPkg::Lock::Timeout=600",
      ...packages,
    ]);
    if (installed.code !== 0)
      log(`apt-get install failed:\n${installed.out.trim().split("\n").slice(-5).join("\n")}`);
  }
  const ansible = findExecutable(BINARIES.ansiblePlaybook);
  const pssh = findExecutable(BINARIES.parallelSsh);
  if (ansible !== undefined) tools.ansiblePlaybook = ansible;
  else
    tools.skipped.ansible = `ansible-playbook not found: install it with \`sudo apt-get install ansible-core\` (Debian/Ubuntu) or \`pipx install ansible-core\``;
  if (pssh !== undefined) tools.parallelSsh = pssh;
  else tools.skipped["parallel-ssh"] = "parallel-ssh not found: install it with `sudo apt-get install pssh`";
  return tools;
}

function firstLine(text: string): string {
  return text.trim().split("\n")[0]?.trim() ?? "";
}

export interface MachineFacts {
  date: string;
  cpus: number;
  cpuModel: string;
  kernel: string;
  memoryGiB: number;
  node: string;
  openssh: string;
  restic: string;
  ansible: string;
  parallelSsh: string;
  os: string;
  loadAverage: string;
}

export function machineFacts(tools: Tools): MachineFacts {
  const cpuinfo = (() => {
    try {
      return readFileSync("/proc/cpuinfo", "utf8");
    } catch {
      return "";
    }
  })();
  const meminfo = (() => {
    try {
      return readFileSync("/proc/meminfo", "utf8");
    } catch {
      return "";
    }
  })();
  const osRelease = (() => {
    try {
      return /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync("/etc/os-release", "utf8"))?.[1] ?? "";
    } catch {
      return "";
    }
  })();
  const nproc = Number(run("nproc", []).out.trim()) || cpus().length;
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    cpus: nproc,
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? "unknown",
    kernel: run("uname", ["-r"]).out.trim(),
    memoryGiB: Math.round(Number(/^MemTotal:\s+(\d+)/m.exec(meminfo)?.[1] ?? 0) / 1024 / 1024),
    node: process.version,
    openssh: firstLine(run(tools.ssh, ["-V"]).out),
    restic: firstLine(run("restic", ["version"]).out),
    ansible:
      tools.ansiblePlaybook === undefined
        ? "not installed"
        : firstLine(run(tools.ansiblePlaybook, ["--version"]).out),
    parallelSsh:
      tools.parallelSsh === undefined
        ? "not installed"
        : `parallel-ssh ${firstLine(run(tools.parallelSsh, ["--version"]).out)}`,
    os: osRelease,
    loadAverage: loadavg()
      .map((l) => l.toFixed(1))
      .join(", "),
  };
}
