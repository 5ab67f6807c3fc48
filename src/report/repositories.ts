// The report's repositories[]: every repository the run's hosts use, one entry per repository.
import type { ResticFailureCode, ResticSnapshot } from "../agent/protocol.js";
import type { Repository, RepositoryAction, RepositoryHost, RunStatus } from "./report-schema.js";

/** One restic step on a repository, as the agent reported it. */
export interface StepOutcome {
  ok: boolean;
  duration_ms: number;
  error: string | null;
  /** check: what restic 0.18's check --json counted and named (errors null on older restic). */
  figures?: CheckFigures;
}

export interface CheckFigures {
  errors: number | null;
  broken_packs: string[];
}

/** status: one `restic snapshots` of a repository by one host, with restic's list when it worked. */
export interface SnapshotRead {
  ok: boolean;
  /** null: the read never ran (its host failed before it); error says why. */
  duration_ms: number | null;
  error: string | null;
  /** Why restic failed, when it says (repo_missing, repo_locked, repo_wrong_password). */
  code?: ResticFailureCode | null;
  snapshots: ResticSnapshot[];
  /** The whole repository (every host's snapshots of its jobs), or only this host's job (false). */
  whole: boolean;
}

/**
 * The one `restic prune` (phase 2 of prune) or `restic check` (phase 2 of verify) of a repository: where
 * it ran, or would run, and how it went.
 */
export interface RepositoryPrune {
  action: "prune" | "check";
  repositoryId: string;
  host: string;
  /** check: the --read-data-subset it read. */
  subset?: string;
  /** check: restic's figures, once it ran. */
  figures?: CheckFigures;
  status: RunStatus;
  duration_ms: number | null;
  error: string | null;
}

/** One plan entry of one host (a repository or copy destination of a job), as the run saw it. */
export interface RepositoryUse {
  host: string;
  job: string;
  /** The masked repository, as the plan's label. */
  label: string;
  /** A local path: host-local, unless the ids say otherwise. */
  local: boolean;
  /** The repository normalised for comparison (repositoryIdentity); never reported. */
  location: string;
  /** restic's repository id, or null when this host did not open it. */
  id: string | null;
  /** The plan entry (repo or copy id of the host's plan). */
  entry: string;
  /** The config gives it retention: prune forgets in it. */
  retention: boolean;
  /** prune: its forget (phase 1), when the agent reported one. */
  forget: StepOutcome | null;
  /** prune: the maintenance host that ran the forget on this host's behalf ([repositories]). */
  forgetHost?: string;
  /** prune: its repository's prune (phase 2) on this host, when the agent reported one. */
  prune: StepOutcome | null;
  /** status: this host's read of the repository through this entry, when it read it. */
  read: SnapshotRead | null;
  /** verify: its repository's check (phase 2) on this host, when the agent reported one. */
  check?: StepOutcome | null;
}

/**
 * Which repository each use is, as a key (one per use, in order): uses with the same restic id are one
 * repository, whatever their URLs. A use without an id joins the repository whose id was learned at the
 * same place (the same remote URL; the same path on the same host), if exactly one was; otherwise a
 * local path is one repository per host and path, a remote URL one per URL.
 */
export function repositoryKeys(uses: readonly RepositoryUse[]): { key: string; id: string | null }[] {
  const place = (use: RepositoryUse) =>
    use.local ? `local\n${use.host}\n${use.location}` : `remote\n${use.location}`;
  const idsAt = new Map<string, Set<string>>();
  for (const use of uses) {
    if (use.id === null) continue;
    const ids = idsAt.get(place(use)) ?? new Set<string>();
    idsAt.set(place(use), ids.add(use.id));
  }
  return uses.map((use) => {
    const known = idsAt.get(place(use));
    const id = use.id ?? (known?.size === 1 ? [...known][0]! : null);
    return { key: id === null ? `place\n${place(use)}` : `id\n${id}`, id };
  });
}

/** One entry per repository (repositoryKeys), with what the run did to it. */
export function groupRepositories(
  uses: RepositoryUse[],
  /**
   * prune: the forgets of the uses are actions, and these prunes; verify: these checks, with
   * `forgets: false` (none in other commands).
   */
  prune: { prunes: readonly RepositoryPrune[]; forgets?: boolean } | null = null,
): Repository[] {
  const prunes = prune?.prunes ?? [];
  const forgets = prune !== null && prune.forgets !== false;
  const keys = repositoryKeys(uses);
  const groups = new Map<
    string,
    { id: string | null; labels: string[]; hosts: Map<string, string[]>; uses: RepositoryUse[] }
  >();
  uses.forEach((use, i) => {
    const { key, id } = keys[i]!;
    const group = groups.get(key) ?? { id, labels: [], hosts: new Map<string, string[]>(), uses: [] };
    groups.set(key, group);
    group.uses.push(use);
    group.labels.push(use.label);
    const jobs = group.hosts.get(use.host) ?? [];
    group.hosts.set(use.host, jobs);
    if (!jobs.includes(use.job)) jobs.push(use.job);
  });
  const entries = [...groups.values()].map((group): Repository => ({
    id: group.id,
    // One label, whichever spellings the hosts use: the first in sort order, so runs agree.
    url: [...group.labels].sort(compare)[0] ?? "",
    hosts: [...group.hosts]
      .map(([host, jobs]): RepositoryHost => ({ host, jobs }))
      .sort((a, b) => compare(a.host, b.host)),
    actions: [
      ...(forgets ? group.uses.filter((use) => use.retention).map(forgetAction) : []),
      ...prunes
        .filter((prune) => prune.repositoryId === group.id)
        .map((prune): RepositoryAction => ({
          action: prune.action,
          host: prune.host,
          for_host: null,
          status: prune.status,
          duration_ms: prune.duration_ms,
          error: prune.error,
          ...(prune.subset === undefined ? {} : { subset: prune.subset }),
          ...prune.figures,
        })),
      ...group.uses.flatMap((use) => (use.read === null ? [] : [snapshotsAction(use, use.read)])),
    ],
    missing_forgets: !forgets
      ? []
      : [
          ...new Set(
            group.uses.filter((use) => use.retention && use.forget?.ok !== true).map((use) => use.host),
          ),
        ].sort(compare),
  }));
  return entries.sort(compareRepositories);
}

/** The order of repositories[]; host-local entries of one path differ only in their host. */
export function compareRepositories(a: Repository, b: Repository): number {
  return (
    compare(a.url, b.url) ||
    compare(a.id ?? "", b.id ?? "") ||
    compare(a.hosts[0]?.host ?? "", b.hosts[0]?.host ?? "")
  );
}

/** A use's forget (prune, phase 1): ok, failed, or not run at all ("skipped"). */
function forgetAction(use: RepositoryUse): RepositoryAction {
  const forget = use.forget;
  return {
    action: "forget",
    host: use.forgetHost ?? use.host,
    for_host: use.forgetHost === undefined ? null : use.host,
    status: forget === null ? "skipped" : forget.ok ? "ok" : "failed",
    duration_ms: forget?.duration_ms ?? null,
    error: forget === null ? `the forget of job ${use.job} did not run` : forget.error,
  };
}

/** status: a host's `restic snapshots` of the repository (for_host: that host's own snapshots only). */
function snapshotsAction(use: RepositoryUse, read: SnapshotRead): RepositoryAction {
  return {
    action: "snapshots",
    host: use.host,
    for_host: read.whole ? null : use.host,
    status: read.ok ? "ok" : "failed",
    duration_ms: read.duration_ms,
    error: read.error,
  };
}

/** Code-unit order, the same on every machine and locale. */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
