// prune with [repositories.NAME]: a declared repository's forgets and its prune run on its maintenance
// host, one scoped forget per host and job using it, so the hosts that back up into it need only
// append-only credentials. The backed-up hosts' own run (phase 1) only reads the repository's id.
import { planEntries, type MaintainedPlanEntry } from "../agent/plan-lines.js";
import type { AgentEvent } from "../agent/protocol.js";
import { repositoryIdentity } from "../config/rules.js";
import type { Retention } from "../config/model.js";
import type { FleetPlan, HostPlan } from "../plan/build-plan.js";
import { compare, type RepositoryPrune, type RepositoryUse } from "../report/repositories.js";
import type { HostResult } from "../report/report-schema.js";

/** The identities (repositoryIdentity) of the repositories the plan's maintenance hosts maintain. */
export function maintainedIdentities(plan: FleetPlan): Set<string> {
  return new Set((plan.repositories ?? []).map((r) => repositoryIdentity(r.declaration.url)));
}

/** One maintenance host's run: its maintained repositories, or why one cannot be maintained. */
export interface MaintenanceRun {
  hostPlan: HostPlan;
  envFile: string | null;
  entries: MaintainedPlanEntry[];
  /** What each entry id maintains. */
  targets: Map<string, MaintenanceTarget>;
}

/** A repository some host maintains: its name in messages, and which of the hosts' uses it is. */
export interface MaintenanceTarget {
  name: string;
  isUse: (use: RepositoryUse) => boolean;
}

export interface MaintenanceSchedule {
  runs: MaintenanceRun[];
  /** Repositories not maintained at all: no selected host read an id through url, or they disagree. */
  refused: {
    target: MaintenanceTarget;
    maintainer: string;
    uses: { host: string; job: string }[];
    reason: string;
  }[];
}

/**
 * Each maintenance host's run, after phase 1: the id its repositories must have is the one the
 * backed-up hosts read through url (they must agree), so a maintenance_url that opens another
 * repository is never maintained.
 */
export function scheduleMaintenance(plan: FleetPlan, uses: readonly RepositoryUse[]): MaintenanceSchedule {
  const runs = new Map<string, MaintenanceRun>();
  const refused: MaintenanceSchedule["refused"] = [];
  for (const repository of plan.repositories ?? []) {
    const { declaration, maintainer } = repository;
    const identity = repositoryIdentity(declaration.url);
    const ids = new Set(
      uses.filter((u) => u.location === identity && u.id !== null).map((u) => u.id as string),
    );
    const target: MaintenanceTarget = {
      name: declaration.path,
      isUse: (use) => use.location === identity,
    };
    if (ids.size !== 1) {
      refused.push({
        target,
        maintainer: maintainer.name,
        uses: repository.uses,
        reason:
          ids.size === 0
            ? `no selected host opened ${declaration.path}'s url, so nothing shows that maintenance_url on ${maintainer.name} is the same repository: not maintained`
            : `the hosts' url of ${declaration.path} opens ${ids.size} different repositories (host-local paths?): not maintained`,
      });
      continue;
    }
    addMaintained(runs, maintainer, declaration.env_file ?? maintainer.restic_env_file, target, {
      url: declaration.maintenance_url,
      password_file: declaration.password_file,
      repositoryId: [...ids][0] as string,
      forgets: forgetsOf(repository.uses),
    });
  }
  return { runs: [...runs.values()], refused };
}

/**
 * prune of the repositories no maintenance host maintains: each one that hosts previewed their forgets
 * in (phase 1 is `forget --dry-run`) is maintained by one of those hosts, through its own plan entry:
 * every such host's forget there, one after another, then one prune. So no forget waits for another
 * host's lock. The repositories are spread over the hosts (the fewest first, then by name). A host not
 * reached, or whose preview failed, is not forgotten for: its snapshots stay.
 */
