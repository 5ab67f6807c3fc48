// Every selected host through a p-queue: one host's failure is its result, never the others' problem.
import { randomBytes } from "node:crypto";
import { setMaxListeners } from "node:events";
import { loadAgent, type AgentFile } from "../agent/deliver.js";
import type { FleetPlan, HostPlan } from "../plan/build-plan.js";
import { buildReport } from "../report/build-report.js";
import type { HostResult, Report } from "../report/report-schema.js";
import { loadLocalFiles } from "./local-files.js";
import type { ProgressEvent } from "../report/progress-event.js";
import type { RepositoryPrune, RepositoryUse } from "../report/repositories.js";
import {
  assignRepositories,
  maintenancePlans,
  mergePhases,
  pruneOutcomes,
  type PruneAssignment,
} from "./prune-repositories.js";
import {
  applyMaintenance,
  forgetPreviews,
  maintainedIdentities,
  plannedPrunes,
  scheduleMaintenance,
  schedulePrunes,
  type MaintenanceEvents,
  type MaintenanceSchedule,
} from "./maintain-repositories.js";
import { runHost, type HostRunContext } from "./run-host.js";
import {
  assignMissingReads,
  assignReads,
  finished,
  settleStatusHost,
  statusPlans,
  splitReads,
  withPhase2Reads,
  type ReadAssignment,
} from "./status-reads.js";
import { batchSize, scheduleHosts } from "./schedule-hosts.js";
import { createJumpPool } from "../transport/jump-pool.js";

export interface FleetRunRequest {
  command: "ping" | "check" | "backup" | "prune" | "status" | "verify" | "install-agent";
  /** verify: restic check's --read-data-subset (validated) and the restore drill's files per job. */
  verify?: { subset: string; restoreSample: number };
  /** backup --verify-sample N: files per job for every host, instead of each host's verify_sample. */
  verifySample?: number;
  /** install-agent: log in as root for this one command, and whether the host keeps an allow-list. */
  install?: { rootLogin: boolean; anyRepository: boolean };
  /** status: a job whose latest snapshot is older than this many seconds is stale. */
  maxAgeS?: number | null;
  /** backup: preflight and list what would run; prune: forget --dry-run. Nothing changes. */
  dryRun?: boolean;
  plan: FleetPlan;
  forks: number;
  /** --serial (N or N%), --max-fail-percent and --splay; none when absent. */
  schedule?: { serial: string | null; maxFailPercent: number | null; splayMs: number };
  options: Report["options"];
  agentSocket: string | null;
  signal: AbortSignal;
  onProgress: (event: ProgressEvent) => void;
  /** Tests only: deliver other bytes than the shipped agent. */
  agent?: AgentFile;
  connect?: HostRunContext["connect"];
}

function agentCommand(
  request: FleetRunRequest,
): Pick<HostRunContext, "command" | "jobs" | "dryRun" | "maxAgeS" | "install" | "verify" | "verifySample"> {
  const dryRun = request.dryRun === true;
  const common = { dryRun, maxAgeS: request.maxAgeS ?? null };
  switch (request.command) {
    case "ping":
      return { ...common, command: "ping", jobs: null };
    case "check":
      return { ...common, command: "preflight", jobs: null };
    case "backup":
      return dryRun
        ? { ...common, command: "preflight", jobs: { command: "backup", initial: "planned" } }
        : {
            ...common,
            command: "backup",
            jobs: { command: "backup", initial: "skipped" },
            ...(request.verifySample === undefined ? {} : { verifySample: request.verifySample }),
          };
    case "prune":
      return { ...common, command: "prune", jobs: { command: "prune", initial: "skipped" } };
    case "status":
      // Ages and staleness come after every host, once the shared reads are split (status-reads.ts).
      return { ...common, maxAgeS: null, command: "status", jobs: { command: "status", initial: "skipped" } };
    case "verify": {
      if (request.verify === undefined) throw new Error("verify needs its subset and sample");
      return {
        ...common,
        command: "verify",
        jobs: { command: "verify", initial: dryRun ? "planned" : "skipped" },
        verify: request.verify,
      };
    }
    case "install-agent": {
      const anyRepository = request.install?.anyRepository === true;
      // The rule names the inventory's login user, also when this one run logs in as root.
      const requests = new Map(
        request.plan.hosts.map(({ host }) => [
          host.name,
          {
            user: host.user,
            sudo: host.become_password_file === null ? "nopasswd" : "passwd",
            anyRepository,
          } as const,
        ]),
      );
      return {
        ...common,
        command: "install",
        jobs: null,
        install: (host) => {
          const install = requests.get(host.name);
          if (install === undefined) throw new Error(`no install request for ${host.name}`);
          return install;
        },
      };
    }
  }
}

