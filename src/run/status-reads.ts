// status, fleet-wide: one `restic snapshots` per repository, on one host, split per host and job here.
// A repository shared by 500 hosts is then listed once, not 500 times.
//
// Phase 1: before anything connects, each distinct remote URL (normalised: repositoryIdentity) is
// assigned to one selected host that uses it, and each host-local path to its own host. That host reads
// the whole repository (every host's snapshots of the jobs that use it); the others only report its
// identity. So the common case is one SSH session per host, as before.
// Phase 2, after every host: a repository that no host read (its assigned host was unreachable or
// failed) is read by a host that opened it in phase 1, in a second agent run, as prune's phase 2.
// Then every repository read is split to all its hosts and jobs, by restic's id.
import { agentPlan, type AgentPlan } from "../agent/plan-lines.js";
import {
  PROTOCOL_VERSION,
  type ResticFailureCode,
  type ResticSnapshot,
  type TrackedEvent,
} from "../agent/protocol.js";
import { repositoryIdentity } from "../config/rules.js";
import type { BackupPlan, HostPlan } from "../plan/build-plan.js";
import { compare, repositoryKeys, type RepositoryUse } from "../report/repositories.js";
import type { HostResult } from "../report/report-schema.js";
import { ADVISORY_WARNINGS, decideHostOutcome } from "./host-outcome.js";
import { trackJobs } from "./job-tracker.js";

/** Which entries each host reads whole: host → (plan id → the jobs read, of every host using it). */
export type ReadAssignment = Map<string, Map<string, string[]>>;

/** One host's and job's part of the reads: the snapshots of that host and job, or why there are none. */
export type LatestFill =
  { ok: true; snapshots: ResticSnapshot[] } | { ok: false; error: string; code: ResticFailureCode | null };

/**
 * Each host's status plan, built once per run for the assignment and the split: its plan ids depend on
 * the config alone, not on the run id or command options, so they are the ids the agents report.
 */
export function statusPlans(hosts: readonly HostPlan[]): Map<string, AgentPlan> {
  return new Map(hosts.map((hostPlan) => [hostPlan.host.name, agentPlan(hostPlan, "status", "plan")]));
}

/** The plan ids of a host's entries (repos and copy destinations) with their job and repository. */
function entriesOf(plan: AgentPlan): { entry: string; job: string; url: string }[] {
  return [
    ...[...plan.repos].map(([entry, r]) => ({ entry, job: r.job, url: r.url })),
    ...[...plan.copies].map(([entry, c]) => ({ entry, job: c.job, url: c.url })),
  ];
}

/**
 * Phase 1, from the plan: each host-local path is read on its host; each remote URL by one of the
 * selected hosts that use it, the one with the fewest shared reads so far, then the first in plan order
 * (different repositories are read side by side, on different hosts). One entry per host and
 * repository carries the read; its jobs are every job, of any host, that uses the repository.
 */
export function assignReads(plans: ReadonlyMap<string, AgentPlan>): ReadAssignment {
  const places = new Map<string, { host: string; entry: string; job: string }[]>();
  for (const [host, plan] of plans) {
    for (const { entry, job, url } of entriesOf(plan)) {
      const location = repositoryIdentity(url);
      const place = location.startsWith("/") ? `local\n${host}\n${location}` : `remote\n${location}`;
      places.set(place, [...(places.get(place) ?? []), { host, entry, job }]);
    }
  }
  const load = new Map<string, number>();
  const assignment: ReadAssignment = new Map();
  for (const [place, users] of places) {
    const hostsInOrder = [...new Set(users.map((u) => u.host))];
    const chosen = place.startsWith("local\n")
      ? hostsInOrder[0]
      : hostsInOrder.reduce((best, host) => ((load.get(host) ?? 0) < (load.get(best) ?? 0) ? host : best));
    const first = users.find((u) => u.host === chosen);
    if (chosen === undefined || first === undefined) continue;
    if (!place.startsWith("local\n")) load.set(chosen, (load.get(chosen) ?? 0) + 1);
    const reads = assignment.get(chosen) ?? new Map<string, string[]>();
    assignment.set(chosen, reads.set(first.entry, distinctJobs(users)));
  }
  return assignment;
}

