// Shared-repository prune (issue 17, point 5): N hosts back up into one restic repository, each with
// 5 snapshots and a retention that keeps 2. rlvm-fleet's `prune` previews each host's forget, then one
// host forgets for all and prunes the repository once; a per-host tool runs `restic forget --prune` on every host, so the repository is
// pruned N times. A third runner is rlvm-fleet's prune with the repository given a maintenance_host.
// All start from the same copy of one seeded repository and must keep the same snapshots.
//
//   BENCH_PRUNE_HOSTS=20   hosts sharing the repository (default 20)
//   BENCH_REPEATS=3        timed rounds (default 3)
//   BENCH_WARMUP=0         untimed rounds first (default 0)
//   BENCH_PRUNE_FILES=16   new 16 KiB files in each seeded snapshot (default 16): what the forgotten
//                          snapshots leave for prune to delete (whole packs, so its time hardly grows with it)
import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { startFleet, type Fleet } from "../test/integration/harness/fleet.js";
import {
  leftoverRunDirs,
  resticInit,
  writeInventory,
  writePasswordFile,
  writeSharingHost,
} from "../test/integration/helpers/test-fleet.js";
import { createCpuGroup } from "./cpu.js";
import type { BenchContext, Dimension, DimensionResult } from "./dimension.js";
import { envCount } from "./env.js";
import { measureRun, settle } from "./fleet-runs.js";
import { median, type Goal } from "./report.js";
import { readReport, rlvmFleetArgv, sshOptions, tail } from "./runners.js";

const SNAPSHOTS_PER_HOST = 5;
const KEEP_LAST = 2;
const JOB = "data";
const GOAL_RATIO = 5;
const GOAL_HOSTS = 20;
const RUN_TIMEOUT_MS = 15 * 60_000;
// restic backups of the seed at once: they share the repository's non-exclusive lock.
const SEED_CONCURRENCY = 4;
const FILE_BYTES = 16 * 1024;
// What restic 0.14's `forget --prune` prints once it prunes (and only then).
const PRUNE_MARKER = "finding data that is still in use";

type PruneRunnerId = "rlvm-fleet" | "maintenance" | "per-host";

const RUNNERS: readonly PruneRunnerId[] = ["rlvm-fleet", "maintenance", "per-host"];

const LABELS: Record<PruneRunnerId, string> = {
  "rlvm-fleet": "rlvm-fleet prune",
  maintenance: "rlvm-fleet prune, maintenance_host",
  "per-host": "parallel-ssh: restic forget --prune per host",
};

interface Snapshot {
  id: string;
  hostname: string;
  time: string;
  paths: string[];
  tags?: string[];
}

interface PruneRecord {
  runner: PruneRunnerId;
  wallMs: number;
  controllerCpuMs: number;
  hostsCpuMs: number;
  prunes: number;
  kept: number;
  /** rlvm-fleet only (NaN otherwise), from its report: the slowest forget and the prune. */
  forgetMaxMs: number;
  pruneMs: number;
}

interface RunSetup {
  argv: string[];
  /** Throws unless every host did the work; returns how many `restic prune` ran (and rlvm-fleet's steps). */
  verify(code: number | null, stdoutFile: string, stderrFile: string): Verified;
}

interface Verified {
  prunes: number;
  forgetMaxMs: number;
  pruneMs: number;
}

const execFileAsync = promisify(execFile);

/** Runs `work` over `items`, at most `limit` at once. */
async function eachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>) {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await work(items[next++] as T);
  });
  await Promise.all(lanes);
}

/** The snapshot's identity for comparing what two runs kept: its id (the working copies share ids). */
const keyOf = (s: Snapshot) => s.id;