/** install-agent --root-login: this one run logs in as root and runs the bootstrap without sudo. */
function asRunBy(hostPlan: HostPlan, request: FleetRunRequest): HostPlan {
  if (request.command !== "install-agent" || request.install?.rootLogin !== true) return hostPlan;
  return { ...hostPlan, host: { ...hostPlan.host, user: "root", become: "none" } };
}

/** Sortable, and safe in an LV name and a path: 20261126T140501Z-3f9a1c. */
export function newRunId(now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  return `${stamp}-${randomBytes(3).toString("hex")}`;
}

export async function runFleet(request: FleetRunRequest): Promise<Report> {
  const startedAt = new Date();
  const runId = newRunId(startedAt);
  const files = loadLocalFiles(
    [
      ...request.plan.hosts.map((h) => h.host),
      ...(request.command === "prune" ? (request.plan.repositories ?? []).map((r) => r.maintainer) : []),
    ],
    request.plan.inventory.file,
  );
  const repositories: RepositoryUse[] = [];
  // One connection per bastion for the whole run, prune's second phase included.
  const jumps = createJumpPool(files, request.agentSocket);
  const context: HostRunContext = {
    runId,
    ...agentCommand(request),
    agent: request.agent ?? loadAgent(),
    files,
    agentSocket: request.agentSocket,
    signal: request.signal,
    onProgress: request.onProgress,
    recordRepositories: (uses) => repositories.push(...uses),
    jumps,
    ...(request.connect === undefined ? {} : { connect: request.connect }),
  };
  const forks = Math.max(1, request.forks);
  // Every running host listens for the abort (and stops listening when done): up to `forks` at once,
  // which is not a leak, so Node must not warn about more than 10.
  // A host waiting out its --splay listens too.
  const waiting = (request.schedule?.splayMs ?? 0) > 0 ? request.plan.hosts.length : 0;
  setMaxListeners(Math.max(10, forks + waiting + 10), request.signal);
  const serial = request.schedule?.serial ?? null;
  const runHosts: RunHosts = (hosts, ctx, phase = "first") =>
    scheduleHosts(
      hosts,
      {
        forks,
        serial: serial === null ? null : batchSize(serial, hosts.length),
        // Prune's second phase only keeps the batches: its prunes neither wait again nor stop early.
        maxFailPercent: phase === "first" ? (request.schedule?.maxFailPercent ?? null) : null,
        splayMs: phase === "first" ? (request.schedule?.splayMs ?? 0) : 0,
      },
      { run: (hostPlan, start) => runHost(asRunBy(hostPlan, request), ctx, start), signal: request.signal },
    );
  try {
    return await runPhases(request, context, runHosts, repositories, runId, startedAt);
  } finally {
    jumps.close();
  }
}

/** Hosts through the run's queue: the first phase, or a later one (no --max-fail-percent, no splay). */
type RunHosts = (
  hosts: readonly HostPlan[],
  ctx: HostRunContext,
  phase?: "first" | "maintenance",
) => Promise<HostResult[]>;

