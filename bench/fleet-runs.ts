// What every dimension that runs tools against a real loopback fleet needs around each run: the hosts'
// sshd logins counted, the fleet settled between runs, the runners' environment, and what a run left
// on the hosts.
import { existsSync, readdirSync, statSync } from "node:fs";
import { open } from "node:fs/promises";
import type { Fleet } from "../test/integration/harness/fleet.js";

export function logSizes(fleet: Fleet): number[] {
  return fleet.hosts.map((h) => {
    try {
      return statSync(h.logFile).size;
    } catch {
      return 0;
    }
  });
}

/** "Accepted publickey" lines each host's sshd logged since the offsets. */
export async function loginsSince(fleet: Fleet, offsets: readonly number[]): Promise<number[]> {
  return Promise.all(
    fleet.hosts.map(async (host, i) => {
      const handle = await open(host.logFile, "r");
      try {
        const { size } = await handle.stat();
        const length = Math.max(0, size - (offsets[i] ?? 0));
        const buffer = Buffer.alloc(length);
        await handle.read(buffer, 0, length, offsets[i] ?? 0);
        return buffer
          .toString("utf8")
          .split("\n")
          .filter((l) => l.includes("Accepted publickey")).length;
      } finally {
        await handle.close();
      }
    }),
  );
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

/** What is left on the "hosts" of the runs: rlvm-fleet's run directories, the payload's temp dirs. */
export function leftovers(runIds: readonly string[]): string[] {
  const runDirs = existsSync("/run/rlvm-fleet")
    ? readdirSync("/run/rlvm-fleet")
        .filter((d) => runIds.some((id) => d.startsWith(`${id}.`)))
        .map((d) => `/run/rlvm-fleet/${d}`)
    : [];
  const payloadDirs = readdirSync("/tmp")
    .filter((d) => d.startsWith("rlvm-bench."))
    .map((d) => `/tmp/${d}`);
  return [...runDirs, ...payloadDirs];
}