export const pruneDimension: Dimension = async (ctx: BenchContext): Promise<DimensionResult> => {
  const n = envCount("BENCH_PRUNE_HOSTS", GOAL_HOSTS);
  if (n < 1) throw new Error("BENCH_PRUNE_HOSTS must be at least 1");
  const repeats = envCount("BENCH_REPEATS", 3);
  const warmup = envCount("BENCH_WARMUP", 0);
  const files = envCount("BENCH_PRUNE_FILES", 16);
  const title = `Shared-repository prune: ${n} hosts sharing one repository, ${SNAPSHOTS_PER_HOST} snapshots each, keep_last ${KEEP_LAST}`;
  const total = n * SNAPSHOTS_PER_HOST;
  const goalNames = {
    speed: `${GOAL_HOSTS} hosts sharing one repository: rlvm-fleet prune ≥ ${GOAL_RATIO}× faster than per-host forget --prune`,
    same: "identical snapshots kept",
  };
  const failures: string[] = [];
  const method = [
    `${n} loopback sshd hosts, each with a ResticLVM config (one standard_path job \`${JOB}\`, prune_keep_last = ${KEEP_LAST})`,
    `naming one local repository on this machine, which every host's restic (root, through \`sudo -n\`) opens. It is seeded once`,
    `with ${SNAPSHOTS_PER_HOST} snapshots per host as the agent's backup makes them (\`--host <name> --tag rlvm-fleet --tag job:${JOB}\`,`,
    `the host's source path, distinct --time values, ${files} new files of 16 KiB in each: ${((total * files * FILE_BYTES) / 2 ** 20).toFixed(1)} MiB of data in all),`,
    `and copied (\`cp -a\`) to the working path before every run,`,
    `outside the timing, with restic's cache of it removed: every run starts from the same repository, snapshot ids included.`,
    `rlvm-fleet: \`prune --forks ${n}\` (every host previews its forget with --dry-run --no-lock, at once; then one host runs the ${n}`,
    `hosts' forgets, which share their keep values, as one \`restic forget\` with a --host each, and one \`restic prune\`). Per host: parallel-ssh -p ${n}, every`,
    `host running \`restic forget --host <name> --tag job:${JOB} --group-by host,paths --keep-tag protected --keep-last ${KEEP_LAST} --prune\``,
    `(rlvm-fleet's forget argv plus --prune). restic 0.14 takes an exclusive lock for forget and prune and has no --retry-lock, so`,
    `concurrent runs fail on the lock; each is wrapped in \`flock\` on one lock file, so all ${n} sessions are open at once and the`,
    `prunes run one after another, each starting the moment the previous ends: the best a per-host retry loop (or restic 0.16's`,
    `--retry-lock) could do, with no polling delay. A third row runs the same prune with the repository declared in the inventory`,
    `with \`maintenance_host\` the first host (README, "Maintenance hosts"): the hosts only read the repository's id, and that host`,
    `runs the forget and the prune; the goal is decided on the plain \`rlvm-fleet prune\`. After every run the`,
    `repository's snapshots (\`restic snapshots --json --no-lock\`) must be exactly the ${KEEP_LAST} newest of every host (compared by id),`,
    `and \`restic check\` must pass after each runner's first run;`,
    `either failing is a failure. Wall time from spawn to exit, median over ${repeats} timed rounds after ${warmup} warm-up, the runners'`,
    `order rotating every round; controller CPU from cgroup accounting of the runner's process tree, hosts' CPU of everything the`,
    `hosts' sshd forked (sessions, sudo, restic). On loopback every "host" is this machine, so the prunes compete for its cores.`,
  ].join("\n");
  const notMeasured = (why: string): DimensionResult => ({
    title,
    table: "",
    goals: [
      { goal: goalNames.speed, verdict: "not measured", detail: why },
      { goal: goalNames.same, verdict: "not measured", detail: why },
    ],
    method,
    failures,
  });
  if (ctx.tools.parallelSsh === undefined)
    return notMeasured(ctx.tools.skipped["parallel-ssh"] ?? "no parallel-ssh");
  if (!ctx.asRoot) return notMeasured("needs root: the hosts' restic runs as root through sudo");

  const dir = mkdtempSync(join(ctx.work, "prune-"));
  // The hosts' agents (root) read the configs and sources; the login user only needs to pass through.
  chmodSync(dir, 0o755);
  const controllerCpu = createCpuGroup(`rlvm-fleet-bench-${process.pid}-prune-controller`);
  const hostsCpu =
    controllerCpu === null ? null : createCpuGroup(`rlvm-fleet-bench-${process.pid}-prune-hosts`);
  let fleet: Fleet | undefined;
  const records: PruneRecord[] = [];
  /** Runners with a run that kept exactly the expected snapshots; and the runs that kept others. */
  const verified = new Set<PruneRunnerId>();
  const mismatches: string[] = [];
  let verifiedRuns = 0;
  let expected = new Set<string>();
  /** restic's cache of the repository (the copies share its id), removed before every run and at the end. */
  let cache: string | undefined;
  try {
    ctx.log(`prune: starting ${n} loopback sshd hosts`);
    fleet = await startFleet({ hosts: n });
    const hosts = fleet.hosts.map((h) => h.name);
    if (hostsCpu !== null) for (const host of fleet.hosts) if (host.pid !== undefined) hostsCpu.add(host.pid);
    const password = writePasswordFile(join(dir, "restic-password"), randomBytes(24).toString("hex"));
    const pristine = join(dir, "pristine");
    const shared = join(dir, "shared");
    const restic = (repo: string, ...args: string[]) =>
      execFileSync("restic", ["-r", repo, "--password-file", password, ...args], {
        encoding: "utf8",
        maxBuffer: 64 * 1024 * 1024,
      });
    const snapshotsOf = (repo: string) =>
      JSON.parse(restic(repo, "snapshots", "--json", "--no-lock")) as Snapshot[];

    // The seed: each host's source DIR/src/HOST gets new data before every backup, so that the
    // forgotten snapshots leave packs for prune to delete, as on a real fleet.
    ctx.log(`prune: seeding ${total} snapshots`);
    resticInit(pristine, password);
    for (const host of hosts)
      writeSharingHost(dir, host, { repos: [shared], passwordFile: password, keepLast: KEEP_LAST });
    const seedStarted = Date.now();
    await eachLimited(hosts, SEED_CONCURRENCY, async (host) => {
      const index = hosts.indexOf(host);
      const source = join(dir, "src", host);
      for (let i = 0; i < SNAPSHOTS_PER_HOST; i++) {
        // The same names with new contents: each snapshot references only its own data.
        for (let f = 0; f < files; f++) writeFileSync(join(source, `data-${f}.bin`), randomBytes(FILE_BYTES));
        // Day i, a minute per host: distinct times, the newest KEEP_LAST per host are the last ones.
        const time = new Date(Date.UTC(2026, 0, 1 + i, 0, index % 60, Math.floor(index / 60)))
          .toISOString()
          .replace("T", " ")
          .replace(/\.\d+Z$/, "");
        await execFileAsync("restic", [
          "-r",
          pristine,
          "--password-file",
          password,
          "backup",
          "--quiet",
          "--host",
          host,
          "--tag",
          "rlvm-fleet",
          "--tag",
          `job:${JOB}`,
          "--time",
          time,
          "--",
          source,
        ]);
      }
    });
    const seeded = snapshotsOf(pristine);
    ctx.log(
      `prune: seeded ${seeded.length} snapshots in ${((Date.now() - seedStarted) / 1000).toFixed(1)} s`,
    );
    if (seeded.length !== total) throw new Error(`the seed has ${seeded.length} snapshots, not ${total}`);
    expected = new Set(
      hosts.flatMap((host) =>
        seeded
          .filter((s) => s.hostname === host)
          .sort((a, b) => Date.parse(b.time) - Date.parse(a.time))
          .slice(0, KEEP_LAST)
          .map(keyOf),
      ),
    );
    const repoId = (JSON.parse(restic(pristine, "cat", "config")) as { id: string }).id;
    // The hosts' restic runs as root (sudo sets root's HOME), so its cache is root's, as is this
    // process's: each run starts without one, as the copy is new.
    cache = join(userInfo().homedir, ".cache/restic", repoId);

    const inventory = writeInventory(fleet, join(dir, "inventory.toml"), {
      defaults: { config: join(dir, "{host}.toml"), connect_timeout: ctx.connectTimeoutS },
    });
    // A declared repository (README, "Maintenance hosts"): the hosts only read its id, and the first
    // host runs every host's forget, then the prune.
    const maintainer = hosts[0] as string;
    const maintenanceInventory = writeInventory(fleet, join(dir, "inventory-maintenance.toml"), {
      defaults: { config: join(dir, "{host}.toml"), connect_timeout: ctx.connectTimeoutS },
      extra: [
        "[repositories.shared]",
        `url = ${JSON.stringify(shared)}`,
        `maintenance_host = ${JSON.stringify(maintainer)}`,
        `password_file = ${JSON.stringify(password)}`,
        "",
      ].join("\n"),
    });
    const psshHosts = join(dir, "pssh-hosts");
    const loginUser = fleet.loginUser;
    writeFileSync(psshHosts, fleet.hosts.map((h) => `${loginUser}@${h.address}:${h.port}\n`).join(""));
    const lockFile = join(dir, "per-host-prune.lock");
    const extra = [
      ...sshOptions({ fleet, connectTimeoutS: ctx.connectTimeoutS }).flatMap((o) => ["-o", o]),
      "-i",
      fleet.clientKey.privateKeyPath,
    ].join(" ");

    const prepare = (runner: PruneRunnerId, runDir: string): RunSetup => {
      if (runner !== "per-host") {
        const report = join(runDir, "report.json");
        const forInventory = runner === "maintenance" ? maintenanceInventory : inventory;
        return {
          argv: rlvmFleetArgv(ctx.repoRoot, "prune", forInventory, n, report),
          verify(code, _stdout, stderr) {
            const doc = readReport<{
              hosts: { name: string; status: string; error: unknown }[];
              repositories: {
                url: string;
                actions: { action: string; host: string; status: string; duration_ms: number | null }[];
              }[];
            }>(report, code, stderr);
            const notOk = doc.hosts.filter((h) => h.status !== "ok");
            if (code !== 0 || doc.hosts.length !== n || notOk.length > 0)
              throw new Error(
                `exit ${code}, ${doc.hosts.length - notOk.length}/${n} ok; first failure: ${JSON.stringify(notOk[0] ?? null)}`,
              );
            const entry = doc.repositories.find((r) => r.url === shared);
            const prunes = entry?.actions.filter((a) => a.action === "prune") ?? [];
            if (doc.repositories.length !== 1 || prunes.length !== 1 || prunes[0]?.status !== "ok")
              throw new Error(
                `expected one repository with one ok prune action, got ${JSON.stringify(doc.repositories.map((r) => [r.url, r.actions.filter((a) => a.action === "prune")]))}`,
              );
            const forgets = entry?.actions.filter((a) => a.action === "forget") ?? [];
            const forgetters = new Set(forgets.map((a) => a.host));
            if (
              forgets.length !== n ||
              forgets.some((a) => a.status !== "ok") ||
              (runner === "maintenance" && (forgetters.size !== 1 || !forgetters.has(maintainer)))
            )
              throw new Error(
                `expected ${n} ok forgets${runner === "maintenance" ? ` by ${maintainer}` : ""}, got ${JSON.stringify(forgets.map((a) => [a.host, a.status]))}`,
              );
            return {
              prunes: prunes.length,
              forgetMaxMs: Math.max(...forgets.map((a) => a.duration_ms ?? NaN)),
              pruneMs: prunes[0].duration_ms ?? NaN,
            };
          },
        };
      }
      const outDir = join(runDir, "out");
      // restic reads the password from the file on the host; only its path is in argv. One command for
      // every host, as with parallel-ssh on a real fleet, where --host would be "$(hostname)": here
      // every host is this machine, so its name comes from the harness's $RLVM_FLEET_HOST (the
      // inventory name, which rlvm-fleet's backup and forget use).
      const remote =
        `sudo -n flock ${lockFile} restic -r ${shared} --password-file ${password} forget ` +
        `--host "$RLVM_FLEET_HOST" --tag job:${JOB} --group-by host,paths --keep-tag protected ` +
        `--keep-last ${KEEP_LAST} --prune`;
      return {
        argv: [
          ctx.tools.parallelSsh as string,
          "-p",
          String(n),
          "-h",
          psshHosts,
          "-t",
          "0",
          "-o",
          outDir,
          "-e",
          join(runDir, "err"),
          "-x",
          extra,
          remote,
        ],
        verify(code, stdout) {
          const files = existsSync(outDir) ? readdirSync(outDir) : [];
          const pruned = files.filter((f) =>
            readFileSync(join(outDir, f), "utf8").includes(PRUNE_MARKER),
          ).length;
          if (code !== 0 || pruned !== n)
            throw new Error(`exit ${code}, ${pruned}/${n} hosts pruned: ${tail(stdout)}`);
          return { prunes: pruned, forgetMaxMs: NaN, pruneMs: NaN };
        },
      };
    };

    const runners = RUNNERS;
    const checked = new Set<PruneRunnerId>();
    const env = { ...process.env };
    delete env["SSH_AUTH_SOCK"];
    delete env["NODE_OPTIONS"];
    let runNumber = 0;
    for (let round = 0; round < warmup + repeats; round++) {
      const timed = round >= warmup;
      // Rotate the order every round, so no runner always follows the same one.
      const order = runners.map((_, i) => runners[(i + round) % runners.length] as PruneRunnerId);
      for (const runner of order) {
        // The same starting state every run: a fresh copy of the seed, no cache of it.
        rmSync(shared, { recursive: true, force: true });
        execFileSync("cp", ["-a", pristine, shared]);
        rmSync(cache, { recursive: true, force: true });
        await settle(fleet);
        const runDir = join(dir, `${runner}-${++runNumber}`);
        mkdirSync(runDir);
        const setup = prepare(runner, runDir);
        const hostsBefore = hostsCpu?.usageMs() ?? NaN;
        const { measured, controllerMs, stdoutFile, stderrFile } = await measureRun(
          { argv: setup.argv, env },
          runDir,
          controllerCpu,
          { timeoutMs: RUN_TIMEOUT_MS },
        );
        await settle(fleet);
        const hostsMs = (hostsCpu?.usageMs() ?? NaN) - hostsBefore;
        const tag = `prune ${String(n).padStart(3)} hosts  ${LABELS[runner].padEnd(46)}`;
        try {
          const { prunes, forgetMaxMs, pruneMs } = setup.verify(measured.code, stdoutFile, stderrFile);
          const kept = new Set(snapshotsOf(shared).map(keyOf));
          const missing = [...expected].filter((k) => !kept.has(k));
          const extraKept = [...kept].filter((k) => !expected.has(k));
          if (missing.length > 0 || extraKept.length > 0) {
            const mismatch = `kept ${kept.size} snapshots, expected the ${expected.size} newest ${KEEP_LAST} per host: ${missing.length} removed that should stay, ${extraKept.length} kept that should go`;
            mismatches.push(`${runner}: ${mismatch}`);
            throw new Error(mismatch);
          }
          if (!checked.has(runner)) {
            // Outside the timing: the repository a runner leaves behind must be intact.
            const check = restic(shared, "check");
            if (!/no errors were found/.test(check)) throw new Error(`restic check: ${check.slice(-500)}`);
            checked.add(runner);
          }
          verified.add(runner);
          verifiedRuns++;
          const cpu = Number.isNaN(controllerMs)
            ? ""
            : `  cpu ${(controllerMs / 1000).toFixed(2)} s + hosts ${(hostsMs / 1000).toFixed(2)} s`;
          const steps = Number.isNaN(pruneMs)
            ? ""
            : `  (slowest forget ${(forgetMaxMs / 1000).toFixed(2)} s, prune ${(pruneMs / 1000).toFixed(2)} s)`;
          ctx.log(
            `${tag} ${timed ? "" : "(warm-up) "}${(measured.wallMs / 1000).toFixed(2)} s${cpu}  ${prunes} prune(s), kept ${kept.size} of ${total}${steps}`,
          );
          if (timed)
            records.push({
              runner,
              wallMs: measured.wallMs,
              controllerCpuMs: controllerMs,
              hostsCpuMs: hostsMs,
              prunes,
              kept: kept.size,
              forgetMaxMs,
              pruneMs,
            });
        } catch (e) {
          const message = e instanceof Error ? e.message : String(e);
          failures.push(`prune at ${n} hosts, ${runner}: ${message}`);
          ctx.log(`${tag} FAILED after ${(measured.wallMs / 1000).toFixed(2)} s: ${message}`);
        }
        rmSync(runDir, { recursive: true, force: true });
      }
    }
    const left = leftoverRunDirs(fleet);
    if (left.length > 0) failures.push(`prune: left on the hosts: ${left.join(", ")}`);
  } catch (e) {
    failures.push(`prune at ${n} hosts: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    await fleet?.stop();
    rmSync(dir, { recursive: true, force: true });
    if (cache !== undefined) rmSync(cache, { recursive: true, force: true });
    hostsCpu?.remove();
    controllerCpu?.remove();
  }

  // The table: one row per runner, medians over the timed rounds.
  const s = (ms: number) => (Number.isNaN(ms) ? "–" : (ms / 1000).toFixed(2));
  const rows = [
    "| hosts | runner | runs | median wall s | min–max s | compared | restic prune runs per run | snapshots kept | controller CPU s | hosts' CPU s |",
    "| ---: | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
  ];
  const summary = (runner: PruneRunnerId) => {
    const runs = records.filter((r) => r.runner === runner);
    if (runs.length === 0) return undefined;
    const walls = runs.map((r) => r.wallMs);
    return {
      runs: runs.length,
      medianMs: median(walls),
      minMs: Math.min(...walls),
      maxMs: Math.max(...walls),
      prunes: [...new Set(runs.map((r) => r.prunes))].join("/"),
      kept: [...new Set(runs.map((r) => r.kept))].join("/"),
      controllerCpuMs: median(runs.map((r) => r.controllerCpuMs)),
      hostsCpuMs: median(runs.map((r) => r.hostsCpuMs)),
      forgetMaxMs: median(runs.map((r) => r.forgetMaxMs)),
      pruneMs: median(runs.map((r) => r.pruneMs)),
    };
  };
  const rlvm = summary("rlvm-fleet");
  const maintenance = summary("maintenance");
  const perHost = summary("per-host");
  const ratio = rlvm !== undefined && perHost !== undefined ? perHost.medianMs / rlvm.medianMs : null;
  for (const runner of RUNNERS) {
    const x = summary(runner);
    if (x === undefined) continue;
    const compared =
      runner === "rlvm-fleet"
        ? "baseline"
        : runner === "maintenance"
          ? perHost === undefined
            ? "–"
            : `per-host / this = ${(perHost.medianMs / x.medianMs).toFixed(2)}×`
          : ratio === null
            ? "–"
            : `per-host / rlvm-fleet = ${ratio.toFixed(2)}×`;
    rows.push(
      `| ${n} | ${LABELS[runner]} | ${x.runs} | ${s(x.medianMs)} | ${s(x.minMs)}–${s(x.maxMs)} | ${compared} | ${x.prunes} | ${x.kept} of ${total} | ${s(x.controllerCpuMs)} | ${s(x.hostsCpuMs)} |`,
    );
  }

  const goals: Goal[] = [];
  if (rlvm === undefined || perHost === undefined || ratio === null) {
    goals.push({
      goal: goalNames.speed,
      verdict: "not measured",
      detail: "a runner has no successful timed run",
    });
  } else {
    const at = n === GOAL_HOSTS ? "" : ` (measured at ${n} hosts, not ${GOAL_HOSTS}: not the goal's size)`;
    goals.push({
      goal: goalNames.speed,
      verdict: n !== GOAL_HOSTS ? "not measured" : ratio >= GOAL_RATIO ? "met" : "missed",
      detail: `per-host / rlvm-fleet = ${ratio.toFixed(2)}× (${s(perHost.medianMs)} s vs ${s(rlvm.medianMs)} s; ${perHost.prunes} prunes vs ${rlvm.prunes}; of rlvm-fleet's wall, its forget (all hosts') took ${s(rlvm.forgetMaxMs)} s and its one prune ${s(rlvm.pruneMs)} s, medians${maintenance === undefined ? "" : `; with a maintenance_host, ${s(maintenance.medianMs)} s: per-host / that = ${(perHost.medianMs / maintenance.medianMs).toFixed(2)}×`})${at}`,
    });
  }
  // Every verified run kept exactly `expected` (a run that did not is a failure), so the runners agree
  // when each has a verified run and nothing failed.
  const unverified = RUNNERS.filter((r) => !verified.has(r));
  if (unverified.length > 0) {
    goals.push({
      goal: goalNames.same,
      verdict: mismatches.length > 0 ? "missed" : "not measured",
      detail: `no verified run of ${unverified.join(", ")}${mismatches.length > 0 ? `; ${mismatches.join("; ")}` : ""}`,
    });
  } else {
    goals.push({
      goal: goalNames.same,
      verdict: mismatches.length === 0 ? "met" : "missed",
      detail:
        mismatches.length === 0
          ? `every runner kept the same ${expected.size} of ${total} snapshots (the ${KEEP_LAST} newest of each host, by id) in each of the ${verifiedRuns} runs that completed; restic check passed after each runner's first`
          : mismatches.join("; "),
    });
  }
  return { title, table: rows.join("\n"), goals, method, failures };
};