async function runPhases(
  request: FleetRunRequest,
  context: HostRunContext,
  runHosts: RunHosts,
  repositories: RepositoryUse[],
  runId: string,
  startedAt: Date,
): Promise<Report> {
  const report = (hosts: HostResult[], uses: RepositoryUse[], prunes: RepositoryPrune[] = []) =>
    buildReport({
      runId,
      command: request.command,
      options: request.options,
      startedAt,
      finishedAt: new Date(),
      hosts,
      repositories: uses,
      prunes,
      interrupted: request.signal.aborted,
      warnings: request.plan.warnings ?? [],
    });
  if (request.command === "status")
    return runStatus(request, context, runHosts, repositories, (results, uses) => report(results, uses));
  if (request.command === "prune") return runPrune(request, context, runHosts, repositories, report);
  let results = await runHosts(request.plan.hosts, context);
  let prunes: RepositoryPrune[] = [];
  if (request.command === "verify") {
    // Phase 2, after every host read the ids: each repository checked once (a dry run says where).
    const subset = request.verify?.subset;
    const assignments = assignRepositories(repositories, "check");
    if (request.dryRun === true) prunes = pruneOutcomes(assignments, "planned", subset);
    else if (assignments.length > 0) {
      const phase2 = await runMaintenance(request, context, runHosts, assignments, "check");
      prunes = pruneOutcomes(assignments, phase2, subset);
      results = results.map((result) =>
        mergePhases(result, phase2.results.get(result.name), "checking a repository"),
      );
    }
  }
  return report(results, repositories, prunes);
}

/**
 * prune: phase 1 previews every host's forgets (`forget --dry-run`, lock-free, all hosts at once) and
 * reads the repositories' ids; then each repository is maintained on one host: its declared
 * maintenance host, or one of the hosts that use it. That host runs every reached host's forget there,
 * one after another, and one `restic prune`, so no forget waits for another host's lock. A dry run
 * stops after the previews (and the declared maintenance hosts' own previews), and says where each
 * prune would run.
 */
async function runPrune(
  request: FleetRunRequest,
  context: HostRunContext,
  runHosts: RunHosts,
  repositories: RepositoryUse[],
  report: (results: HostResult[], uses: RepositoryUse[], prunes: RepositoryPrune[]) => Report,
): Promise<Report> {
  const dryRun = request.dryRun === true;
  const maintained = maintainedIdentities(request.plan);
  let results = await runHosts(request.plan.hosts, {
    ...context,
    dryRun: true,
    ...(maintained.size === 0 ? {} : { maintainedElsewhere: maintained }),
  });
  const declared = scheduleMaintenance(request.plan, repositories);
  const declaredIds = new Set(declared.runs.flatMap((run) => run.entries.map((e) => e.repositoryId)));
  const shared = schedulePrunes(request.plan.hosts, repositories, declaredIds);
  // The previews are not forgets: what a maintenance run does not forget stays unforgotten.
  if (!dryRun) forgetPreviews(results, repositories);
  let prunes: RepositoryPrune[] = [];
  for (const schedule of dryRun ? [declared] : [declared, shared]) {
    if (schedule.runs.length === 0 && schedule.refused.length === 0) continue;
    const applied = applyMaintenance(
      schedule,
      await runMaintenanceHosts(request, context, runHosts, schedule),
      { results, uses: repositories, dryRun },
    );
    results = applied.results;
    prunes = [...prunes, ...applied.prunes];
  }
  if (dryRun) prunes = [...prunes, ...plannedPrunes(shared)];
  return report(results, repositories, prunes);
}

/** Each maintenance host's run of a schedule: its maintained repositories' forgets and prunes. */
async function runMaintenanceHosts(
  request: FleetRunRequest,
  context: HostRunContext,
  runHosts: RunHosts,
  schedule: MaintenanceSchedule,
): Promise<{ results: Map<string, HostResult>; events: Map<string, MaintenanceEvents> }> {
  const events = new Map<string, MaintenanceEvents>();
  const ran = await runHosts(
    schedule.runs.map((run) => run.hostPlan),
    {
      ...context,
      recordRepositories: () => {},
      maintained: (host) => {
        const run = schedule.runs.find((r) => r.hostPlan.host.name === host.name);
        return run === undefined ? undefined : { envFile: run.envFile, entries: run.entries };
      },
      onMaintenanceEvent: (host, event) => {
        const found = events.get(host) ?? { forgets: [], prunes: [] };
        events.set(host, found);
        if (event.event === "forget_for_done") found.forgets.push(event);
        else found.prunes.push(event);
      },
      onProgress: laterPhase(request.onProgress, "maintenance", "connecting to maintain repositories"),
    },
    "maintenance",
  );
  return { results: new Map(ran.map((r) => [r.name, r])), events };
}