export function schedulePrunes(
  hosts: readonly HostPlan[],
  uses: readonly RepositoryUse[],
  skip: ReadonlySet<string>,
): MaintenanceSchedule {
  const entriesOf = new Map(
    hosts.map((plan) => [plan.host.name, new Map(planEntries(plan).map((e) => [e.id, e]))]),
  );
  const forgotten = new Map<string, RepositoryUse[]>();
  for (const use of uses) {
    if (use.id === null || skip.has(use.id) || !use.retention || use.forget?.ok !== true) continue;
    forgotten.set(use.id, [...(forgotten.get(use.id) ?? []), use]);
  }
  const load = new Map<string, number>();
  const runs = new Map<string, MaintenanceRun>();
  for (const [repositoryId, found] of [...forgotten].sort(([a], [b]) => compare(a, b))) {
    const chosen = [...found].sort(
      (a, b) => (load.get(a.host) ?? 0) - (load.get(b.host) ?? 0) || compare(a.host, b.host),
    )[0];
    const hostPlan = hosts.find((plan) => plan.host.name === chosen?.host);
    const entry = chosen === undefined ? undefined : entriesOf.get(chosen.host)?.get(chosen.entry);
    if (chosen === undefined || hostPlan === undefined || entry === undefined) continue;
    load.set(chosen.host, (load.get(chosen.host) ?? 0) + 1);
    const keeps = found.map((use) => ({
      ...use,
      keep: entriesOf.get(use.host)?.get(use.entry)?.keep ?? null,
    }));
    addMaintained(
      runs,
      hostPlan.host,
      hostPlan.host.restic_env_file,
      { name: chosen.label, isUse: (use) => use.id === repositoryId },
      { url: entry.url, password_file: entry.password_file, repositoryId, forgets: forgetsOf(keeps) },
    );
  }
  return { runs: [...runs.values()], refused: [] };
}

/** One maintained repository more in its host's run (one run per host, its entries m1, m2, …). */
function addMaintained(
  runs: Map<string, MaintenanceRun>,
  host: HostPlan["host"],
  envFile: string | null,
  target: MaintenanceTarget,
  entry: Omit<MaintainedPlanEntry, "id">,
): void {
  let run = runs.get(host.name);
  if (run === undefined) {
    // The maintenance run does none of the host's own jobs; the report merges it with them.
    run = { hostPlan: { host, config: null, jobs: [] }, envFile, entries: [], targets: new Map() };
    runs.set(host.name, run);
  }
  const id = `m${run.entries.length + 1}`;
  run.entries.push({ id, ...entry });
  run.targets.set(id, target);
}

/** One forget per host and job (the first keep values given), for those with keep values. */
function forgetsOf(
  uses: readonly { host: string; job: string; keep: Retention | null }[],
): MaintainedPlanEntry["forgets"] {
  const forgets = new Map<string, MaintainedPlanEntry["forgets"][number]>();
  for (const { host, job, keep } of uses)
    if (keep !== null && !forgets.has(`${host}\n${job}`)) forgets.set(`${host}\n${job}`, { host, job, keep });
  return [...forgets.values()];
}

/** What a maintenance host reported: each forget it ran for another host's job, and each prune. */
export interface MaintenanceEvents {
  forgets: Extract<AgentEvent, { event: "forget_for_done" }>[];
  prunes: Extract<AgentEvent, { event: "repo_pruned" }>[];
}

/**
 * The maintenance runs' outcome in the report:
 * - each backed-up host's prune entry of a maintained repository takes the forget run for it (kept,
 *   removed, or why not), and its use records that forget, as run by the maintenance host;
 * - each maintained repository gets its prune, by the maintenance host;
 * - the maintenance host fails when a forget or prune it ran failed (the host that ran it fails, as
 *   with phase 2); the backed-up hosts keep their own status.
 * A maintenance host without a config of its own appears in the report as a host without jobs.
 */
