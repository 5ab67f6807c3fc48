// Runs detached from the test process (plain JavaScript: Node 20 cannot run TypeScript). The test process
// keeps a pipe to its stdin open and sends one JSON line per change: {"id","dir","pids"} with the fleet's
// listening sshd pids, or {"id","done":true} once the fleet is stopped. When the pipe closes while fleets
// are still registered, the test process died without cleaning up (e.g. SIGKILL, which skips 'exit'
// handlers): kill those fleets' sshds with everything below them, and remove their directories.
import { readFileSync, readdirSync, rmSync } from "node:fs";
import process from "node:process";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";

const fleets = new Map();

function readStat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0], ppid: Number(fields[1]) };
  } catch {
    return undefined;
  }
}

function isAlive(pid) {
  const stat = readStat(pid);
  return stat !== undefined && stat.state !== "Z" && stat.state !== "X";
}

function isSshd(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "latin1").includes("sshd");
  } catch {
    return false;
  }
}

function allPids() {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number);
}

function descendants(roots) {
  const children = new Map();
  for (const pid of allPids()) {
    const stat = readStat(pid);
    if (stat === undefined) continue;
    children.set(stat.ppid, [...(children.get(stat.ppid) ?? []), pid]);
  }
  const seen = new Set(roots);
  const queue = [...roots];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()) ?? []) {
      if (!seen.has(child)) {
        seen.add(child);
        queue.push(child);
      }
    }
  }
  return [...seen];
}

function withMarker(id) {
  const marker = `RLVM_FLEET_ID=${id}`;
  return allPids().filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/environ`, "latin1").split("\0").includes(marker);
    } catch {
      return false;
    }
  });
}

function signal(pids, name) {
  for (const pid of pids) {
    try {
      process.kill(pid, name);
    } catch {
      // Gone already.
    }
  }
}

async function cleanUp() {
  const targets = new Set();
  const collect = () => {
    for (const fleet of fleets.values()) {
      // A recorded pid that is no longer an sshd has been reused by an unrelated process.
      const roots = fleet.pids.filter((pid) => isAlive(pid) && isSshd(pid));
      for (const pid of [...descendants([...roots, ...targets]), ...withMarker(fleet.id)]) targets.add(pid);
    }
    return [...targets].filter(isAlive);
  };
  // SIGTERM first: sudo passes it on to its command, which a SIGKILLed sudo would leave orphaned.
  signal(collect(), "SIGTERM");
  for (let waited = 0; waited < 1000 && collect().length > 0; waited += 50) await sleep(50);
  for (let attempt = 0; attempt < 20 && collect().length > 0; attempt++) {
    signal(collect(), "SIGKILL");
    await sleep(50);
  }
  for (const fleet of fleets.values()) {
    if (!fleet.keepDir) rmSync(fleet.dir, { recursive: true, force: true });
  }
}

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  try {
    const message = JSON.parse(line);
    if (message.done) fleets.delete(message.id);
    else fleets.set(message.id, message);
  } catch {
    // Ignore garbage rather than die and leave the fleets unguarded.
  }
});
lines.on("close", () => {
  cleanUp().finally(() => process.exit(0));
});