/**
 * status: phase 1 reads each repository on the host assigned to it, phase 2 what nobody read, then each
 * read is split to every host and job that uses the repository (status-reads.ts).
 */
async function runStatus(
  request: FleetRunRequest,
  context: HostRunContext,
  runHosts: RunHosts,
  repositories: RepositoryUse[],
  report: (results: HostResult[], uses: RepositoryUse[]) => Report,
): Promise<Report> {
  const readsOf = (assignment: ReadAssignment) => (host: { name: string }) => assignment.get(host.name);
  // A host that finished phase 1 is done only once the reads are split: its status may change then.
  const provisional = (event: ProgressEvent): ProgressEvent =>
    event.step === "done" && (event.status === "ok" || event.status === "partial")
      ? { host: event.host, step: "running", detail: "read; waiting for the fleet's shared reads" }
      : event;
  const plans = statusPlans(request.plan.hosts);
  let results = await runHosts(request.plan.hosts, {
    ...context,
    reads: readsOf(assignReads(plans)),
    onProgress: (event) => request.onProgress(provisional(event)),
  });
  let uses = repositories;
  const byHost = new Map(results.map((result) => [result.name, result]));
  const missing = assignMissingReads(uses, byHost);
  if (missing.size > 0 && !request.signal.aborted) {
    const phase2Uses: RepositoryUse[] = [];
    const read = await runHosts(
      request.plan.hosts.filter((plan) => missing.has(plan.host.name)),
      {
        ...context,
        reads: readsOf(missing),
        recordRepositories: (found) => phase2Uses.push(...found),
        onProgress: laterPhase(request.onProgress, "shared read", "connecting to read a shared repository"),
      },
      "maintenance",
    );
    const phase2Results = new Map(read.map((result) => [result.name, result]));
    uses = withPhase2Reads(uses, { assignment: missing, uses: phase2Uses, results: phase2Results });
    results = results.map((result) => {
      const second = phase2Results.get(result.name);
      return second === undefined
        ? result
        : { ...result, duration_ms: result.duration_ms + second.duration_ms };
    });
  }
  const fills = splitReads(uses);
  const hostPlans = new Map(request.plan.hosts.map((plan) => [plan.host.name, plan]));
  const now = new Date();
  results = results.map((result) => {
    const hostPlan = hostPlans.get(result.name);
    const plan = plans.get(result.name);
    if (hostPlan === undefined || plan === undefined || !finished(result)) return result;
    const settled = settleStatusHost(hostPlan, plan, result, fills.get(result.name), {
      now,
      maxAgeS: request.maxAgeS ?? null,
    });
    request.onProgress({
      host: settled.name,
      step: "done",
      status: settled.status,
      ...(settled.error === null ? {} : { detail: settled.error.message }),
    });
    return settled;
  });
  return report(results, uses);
}

/** Phase 2: the assigned hosts' second agent run, each with its maintain records (prune or check). */
async function runMaintenance(
  request: FleetRunRequest,
  context: HostRunContext,
  runHosts: RunHosts,
  assignments: readonly PruneAssignment[],
  action: PruneAssignment["action"],
): Promise<{ uses: RepositoryUse[]; results: Map<string, HostResult> }> {
  const phase2 = maintenancePlans(request.plan.hosts, assignments);
  const uses: RepositoryUse[] = [];
  const done = await runHosts(
    phase2.hosts,
    {
      ...context,
      maintain: phase2.maintain,
      recordRepositories: (found) => uses.push(...found),
      onProgress: laterPhase(request.onProgress, action, `connecting to ${action}`),
    },
    "maintenance",
  );
  return { uses, results: new Map(done.map((result) => [result.name, result])) };
}

/**
 * The progress of a later phase's run on a host reported done after phase 1: its connecting and its
 * end are more running steps of that host ("DOING ok"), not a second start and end.
 */
function laterPhase(
  onProgress: (event: ProgressEvent) => void,
  doing: string,
  connecting: string,
): (event: ProgressEvent) => void {
  return (event) =>
    onProgress(
      event.step === "done"
        ? { host: event.host, step: "running", detail: `${doing} ${event.status ?? "done"}` }
        : event.step === "connecting"
          ? { host: event.host, step: "running", detail: connecting }
          : event,
    );
}
