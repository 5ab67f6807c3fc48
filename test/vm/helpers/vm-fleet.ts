// The VM tier's helpers: the one guest of the tier, inventories and ResticLVM configs that point at it,
// the real CLI binary run against it, and what restic and LVM say on the guest.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import type { HostResult, JobResult, Report } from "../../../src/report/report-schema.js";
import type { Guest, GuestState } from "../harness/guest.js";
import { vmLog } from "../harness/log.js";
import { waitFor } from "../../helpers/wait-for.js";

const ROOT = join(import.meta.dirname, "../../..");
const BIN = join(ROOT, "bin/rlvm-fleet.js");

let current: Guest | undefined;

export function setGuest(guest: Guest | undefined): void {
  current = guest;
}

/** The tier's guest (booted in the test file's beforeAll). */
export function guest(): Guest {
  if (current === undefined) throw new Error("the guest is not running (its boot failed: see beforeAll)");
  return current;
}

export const PASSWORD_FILE = "/etc/rlvm-test/restic-password";
/** The repositories every reset creates, under /srv/backup/ (the lv_backup LV: outside every snapshot). */
export const REPOS = ["data", "xfs", "root", "copy"] as const;
export const repo = (name: string) => `/srv/backup/${name}`;

let counter = 0;

/** A fresh local directory for one test's inventory, configs and reports. */
export function caseDir(name: string): string {
  const dir = join(guest().workDir, `${++counter}-${name.replace(/[^A-Za-z0-9._-]+/g, "-").slice(0, 60)}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

type TomlScalar = string | number | boolean;

/**
 * An inventory naming the guest once per host name (every name is an inventory host on the same
 * machine: vm1, vm2, …), each with its own config file, logging in as the guest's user with sudo.
 */
export function writeInventory(
  dir: string,
  configs: Record<string, string>,
  defaults: Record<string, TomlScalar> = {},
): string {
  const g = guest();
  const settings: Record<string, TomlScalar> = {
    user: g.user,
    port: g.port,
    identity_file: g.identityFile,
    known_hosts: g.knownHostsFile,
    host_key_policy: "strict",
    become: "sudo",
    connect_timeout: 60,
    connect_retries: 0,
    ...defaults,
  };
  const toml = (value: TomlScalar) => (typeof value === "string" ? JSON.stringify(value) : String(value));
  const lines = ["[defaults]", ...Object.entries(settings).map(([k, v]) => `${k} = ${toml(v)}`), ""];
  for (const [host, config] of Object.entries(configs)) {
    const file = join(dir, `${host}.toml`);
    writeFileSync(file, config);
    lines.push(`[hosts.${host}]`, `address = "127.0.0.1"`, `config = ${JSON.stringify(file)}`, "");
  }
  const inventory = join(dir, "inventory.toml");
  writeFileSync(inventory, lines.join("\n"));
  return inventory;
}

export interface JobSpec {
  readonly name: string;
  readonly category: "logical_volume_nonroot" | "logical_volume_root" | "standard_path";
  readonly source: string;
  readonly vg?: string;
  readonly lv?: string;
  readonly snapshotSize?: string;
  readonly excludes?: readonly string[];
  /** Repository names under /srv/backup/ (or absolute paths). */
  readonly repos: readonly string[];
  /** copy_to destinations of the first repository, by name. */
  readonly copyTo?: readonly string[];
  /** prune_keep_last of every repository and copy. */
  readonly keepLast?: number;
}

/** The /data job most cases use: the ext4 LV lv_data into the data repository; `extra` overrides. */
export const dataJob = (extra: Partial<JobSpec> = {}): JobSpec => ({
  name: "data",
  category: "logical_volume_nonroot",
  source: "/data",
  lv: "lv_data",
  snapshotSize: "128M",
  repos: ["data"],
  ...extra,
});

/** What the lv_root cases leave out of /: bulk that would only make a backup under TCG slow. */
export const ROOT_BULK = ["/usr", "/var/lib", "/var/cache", "/var/log"];

/** The running root: lv_root into the root repository, without ROOT_BULK; `extra` overrides. */
export const rootJob = (extra: Partial<JobSpec> = {}): JobSpec => ({
  name: "root",
  category: "logical_volume_root",
  source: "/",
  lv: "lv_root",
  snapshotSize: "256M",
  excludes: [...ROOT_BULK],
  repos: ["root"],
  ...extra,
});

/** One case's inventory, in a fresh case directory: the guest as host vm1 with these jobs. */
export function vm1Inventory(
  name: string,
  jobs: readonly JobSpec[],
  defaults: Record<string, TomlScalar> = {},
): string {
  return writeInventory(caseDir(name), { vm1: config(jobs) }, defaults);
}

/** A ResticLVM config (the seed's category format) with these jobs; `extra` is appended as is. */
export function config(jobs: readonly JobSpec[], extra = ""): string {
  const out: string[] = [];
  const path = (name: string) => (name.startsWith("/") ? name : repo(name));
  for (const job of jobs) {
    const table = `${job.category}.${job.name}`;
    out.push(`[${table}]`);
    if (job.category !== "standard_path") {
      out.push(`vg_name = ${JSON.stringify(job.vg ?? "vg0")}`);
      out.push(`lv_name = ${JSON.stringify(job.lv)}`);
      out.push(`snapshot_size = ${JSON.stringify(job.snapshotSize ?? "256M")}`);
    }
    out.push(`backup_source_path = ${JSON.stringify(job.source)}`);
    out.push(`exclude_paths = ${JSON.stringify(job.excludes ?? [])}`, "");
    job.repos.forEach((name, index) => {
      out.push(`[[${table}.repositories]]`);
      out.push(`repo_path = ${JSON.stringify(path(name))}`);
      out.push(`password_file = ${JSON.stringify(PASSWORD_FILE)}`);
      if (job.keepLast !== undefined) out.push(`prune_keep_last = ${job.keepLast}`);
      out.push("");
      if (index === 0) {
        for (const copy of job.copyTo ?? []) {
          out.push(`  [[${table}.repositories.copy_to]]`);
          out.push(`  repo = ${JSON.stringify(path(copy))}`);
          out.push(`  password_file = ${JSON.stringify(PASSWORD_FILE)}`);
          if (job.keepLast !== undefined) out.push(`  prune_keep_last = ${job.keepLast}`);
          out.push("");
        }
      }
    });
  }
  return `${out.join("\n")}\n${extra}`;
}

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The JSON report (from --report), when the command wrote one. */
  readonly report: Report;
  host(name?: string): HostResult;
  job(name: string, host?: string): JobResult;
}

export interface RunningCli {
  readonly child: ChildProcess;
  readonly stderr: () => string;
  readonly done: Promise<CliRun>;
}

/**
 * Starts the real binary (built by the tier's globalSetup): `rlvm-fleet COMMAND --inventory INV
 * --report FILE ARGS…`, with timestamped progress on stderr.
 */
export function startCli(command: string, inventory: string, args: readonly string[] = []): RunningCli {
  const reportFile = `${inventory}.${command}.${++counter}.report.json`;
  const started = Date.now();
  const child = spawn(
    process.execPath,
    [BIN, command, "--inventory", inventory, "--report", reportFile, "--no-color", ...args],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } },
  );
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<CliRun>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      vmLog(
        `rlvm-fleet ${command} ${args.join(" ")}: exit ${code} after ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
      let report: Report;
      try {
        report = JSON.parse(readFileSync(reportFile, "utf8")) as Report;
      } catch {
        report = undefined as unknown as Report;
      }
      const host = (name?: string) => {
        const found = name === undefined ? report?.hosts[0] : report?.hosts.find((h) => h.name === name);
        if (found === undefined)
          throw new Error(`no host ${name ?? ""} in the report:\n${stdout}\n${stderr}`);
        return found;
      };
      resolve({
        code,
        stdout,
        stderr,
        report,
        host,
        job: (job, hostName) => {
          const found = host(hostName).jobs.find((j) => j.name === job);
          if (found === undefined) throw new Error(`no job ${job} in the report:\n${stdout}\n${stderr}`);
          return found;
        },
      });
    });
  });
  return { child, stderr: () => stderr, done };
}

