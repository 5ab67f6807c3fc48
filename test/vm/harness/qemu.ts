// One qemu process: TCG (guests hang under this machine's KVM), serial console into a file, and killed
// with whatever started it. setpriv --pdeathsig makes the kernel SIGKILL qemu when the test process
// dies, even by SIGKILL, which skips every 'exit' handler.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { isProcessAlive } from "../../integration/harness/process-tree.js";
import { requireExecutable } from "../../integration/harness/prerequisites.js";

export interface QemuDrive {
  readonly file: string;
  readonly format: "raw" | "qcow2";
  /** Writes go to a temporary file and are discarded (qemu's snapshot=on). */
  readonly discardWrites?: boolean;
}

export interface QemuOptions {
  readonly kernel: string;
  readonly initrd: string;
  readonly append: string;
  readonly drives: readonly QemuDrive[];
  /** The serial console goes here. */
  readonly consoleLog: string;
  /** Forward 127.0.0.1:PORT to the guest's port 22; no network at all when undefined. */
  readonly sshPort?: number;
  readonly memoryMb?: number;
}

export interface Qemu {
  readonly pid: number;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  readonly running: boolean;
  /** qemu's own stderr (argument errors, a port already taken). */
  readonly stderr: () => string;
  /** The last lines of the serial console. */
  readonly consoleTail: (lines?: number) => string;
  kill(): void;
}

const live = new Set<ChildProcess>();
let exitHandlerInstalled = false;

function killAllNow(): void {
  for (const child of live) {
    if (child.pid !== undefined && isProcessAlive(child.pid)) {
      try {
        process.kill(child.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  }
}

export function startQemu(options: QemuOptions): Qemu {
  if (!exitHandlerInstalled) {
    process.on("exit", killAllNow);
    exitHandlerInstalled = true;
  }
  const args = [
    "--pdeathsig",
    "KILL",
    "--",
    requireExecutable("qemu-system-x86_64"),
    "-name",
    "rlvm-fleet-vm",
    "-nodefaults",
    "-no-user-config",
    "-accel",
    "tcg,thread=multi",
    "-cpu",
    "max",
    "-smp",
    "2",
    "-m",
    String(options.memoryMb ?? 1024),
    "-display",
    "none",
    "-monitor",
    "none",
    "-serial",
    `file:${options.consoleLog}`,
    "-no-reboot",
    "-device",
    "virtio-rng-pci",
    "-kernel",
    options.kernel,
    "-initrd",
    options.initrd,
    "-append",
    options.append,
  ];
  for (const drive of options.drives) {
    const extra = drive.discardWrites ? ",snapshot=on" : "";
    args.push(
      "-drive",
      `file=${drive.file},format=${drive.format},if=virtio,cache=unsafe,discard=unmap${extra}`,
    );
  }
  if (options.sshPort === undefined) {
    args.push("-nic", "none");
  } else {
    args.push(
      "-netdev",
      `user,id=n0,hostfwd=tcp:127.0.0.1:${options.sshPort}-:22`,
      "-device",
      "virtio-net-pci,netdev=n0",
    );
  }
  const child = spawn(requireExecutable("setpriv"), args, { stdio: ["ignore", "ignore", "pipe"] });
  live.add(child);
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-20_000)));
  let running = true;
  const exited = new Promise<number | null>((resolve) => {
    child.on("exit", (code) => {
      running = false;
      live.delete(child);
      resolve(code);
    });
    child.on("error", (error) => {
      running = false;
      live.delete(child);
      stderr += `\n${error.message}`;
      resolve(null);
    });
  });
  return {
    pid: child.pid ?? -1,
    exited,
    get running() {
      return running;
    },
    stderr: () => stderr,
    consoleTail: (lines = 40) => {
      try {
        return readFileSync(options.consoleLog, "utf8").split("\n").slice(-lines).join("\n");
      } catch {
        return "";
      }
    },
    kill: () => {
      if (running) child.kill("SIGKILL");
    },
  };
}