/** A host whose agent ran its command to the end (phase 1 of status is only provisional otherwise). */
export function finished(result: HostResult | undefined): boolean {
  return (
    result !== undefined && result.error === null && (result.status === "ok" || result.status === "partial")
  );
}

/**
 * Phase 2: every repository (by restic id) that no host read whole, read by one host that opened it
 * in phase 1 and finished (the fewest reads first, then by name). A repository nobody opened has no
 * such host: its uses get the reason from splitReads.
 */
export function assignMissingReads(
  uses: readonly RepositoryUse[],
  results: ReadonlyMap<string, HostResult>,
): ReadAssignment {
  const keys = repositoryKeys(uses);
  const byKey = new Map<string, RepositoryUse[]>();
  uses.forEach((use, i) => {
    const key = keys[i]!.key;
    byKey.set(key, [...(byKey.get(key) ?? []), use]);
  });
  const load = new Map<string, number>();
  const assignment: ReadAssignment = new Map();
  for (const [key, members] of [...byKey].sort(([a], [b]) => compare(a, b))) {
    if (!key.startsWith("id\n") || members.some((use) => use.read?.whole === true)) continue;
    const chosen = members
      .filter((use) => use.id !== null && finished(results.get(use.host)))
      .sort((a, b) => (load.get(a.host) ?? 0) - (load.get(b.host) ?? 0) || compare(a.host, b.host))[0];
    if (chosen === undefined) continue;
    load.set(chosen.host, (load.get(chosen.host) ?? 0) + 1);
    const reads = assignment.get(chosen.host) ?? new Map<string, string[]>();
    assignment.set(chosen.host, reads.set(chosen.entry, distinctJobs(members)));
  }
  return assignment;
}

/**
 * The uses of phase 1 with phase 2's reads: a read phase 2 reported goes to its use; a read phase 2
 * assigned and never got (its host failed or was lost) is a failed read, with the host's reason.
 */
export function withPhase2Reads(
  uses: readonly RepositoryUse[],
  phase2: {
    assignment: ReadAssignment;
    uses: readonly RepositoryUse[];
    results: ReadonlyMap<string, HostResult>;
  },
): RepositoryUse[] {
  return uses.map((use) => {
    if (phase2.assignment.get(use.host)?.has(use.entry) !== true) return use;
    const read = phase2.uses.find((u) => u.host === use.host && u.entry === use.entry)?.read ?? null;
    if (read !== null) return { ...use, read };
    const result = phase2.results.get(use.host);
    // A finished agent that sent no read: its line was dropped (too long, or not valid; see its warnings).
    const why =
      result?.error?.message ??
      (finished(result)
        ? "the agent reported no read of it"
        : `the host ended ${result?.status ?? "stopped"}`);
    return {
      ...use,
      read: {
        ok: false,
        duration_ms: null,
        error: `the read did not run on ${use.host}: ${why}`,
        snapshots: [],
        whole: true,
      },
    };
  });
}

/**
 * Every use's part of the reads (host → plan id → fill): from the host's own read when it read only its
 * own snapshots (it could not identify the repository), otherwise from the repository's whole read, by
 * restic's id: its snapshots of this host (restic's hostname) and job (the job:<name> tag). A read that
 * failed is every use's error, naming the host that read it.
 */