export async function cli(command: string, inventory: string, args: readonly string[] = []): Promise<CliRun> {
  return startCli(command, inventory, args).done;
}

/** Waits until the guest state satisfies `ready` (polling over ssh), or throws after timeoutMs. */
export async function waitForGuest(
  ready: (state: GuestState) => boolean,
  what: string,
  timeoutMs = 120_000,
): Promise<GuestState> {
  let state: GuestState | undefined;
  return waitFor(
    what,
    async () => {
      state = await guest().state();
      return ready(state) && state;
    },
    { timeoutMs, intervalMs: 500, detail: () => `guest state: ${JSON.stringify(state)}` },
  );
}

const isClean = (s: GuestState) =>
  s.snapshots.length === 0 &&
  s.dmDevices.length === 0 &&
  s.mounts.length === 0 &&
  s.runDirs.length === 0 &&
  s.tempDirs.length === 0 &&
  s.agents.length === 0 &&
  s.restic.length === 0 &&
  s.heldLocks.length === 0;

/**
 * The cleanup guarantee, checked on the guest: no `rlvm_fleet` LV (nor its dm devices), no mount under
 * /run/rlvm-fleet in any mount namespace, no run or temp directory, no agent or restic, no lock held.
 * Waits up to waitMs for it (an agent whose controller vanished cleans up on its own, shortly after).
 */