export function applyMaintenance(
  schedule: MaintenanceSchedule,
  outcome: { results: ReadonlyMap<string, HostResult>; events: ReadonlyMap<string, MaintenanceEvents> },
  report: { results: HostResult[]; uses: RepositoryUse[]; dryRun: boolean },
): { results: HostResult[]; prunes: RepositoryPrune[] } {
  const prunes: RepositoryPrune[] = [];
  const results = [...report.results];
  const resultOf = (name: string) => results.find((r) => r.name === name);
  const mark = (
    target: MaintenanceTarget,
    by: string,
    forHost: string,
    job: string,
    apply: ForgetOutcome,
  ) => {
    const uses = report.uses.filter((u) => u.host === forHost && u.job === job && target.isUse(u));
    for (const use of uses) {
      use.forget = apply.ran
        ? { ok: apply.ok, duration_ms: apply.duration_ms ?? 0, error: apply.error }
        : null;
      if (by !== forHost) use.forgetHost = by;
      setForget(resultOf(forHost), job, use.label, { ...apply, dryRun: apply.dryRun ?? report.dryRun });
    }
  };
  // Not maintained because the hosts could not show which repository it is: their access to it is
  // what is broken, so the reachable ones fail (never a silent skip).
  for (const { target, maintainer, uses, reason } of schedule.refused)
    for (const use of uses) {
      mark(target, maintainer, use.host, use.job, {
        ok: false,
        ran: true,
        error: reason,
        duration_ms: null,
      });
      const result = resultOf(use.host);
      if (result !== undefined && (result.status === "ok" || result.status === "partial")) {
        result.status = "failed";
        result.error = {
          code: "prune_failed",
          message: reason,
          hint: `check that ${use.host} can open the repository (rlvm-fleet check)`,
        };
        const job = result.jobs.find((j) => j.name === use.job);
        if (job !== undefined) job.status = "failed";
      }
    }
  for (const run of schedule.runs) {
    const name = run.hostPlan.host.name;
    const result = outcome.results.get(name);
    const events = outcome.events.get(name) ?? { forgets: [], prunes: [] };
    const failures: string[] = [];
    for (const entry of run.entries) {
      const target = run.targets.get(entry.id) as MaintenanceTarget;
      for (const forget of entry.forgets) {
        const event = events.forgets.find(
          (e) => e.repo === entry.id && e.for_hosts.includes(forget.host) && e.job === forget.job,
        );
        if (event === undefined) {
          const why = `the forget of ${forget.host}'s job ${forget.job} was to run on ${name}, which ${result?.status === "unreachable" ? "was not reached" : "did not run it"}${result?.error ? `: ${result.error.message}` : ""}`;
          mark(target, name, forget.host, forget.job, {
            ok: false,
            ran: false,
            error: why,
            duration_ms: null,
          });
          continue;
        }
        // One forget may be several hosts': each group is one host's snapshots (--group-by host,paths).
        const groups = event.forget.filter(
          (g) => g.host === forget.host || (g.host == null && event.for_hosts.length === 1),
        );
        mark(target, name, forget.host, forget.job, {
          ok: event.ok,
          ran: true,
          error: event.ok ? null : forget.host === name ? event.message : `on ${name}: ${event.message}`,
          duration_ms: event.duration_ms,
          kept: groups.flatMap((g) => g.keep ?? []).length,
          removed: groups.flatMap((g) => g.remove ?? []).map((s) => s.short_id),
          dryRun: event.dry_run,
        });
        if (!event.ok) failures.push(`${forget.host}/${forget.job}: ${event.message}`);
      }
      const pruned = events.prunes.find((e) => e.repo === entry.id);
      const base = { action: "prune" as const, repositoryId: entry.repositoryId, host: name };
      if (report.dryRun) prunes.push({ ...base, status: "planned", duration_ms: null, error: null });
      else if (pruned !== undefined) {
        prunes.push({
          ...base,
          status: pruned.ok ? "ok" : "failed",
          duration_ms: pruned.duration_ms,
          error: pruned.ok ? null : pruned.message,
        });
        if (!pruned.ok) failures.push(`${target.name}: ${pruned.message}`);
      } else
        prunes.push({
          ...base,
          status: result?.status === "skipped" ? "skipped" : "failed",
          duration_ms: null,
          error: `the prune did not run on ${name}: ${result?.error?.message ?? "the run was stopped"}`,
        });
    }
    if (result === undefined) continue;
    const maintenance: HostResult =
      failures.length > 0 && result.status === "ok"
        ? {
            ...result,
            status: "failed",
            error: {
              code: "prune_failed",
              message: `maintaining a repository failed: ${failures.join("; ")}`,
              hint: "read restic's error above; the snapshots it did not forget are kept",
            },
          }
        : result;
    const own = resultOf(name);
    if (own === undefined) results.push(maintenance);
    else results[results.indexOf(own)] = mergeMaintenance(own, maintenance);
  }
  return { results, prunes };
}