export function splitReads(uses: readonly RepositoryUse[]): Map<string, Map<string, LatestFill>> {
  const keys = repositoryKeys(uses);
  const whole = new Map<string, RepositoryUse[]>();
  uses.forEach((use, i) => {
    if (use.read?.whole !== true) return;
    const key = keys[i]!.key;
    whole.set(key, [...(whole.get(key) ?? []), use]);
  });
  const fills = new Map<string, Map<string, LatestFill>>();
  uses.forEach((use, i) => {
    const fill = ((): LatestFill => {
      const own = use.read !== null && !use.read.whole ? use.read : null;
      if (own !== null)
        return own.ok
          ? { ok: true, snapshots: own.snapshots.filter((s) => isOf(s, use.host, use.job)) }
          : { ok: false, error: own.error ?? "cannot read the repository", code: own.code ?? null };
      // Two spellings of one repository may both have been read: the first that worked, by host name.
      const reads = [...(whole.get(keys[i]!.key) ?? [])].sort(
        (a, b) => Number(b.read?.ok) - Number(a.read?.ok) || compare(a.host, b.host),
      );
      const read = reads[0];
      if (read?.read == null)
        return { ok: false, error: `not read: no host that uses ${use.label} could open it`, code: null };
      if (!read.read.ok)
        return {
          ok: false,
          error: `${use.label} was read once for every host that uses it, on ${read.host}, and that failed: ${read.read.error ?? "no output"}`,
          code: read.read.code ?? null,
        };
      return { ok: true, snapshots: read.read.snapshots.filter((s) => isOf(s, use.host, use.job)) };
    })();
    const entries = fills.get(use.host) ?? new Map<string, LatestFill>();
    fills.set(use.host, entries.set(use.entry, fill));
  });
  return fills;
}

/**
 * A host's status once the reads are split: its latest snapshot per job and repository, the ages, the
 * staleness against maxAgeS, and the status and error these give (the same rules as a host that read
 * everything itself). A host whose agent did not finish keeps its result: unreachable stays unreachable.
 */
export function settleStatusHost(
  hostPlan: BackupPlan,
  plan: AgentPlan,
  result: HostResult,
  fills: ReadonlyMap<string, LatestFill> | undefined,
  options: { now: Date; maxAgeS: number | null },
): HostResult {
  if (!finished(result)) return result;
  const tracker = trackJobs(hostPlan, plan, "status", "skipped");
  for (const [entry, fill] of fills ?? []) {
    const job = plan.repos.get(entry)?.job ?? plan.copies.get(entry)?.job;
    if (job === undefined) continue;
    const base = { v: PROTOCOL_VERSION, job, repo: entry } as const;
    const event: TrackedEvent = fill.ok
      ? { ...base, event: "latest", snapshots: fill.snapshots }
      : { ...base, event: "latest_failed", message: fill.error, code: fill.code };
    tracker.apply(event);
  }
  tracker.finish(options.now, options.maxAgeS);
  const decided = decideHostOutcome({
    command: "status",
    jobs: tracker.jobs,
    initial: "skipped",
    cowWarnPercent: hostPlan.config.snapshot_settings.snapshot_cow_warn_percent,
    agentResult: { v: PROTOCOL_VERSION, event: "result", code: null, message: "" },
    checks: result.checks,
    hostWarnings: result.warnings.filter((w) => !ADVISORY_WARNINGS.has(w.code)),
  });
  return {
    ...result,
    status: decided.status,
    error:
      decided.error === null
        ? null
        : { code: decided.error.code, message: decided.error.message, hint: decided.error.hint },
    warnings: [...result.warnings, ...decided.warnings],
    jobs: tracker.jobs.map((job, i) => ({ ...job, status: decided.jobStatuses[i] ?? job.status })),
  };
}

/** restic's snapshot of this host (its --host, the inventory name) and job (its job:<name> tag). */
function isOf(snapshot: ResticSnapshot, host: string, job: string): boolean {
  return snapshot.hostname === host && (snapshot.tags ?? []).includes(`job:${job}`);
}

function distinctJobs(users: readonly { job: string }[]): string[] {
  return [...new Set(users.map((u) => u.job))].sort(compare);
}