export async function expectGuestClean(waitMs = 0): Promise<void> {
  let state = await guest().state();
  const deadline = Date.now() + waitMs;
  while (!isClean(state) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1000));
    state = await guest().state();
  }
  expect(state).toEqual({
    snapshots: [],
    dmDevices: [],
    mounts: [],
    runDirs: [],
    tempDirs: [],
    agents: [],
    restic: [],
    heldLocks: [],
  });
}

export interface ResticSnapshot {
  id: string;
  short_id: string;
  hostname: string;
  paths: string[];
  tags?: string[];
  parent?: string;
  time: string;
}

/** `restic snapshots` of a repository on the guest. */
export async function resticSnapshots(name: string): Promise<ResticSnapshot[]> {
  const out = await guest().run(
    `restic --repo ${repo(name)} --password-file ${PASSWORD_FILE} --no-lock snapshots --json`,
  );
  return JSON.parse(out) as ResticSnapshot[];
}

/** The ids of the locks in a repository on the guest (a restic stopped cleanly leaves none). */
export async function resticLocks(name: string): Promise<string[]> {
  const out = await guest().run(
    `restic --repo ${repo(name)} --password-file ${PASSWORD_FILE} --no-lock list locks`,
  );
  return out.split("\n").filter((line) => line !== "");
}

/** Every path in a restic snapshot (restic ls), on the guest. */
export async function resticPaths(name: string, snapshot: string): Promise<string[]> {
  const out = await guest().run(
    `restic --repo ${repo(name)} --password-file ${PASSWORD_FILE} --no-lock ls --json ${snapshot} | grep '"struct_type":"node"' | sed -e 's/.*"path":"\\([^"]*\\)".*/\\1/'`,
    { timeoutMs: 300_000 },
  );
  return out.split("\n").filter((line) => line !== "");
}

/** `restic dump` of one file from a snapshot, on the guest. */
export async function resticDump(name: string, snapshot: string, file: string): Promise<string> {
  return guest().run(
    `restic --repo ${repo(name)} --password-file ${PASSWORD_FILE} --no-lock dump ${snapshot} ${file}`,
  );
}

/** LVM's metadata sequence number of vg0: it moves with every change (an lvcreate, an lvremove). */
export async function vgSeqno(): Promise<number> {
  return Number((await guest().run("vgs --noheadings -o vg_seqno vg0")).trim());
}

/** Random bytes into a file on the guest (MiB), to give restic something to chew on. */
export async function writeRandom(path: string, mib: number): Promise<void> {
  await guest().run(`mkdir -p "$(dirname ${path})"; head -c ${mib}M /dev/urandom >${path}; sync`, {
    timeoutMs: 300_000,
  });
}

/**
 * A script for guest().spawn that waits (up to 10 minutes) until this run's snapshot exists, i.e. a
 * `rlvm_fleet` LV is there; then the caller's commands follow.
 */
export const WAIT_FOR_SNAPSHOT = String.raw`
for _ in $(seq 3000); do
  if lvs --noheadings -o lv_name @rlvm_fleet 2>/dev/null | grep -q .; then break; fi
  sleep 0.2
done
lvs --noheadings -o lv_name @rlvm_fleet | grep -q .
`;

/** A script that waits until a `restic backup` runs on the guest: RESTIC_PID is its pid. */
export const WAIT_FOR_RESTIC = String.raw`
RESTIC_PID=""
for _ in $(seq 3000); do
  RESTIC_PID=$(pgrep -f '^[^ ]*restic backup --json' | head -n1 || true)
  if [ -n "$RESTIC_PID" ]; then break; fi
  sleep 0.2
done
[ -n "$RESTIC_PID" ]
`;

/** The log of a script started with guest().spawn. */
export async function spawnedLog(name: string): Promise<string> {
  return guest().run(`cat /run/rlvm-test/${name}.log 2>/dev/null || true`);
}

/** The data every test starts from, on /data (ext4), /srv/xfs (XFS) and the root LV. */
const BASELINE = String.raw`
find /data /srv/xfs -mindepth 1 -maxdepth 1 ! -name lost+found -exec rm -rf {} +
mkdir -p /data/docs /data/cache /srv/xfs/docs
echo "hello from lv_data" >/data/docs/a.txt
seq 1 5000 >/data/docs/numbers.txt
echo "scratch" >/data/cache/scratch.txt
echo "hello from lv_xfs" >/srv/xfs/docs/x.txt
rm -rf /opt/rlvm-test
mkdir -p /opt/rlvm-test/kept /opt/rlvm-test/excluded
echo kept >/opt/rlvm-test/kept/file.txt
echo excluded >/opt/rlvm-test/excluded/file.txt
lvs --noheadings -o lv_name vg0/lv_unmounted >/dev/null 2>&1 && lvremove -f vg0/lv_unmounted >/dev/null
sync
`;

/** reset() of the guest plus the baseline data: every test starts from the same state. */
export async function resetGuest(): Promise<void> {
  await guest().reset(REPOS);
  await guest().run(BASELINE);
}