/** The forget a maintenance host ran (or did not run) for one host and job. */
interface ForgetOutcome {
  ok: boolean;
  ran: boolean;
  error: string | null;
  duration_ms: number | null;
  kept?: number;
  removed?: string[];
  dryRun?: boolean;
}

/** A backed-up host's prune entries of one maintained repository and job: the forget its maintainer ran. */
function setForget(
  result: HostResult | undefined,
  jobName: string,
  label: string,
  forget: ForgetOutcome,
): void {
  const job = result?.jobs.find((j) => j.name === jobName);
  for (const entry of job?.prunes.filter((p) => p.repo === label) ?? []) {
    Object.assign(entry, {
      status: forget.ok ? "ok" : forget.ran ? "failed" : "skipped",
      kept: forget.ok ? (forget.kept ?? null) : null,
      removed: forget.ok ? (forget.removed?.length ?? null) : null,
      removed_ids: forget.ok ? (forget.removed ?? []) : [],
      dry_run: forget.dryRun ?? entry.dry_run,
      error: forget.error,
    });
  }
}

/** A host that backs up and maintains: its own result, made worse by a failed maintenance run. */
function mergeMaintenance(own: HostResult, maintenance: HostResult): HostResult {
  const worse = maintenance.status === "failed" || maintenance.status === "unreachable";
  if (!worse || own.status === "failed" || own.status === "unreachable") {
    return { ...own, duration_ms: own.duration_ms + maintenance.duration_ms };
  }
  return {
    ...own,
    status: "failed",
    error:
      maintenance.error === null
        ? own.error
        : { ...maintenance.error, message: `maintaining repositories: ${maintenance.error.message}` },
    duration_ms: own.duration_ms + maintenance.duration_ms,
  };
}

/**
 * A real prune's phase 1 forgets were previews (`forget --dry-run`): until a maintenance run reports
 * the forget it ran, an entry is not forgotten (and its use has no forget), so that a forget that never
 * ran is never reported as done.
 */
export function forgetPreviews(results: readonly HostResult[], uses: RepositoryUse[]): void {
  for (const use of uses) if (use.forget?.ok === true) use.forget = null;
  for (const entry of results.flatMap((r) => r.jobs.flatMap((j) => j.prunes))) {
    if (entry.status === "ok")
      Object.assign(entry, {
        status: "skipped",
        kept: null,
        removed: null,
        removed_ids: [],
        error: "not forgotten: no host of its repository ran its forget",
      });
    entry.dry_run = false;
  }
}

/** A dry run's prunes: where each repository's prune would run. */
export function plannedPrunes(schedule: MaintenanceSchedule): RepositoryPrune[] {
  return schedule.runs.flatMap((run) =>
    run.entries.map((entry): RepositoryPrune => ({
      action: "prune",
      repositoryId: entry.repositoryId,
      host: run.hostPlan.host.name,
      status: "planned",
      duration_ms: null,
      error: null,
    })),
  );
}
