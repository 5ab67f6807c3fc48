// One host's run: connect, deliver the agent, feed it the plan, read its events, clean up. Whatever
// happens becomes this host's result; nothing here throws to the caller.
import { HostError } from "../errors.js";
import {
  agentPayload,
  bootstrapArgv,
  diagnoseBootstrapExit,
  READY_LINE,
  type AgentFile,
} from "../agent/deliver.js";
import { installedAgentArgv, installedAgentProblem, installedCheckArgv } from "../agent/installed-agent.js";
import { parseEvents, type EventParser } from "../agent/parse-events.js";
import {
  agentPlan,
  maintenancePlan,
  type AgentCommand,
  type AgentPlan,
  type InstallRequest,
  type MaintainedPlanEntry,
} from "../agent/plan-lines.js";
import type { AgentEvent, ResultEvent } from "../agent/protocol.js";
import type { HostPlan } from "../plan/build-plan.js";
import { DEFAULT_COW_WARN_PERCENT } from "../config/model.js";
import { trackJobs, type JobTracker, type TrackedCommand } from "./job-tracker.js";
import { trackRepositoryIds, type RepositoryIds } from "./repository-ids.js";
import type { RepositoryUse } from "../report/repositories.js";
import { longestSecret, maskThenKeepEnd, maskThenKeepStart, redactDeep, secretsOf } from "./redact.js";
import type { ProgressEvent } from "../report/progress-event.js";
import type { HostResult } from "../report/report-schema.js";
import { Become } from "../transport/become.js";
import { shellCommand } from "../transport/remote-command.js";
import {
  connectSsh,
  type ConnectTarget,
  type RemoteExit,
  type RemoteProcess,
  type SshSession,
} from "../transport/ssh-connection.js";
import type { LocalFiles } from "./local-files.js";
import { connectTargetOf, type JumpPool } from "../transport/jump-pool.js";
import { ADVISORY_WARNINGS, decideCutShort, decideHostOutcome } from "./host-outcome.js";
import { hintForCheck } from "./hints.js";
import { describeEvent } from "./describe-event.js";
import { untestedResticWarning } from "./restic-compatibility.js";
import type { HostStart } from "./schedule-hosts.js";

export interface HostRunContext {
  runId: string;
  command: AgentCommand;
  /** Which results the report lists per job, and how a job the agent never reports on appears. */
  jobs: { command: TrackedCommand; initial: "skipped" | "planned" } | null;
  /** prune: forget --dry-run only; install: check and say, change nothing. */
  dryRun: boolean;
  /** prune/verify, phase 2: the entries whose repositories this host prunes or checks (plan id → repository id). */
  maintain?: (host: HostPlan["host"]) => ReadonlyMap<string, string> | undefined;
  /** verify: restic check's --read-data-subset and the restore drill's files per job. */
  verify?: { subset: string; restoreSample: number };
  /** backup --verify-sample N: files per job for every host, instead of each host's verify_sample. */
  verifySample?: number;
  /** status: the entries whose repositories this host reads whole for the fleet (plan id → jobs). */
  reads?: (host: HostPlan["host"]) => ReadonlyMap<string, readonly string[]> | undefined;
  /** prune: repositories (repositoryIdentity) forgotten and pruned on their maintenance host, not here. */
  maintainedElsewhere?: ReadonlySet<string>;
  /** prune on a maintenance host: its maintained repositories instead of its own jobs. */
  maintained?: (
    host: HostPlan["host"],
  ) => { envFile: string | null; entries: readonly MaintainedPlanEntry[] } | undefined;
  /** A maintenance host's forget_for_done and repo_pruned events, as they arrive. */
  onMaintenanceEvent?: (
    host: string,
    event: Extract<AgentEvent, { event: "forget_for_done" | "repo_pruned" }>,
  ) => void;
  /** install: the sudo rule and allow-list to install, per host. */
  install?: (host: HostPlan["host"]) => InstallRequest;
  /** status: a job whose latest snapshot is older than this (or missing) is stale. */
  maxAgeS: number | null;
  agent: AgentFile;
  files: LocalFiles;
  agentSocket: string | null;
  signal: AbortSignal;
  onProgress: (event: ProgressEvent) => void;
  connect?: (target: ConnectTarget) => Promise<SshSession>;
  /** The run's bastion connections, for hosts with proxy_jump. */
  jumps?: JumpPool;
  /** Called once per host as it ends: its repositories, with the ids its agent read (none if unreached). */
  recordRepositories?: (uses: RepositoryUse[]) => void;
  /** Tests: the grace period of a stopped agent, and how long after it the connection is destroyed. */
  timing?: { stopGraceMs?: number; forceEndMs?: number };
}

const STDERR_TAIL = 4096;
/**
 * A line of the host's stderr (a `--verbose` log line) is shown up to this many characters; the rest
 * of it, up to the next newline, is dropped, so a host that never sends a newline costs bounded memory.
 */
export const STDERR_LINE_MAX = 4096;
/** How long a stopped agent gets to clean up and report before its channel is closed. */
const STOP_GRACE_MS = 60_000;
/**
 * How long after the grace period a host that still has not closed the channel gets before the
 * connection is destroyed under it: a stopped run ends within grace + this, whatever the host does.
 */
const FORCE_END_MS = 30_000;

export async function runHost(
  hostPlan: HostPlan,
  ctx: HostRunContext,
  start: HostStart = { splayMs: null, stopped: null },
): Promise<HostResult> {
  const { host } = hostPlan;
  const started = Date.now();
  const result: HostResult = {
    name: host.name,
    address: host.address,
    status: "ok",
    error: null,
    duration_ms: 0,
    facts: null,
    checks: [],
    warnings: [],
    jobs: [],
    ...(start.splayMs === null ? {} : { splay_ms: start.splayMs }),
  };
  // Built before connecting: a host that is never reached still uses its repositories.
  const maintain = ctx.maintain?.(host);
  const reads = ctx.reads?.(host);
  const maintained = ctx.maintained?.(host);
  const verifySample = ctx.command === "backup" ? (ctx.verifySample ?? host.verify_sample) : 0;
  const plan =
    maintained !== undefined
      ? maintenancePlan(host, ctx.runId, {
          dryRun: ctx.dryRun,
          envFile: maintained.envFile,
          repositories: maintained.entries,
        })
      : agentPlan(hostPlan, ctx.command, ctx.runId, {
          dryRun: ctx.dryRun,
          ...(ctx.install === undefined ? {} : { install: ctx.install(host) }),
          ...(maintain === undefined ? {} : { maintain }),
          ...(ctx.verify === undefined ? {} : { verify: ctx.verify }),
          verifySample,
          ...(reads === undefined ? {} : { reads }),
          ...(ctx.maintainedElsewhere === undefined ? {} : { maintainedElsewhere: ctx.maintainedElsewhere }),
        });
  const repositoryIds = trackRepositoryIds(host.name, plan);
  let tracker: JobTracker | null = null;
  const finish = (error: HostError | null, status?: HostResult["status"]): HostResult => {
    ctx.recordRepositories?.(repositoryIds.uses(tracker === null ? undefined : tracker.outcome));
    if (error !== null) {
      result.error = { code: error.code, message: error.message, hint: error.hint };
      result.status = status ?? error.status;
    } else if (status !== undefined) result.status = status;
    result.duration_ms = Date.now() - started;
    ctx.onProgress({ host: host.name, step: "done", status: result.status, detail: result.error?.message });
    return result;
  };

  if (start.stopped !== null)
    return finish(
      new HostError(
        "max_fail",
        start.stopped,
        "fix the failed hosts first; --retry-file names every host to run again",
      ),
    );
  if (ctx.signal.aborted) return finish(null, "skipped");
  ctx.onProgress({ host: host.name, step: "connecting" });
  let session: SshSession;
  try {
    session = await (ctx.connect ?? connectSsh)({
      ...connectTargetOf(host, ctx.files, ctx.agentSocket),
      ...(host.jump.length > 0 && ctx.jumps !== undefined
        ? { openSock: () => (ctx.jumps as JumpPool).open(host.jump, host.address, host.port) }
        : {}),
    });
  } catch (error) {
    return finish(asHostError(error));
  }
  if (session.hostKeyNote !== null)
    result.warnings.push({ code: "host_key_added", message: session.hostKeyNote });
  for (const message of session.hostKeyWarnings ?? [])
    result.warnings.push({ code: "known_hosts_line_ignored", message });
  // Interrupted while connecting: nothing ran here (the abort listener below would never fire).
  if (ctx.signal.aborted) {
    session.close();
    return finish(null, "skipped");
  }

  tracker =
    ctx.jobs === null
      ? null
      : trackJobs(
          hostPlan,
          plan,
          ctx.jobs.command,
          ctx.jobs.initial,
          maintain === undefined ? (ctx.verify?.restoreSample ?? verifySample) : 0,
        );
  if (tracker !== null) result.jobs = tracker.jobs;
  try {
    const outcome = await new AgentRun(session, hostPlan, plan, tracker, repositoryIds, ctx, result).run();
    tracker?.finish(new Date(), ctx.maxAgeS);
    const facts = {
      command: ctx.command,
      jobs: result.jobs,
      initial: ctx.jobs?.initial ?? "skipped",
      cowWarnPercent:
        hostPlan.config?.snapshot_settings.snapshot_cow_warn_percent ?? DEFAULT_COW_WARN_PERCENT,
    } as const;
    const decided =
      outcome.error === null
        ? decideHostOutcome({
            ...facts,
            agentResult: outcome.result,
            checks: result.checks,
            hostWarnings: result.warnings.filter((w) => !ADVISORY_WARNINGS.has(w.code)),
            failedChecks: tracker?.failedChecks() ?? [],
          })
        : decideCutShort(facts, outcome.error);
    decided.jobStatuses.forEach((status, i) => {
      const job = result.jobs[i];
      if (job !== undefined) job.status = status;
    });
    result.warnings.push(...decided.warnings);
    return finish(decided.error, decided.status);
  } finally {
    session.close();
  }
}

function asHostError(error: unknown): HostError {
  if (error instanceof HostError) return error;
  return new HostError(
    "agent_failed",
    `unexpected error: ${(error as Error).message ?? String(error)}`,
    "this is a bug in rlvm-fleet; please report it",
  );
}

/** How the agent's part of the run ended: its result, or why there is none. */
type AgentOutcome = { error: HostError; result?: undefined } | { error: null; result: ResultEvent };

/**
 * One agent on one exec channel, phase by phase:
 *
 *   opening    the exec request is on its way.
 *   bootstrap  the bootstrap runs; sudo may ask for the password first (answered once), so the agent
 *              and its plan are sent only when the bootstrap prints its ready line. Without a
 *              password nothing can consume the input early: the payload goes out at once and this
 *              phase is skipped.
 *   running    the agent runs; its events fill the host's result until its `result` event.
 *   ending     the result is in: stdin is closed, which lets the agent and the bootstrap exit.
 *   stopping   stopped before its end (run_timeout, abort, a second result, a wrong password):
 *              stdin is closed, which the agent watches for; it stops restic, undoes every step and
 *              sends its last events, which the report keeps. Only if it does not finish within the
 *              grace period is the channel closed under it (it still cleans up: its stdin is gone).
 *
 * Whatever the phase, the run ends when the channel closes, in `settle`; a host that keeps the
 * channel open 30 s past the grace period has its connection destroyed, and the run ends then.
 */
class AgentRun {
  private phase: "opening" | "bootstrap" | "running" | "ending" | "stopping" = "opening";
  private process: RemoteProcess | null = null;
  private agentResult: ResultEvent | null = null;
  /** Why the run was stopped: this, not the agent's result, is the outcome. */
  private stopReason: HostError | null = null;
  private noise = 0;
  /** The first event that broke the protocol: the run is failed whatever the agent says after it. */
  private protocolError: HostError | null = null;
  private stderrTail = "";
  /** The start of the host's stderr fell out of stderrTail. */
  private stderrTailCut = false;
  /** The current stderr line: at most STDERR_LINE_MAX plus the longest secret's length. */
  private stderrLine = "";
  /** The current stderr line was longer than the buffer keeps. */
  private stderrLineCut = false;
  private runTimer: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  private forceTimer: NodeJS.Timeout | undefined;
  /** Resolves when the host kept the channel open past the grace period and the connection was destroyed. */
  private readonly forced: Promise<"forced">;
  private resolveForced: (value: "forced") => void = () => {};
  private readonly become: Become;
  /** agent = "installed": sudo runs the installed agent (checked first); nothing is uploaded. */
  private readonly installed: boolean;
  private readonly secrets: string[];
  /** How much more than its bound a stderr buffer keeps, so that it is masked before it is cut. */
  private readonly secretMargin: number;
  private readonly parser: EventParser;
  private readonly onAbort = () =>
    this.stop(
      new HostError(
        "interrupted",
        "interrupted before the host finished; the agent was stopped",
        "run the command again",
      ),
    );

  constructor(
    private readonly session: SshSession,
    private readonly hostPlan: HostPlan,
    private readonly plan: AgentPlan,
    private readonly tracker: JobTracker | null,
    private readonly repositoryIds: RepositoryIds,
    private readonly ctx: HostRunContext,
    private readonly result: HostResult,
  ) {
    this.forced = new Promise((resolve) => (this.resolveForced = resolve));
    const { host } = hostPlan;
    const password = host.become === "sudo" ? ctx.files.secret(host.become_password_file) : null;
    // install-agent always uploads: it is how an installed agent gets there, or is replaced.
    this.installed = host.agent === "installed" && ctx.command !== "install";
    const refusedHint = this.installed
      ? `the login user's sudo rule must allow ${installedAgentArgv("RUN_ID", "HOST").slice(0, 2).join(" ")} …: run rlvm-fleet install-agent for this host`
      : undefined;
    this.become = new Become(
      host.become === "none"
        ? { method: "none" }
        : { method: "sudo", password, ...(refusedHint === undefined ? {} : { refusedHint }) },
    );
    this.secrets = secretsOf(
      hostPlan,
      password,
      (ctx.maintained?.(host)?.entries ?? []).map((entry) => entry.url),
    );
    this.secretMargin = longestSecret(this.secrets);
    this.parser = parseEvents(
      (event) => this.onEvent(redactDeep(event, this.secrets)),
      (line) => this.onNoise(line),
      (event, reason) =>
        (this.protocolError ??= new HostError(
          "agent_protocol",
          `the agent sent an invalid ${event} event (${reason})`,
          "the agent and the controller disagree about the protocol: check that the agent that ran is this controller's",
        )),
    );
  }

  async run(): Promise<AgentOutcome> {
    const { host } = this.hostPlan;
    this.runTimer = setTimeout(
      () =>
        this.stop(
          new HostError(
            "timeout",
            `the run did not finish within run_timeout (${host.run_timeout_s} s); the agent was stopped`,
            "raise run_timeout for this host, or find out what makes it slow",
            false,
            "failed",
          ),
        ),
      host.run_timeout_s * 1000,
    );
    this.ctx.signal.addEventListener("abort", this.onAbort, { once: true });
    if (this.installed) {
      const checked = await Promise.race([this.checkInstalledAgent(), this.forced]);
      if (checked === "forced") return this.settle(null);
      const problem = this.stopReason ?? checked;
      if (problem !== null) {
        this.release();
        return { error: problem };
      }
    }
    const command = this.become.command(
      this.installed
        ? installedAgentArgv(this.ctx.runId, host.name)
        : bootstrapArgv(this.ctx.runId, host.name, this.ctx.agent),
    );
    try {
      // An exec the host never answers must not hold the run either.
      const opened = await Promise.race([this.session.exec(command), this.forced]);
      if (opened === "forced") return this.settle(null);
      this.process = opened;
    } catch (error) {
      this.release();
      return {
        error: new HostError(
          "connection_lost",
          `could not start the agent: ${error instanceof Error ? error.message : String(error)}`,
          "check sshd's logs on the host",
        ),
      };
    }
    if (this.stopReason !== null) this.beginStopping();
    else if (this.become.readsPassword) this.phase = "bootstrap";
    else this.sendPayload();
    // Only now, with the phase set: output that came with the exec's reply waits in the channel.
    this.process.onStdout((chunk) => this.parser.push(chunk));
    this.process.onStderr((chunk) => this.onStderr(chunk));
    const exit = await Promise.race([this.process.closed, this.forced]);
    return this.settle(exit === "forced" ? null : exit);
  }

  /**
   * agent = "installed": the installed file and the directories above it are root's, and its sha256 is
   * the shipped agent's, checked as the login user before sudo runs it; null when it may run.
   */
  private async checkInstalledAgent(): Promise<HostError | null> {
    let output = "";
    try {
      const check = await this.session.exec(shellCommand(installedCheckArgv()));
      check.onStdout((chunk) => {
        if (output.length < 4096) output += chunk.toString();
      });
      check.onStderr(() => {});
      check.end();
      await check.closed;
    } catch (error) {
      return new HostError(
        "connection_lost",
        `could not check the installed agent: ${error instanceof Error ? error.message : String(error)}`,
        "check sshd's logs on the host",
      );
    }
    return installedAgentProblem(output, this.ctx.agent, this.hostPlan.host.name);
  }

  /** The one place the run ends: the channel has closed, with or without an exit status. */
  private settle(exit: RemoteExit | null): AgentOutcome {
    this.release();
    this.parser.end();
    if (this.stopReason !== null) return { error: this.stopReason };
    if (this.protocolError !== null) return { error: this.protocolError };
    if (this.agentResult !== null) {
      if (this.noise > 0)
        this.result.warnings.push({
          code: "agent_noise",
          message: `${this.noise} line(s) of the agent's output were not events`,
        });
      return { error: null, result: this.agentResult };
    }
    if (exit === null || exit.signal !== null) {
      // No exit status, or the remote session was killed: the connection, not the agent, ended it.
      const bastion = this.session.lostBecause?.() ?? null;
      if (bastion !== null) return { error: bastion };
      return {
        error: new HostError(
          "connection_lost",
          `the connection was lost while the agent ran${exit === null ? "" : ` (the remote session ended by SIG${exit.signal})`}`,
          "check the host and the network; the agent stops and cleans up when its connection goes, and the next run removes anything a crash left",
        ),
      };
    }
    const stderr = this.maskedStderrTail();
    return {
      error:
        this.become.diagnose(exit.code, stderr) ??
        diagnoseBootstrapExit(exit.code, stderr) ??
        endedWithoutResult(exit.code, stderr),
    };
  }

  private release(): void {
    clearTimeout(this.runTimer);
    clearTimeout(this.graceTimer);
    clearTimeout(this.forceTimer);
    this.ctx.signal.removeEventListener("abort", this.onAbort);
  }

  /** Stop the agent (see the class comment); the first reason given is the one reported. */
  private stop(reason: HostError): void {
    this.stopReason ??= reason;
    // Whatever the host does (it may answer keepalives and ignore the channel's close), the run ends.
    const graceMs = this.ctx.timing?.stopGraceMs ?? STOP_GRACE_MS;
    const forceMs = this.ctx.timing?.forceEndMs ?? FORCE_END_MS;
    this.forceTimer ??= setTimeout(() => this.forceEnd(graceMs + forceMs), graceMs + forceMs);
    // Still opening: `run` closes the input as soon as there is a channel.
    if (this.process !== null) this.beginStopping();
  }

  private forceEnd(afterMs: number): void {
    this.result.warnings.push({
      code: "connection_destroyed",
      message: `the host did not end the agent's channel within ${afterMs / 1000} s of the stop; the connection was destroyed`,
    });
    this.session.destroy();
    this.resolveForced("forced");
  }

  private beginStopping(): void {
    const process = this.process;
    if (process === null) return;
    this.phase = "stopping";
    process.end();
    this.graceTimer ??= setTimeout(() => process.close(), this.ctx.timing?.stopGraceMs ?? STOP_GRACE_MS);
  }

  private sendPayload(): void {
    if (this.process === null) return;
    this.phase = "running";
    for (const piece of agentPayload(this.ctx.runId, this.installed ? null : this.ctx.agent, this.plan.lines))
      this.process.write(piece);
  }

  private onNoise(line: string): void {
    if (line !== `${READY_LINE} ${this.ctx.runId}`) {
      this.noise++;
      return;
    }
    // sudo is done (the bootstrap runs as root): what follows on stderr is the bootstrap's and the
    // agent's, and a prompt-like line in it is only text, never a reason to write the password.
    this.become.sudoDone();
    if (this.phase === "bootstrap") this.sendPayload();
  }

  private onStderr(chunk: Buffer): void {
    const { text, reply, refused } = this.become.readStderr(chunk.toString());
    if (refused !== null) return this.stop(refused);
    // Only while the bootstrap waits: after a stop, stdin is closed; after the ready line, sudo is done.
    if (reply !== null && this.phase === "bootstrap") this.process?.write(reply);
    const tail = this.stderrTail + text;
    const keep = STDERR_TAIL + this.secretMargin;
    if (tail.length > keep) this.stderrTailCut = true;
    this.stderrTail = tail.slice(-keep);
    let start = 0;
    for (let end = text.indexOf("\n"); end !== -1; end = text.indexOf("\n", start)) {
      this.keepStderr(text, start, end);
      this.endStderrLine();
      start = end + 1;
    }
    this.keepStderr(text, start, text.length);
  }

  /** Adds text[start, end) to the current line, as much as its bound leaves room for. */
  private keepStderr(text: string, start: number, end: number): void {
    const room = STDERR_LINE_MAX + this.secretMargin - this.stderrLine.length;
    if (end - start > room) this.stderrLineCut = true;
    if (room > 0) this.stderrLine += text.slice(start, start + Math.min(room, end - start));
  }

  /** The line is complete: masked first, then cut (a cut never splits a secret it then cannot mask). */
  private endStderrLine(): void {
    const kept = maskThenKeepStart(this.stderrLine, this.secrets, STDERR_LINE_MAX, this.stderrLineCut);
    const line = kept.cut ? `${kept.text} … (line cut at ${STDERR_LINE_MAX} characters)` : kept.text;
    this.stderrLine = "";
    this.stderrLineCut = false;
    if (line.trim() !== "") this.progress("log", line);
  }

  /** The end of the host's stderr, masked before it is cut: a secret across the cut leaks no piece. */
  private maskedStderrTail(): string {
    return maskThenKeepEnd(this.stderrTail, this.secrets, STDERR_TAIL, this.stderrTailCut).text;
  }

  private onEvent(event: AgentEvent): void {
    switch (event.event) {
      case "agent_start":
        if (event.run_id !== this.ctx.runId) {
          this.stop(
            new HostError(
              "agent_protocol",
              `the agent reports run ${event.run_id}, not ${this.ctx.runId}`,
              "this is a bug in rlvm-fleet",
            ),
          );
          return;
        }
        this.result.facts = event.facts;
        if (this.ctx.command === "preflight") {
          const untested = untestedResticWarning(event.facts.restic);
          if (untested !== null) this.result.warnings.push({ code: "restic_untested", message: untested });
        }
        break;
      case "check": {
        // parseEvents validated it; the report keeps the check's own fields.
        const check = {
          name: event.name,
          ok: event.ok,
          detail: event.detail,
          hint: event.hint,
          code: event.code,
        };
        this.result.checks.push({ ...check, hint: hintForCheck(check) });
        break;
      }
      case "warning":
        this.result.warnings.push({ code: event.code, message: event.message });
        return;
      case "progress":
        // Only for the live view: the report keeps restic's summary, not its way there.
        this.ctx.onProgress({
          host: this.hostPlan.host.name,
          step: "progress",
          restic: {
            job: event.job,
            repo: this.plan.repos.get(event.repo)?.label ?? event.repo,
            fraction: event.fraction,
            bytesDone: event.bytes_done,
            bytesTotal: event.bytes_total,
            filesDone: event.files_done,
            filesTotal: event.files_total,
            etaS: event.eta_s,
          },
        });
        return;
      case "forget_for_done":
        this.ctx.onMaintenanceEvent?.(this.hostPlan.host.name, event);
        break;
      case "repo_identity":
        // The report's repositories[]; nothing to show while the run goes on.
        this.repositoryIds.apply(event);
        return;
      case "result":
        if (this.agentResult !== null) {
          this.stop(
            new HostError(
              "agent_protocol",
              "the agent sent more than one result",
              "this is a bug in the agent",
            ),
          );
          return;
        }
        this.agentResult = event;
        // The run is over: closing stdin lets the agent and the bootstrap exit.
        if (this.phase !== "stopping") this.phase = "ending";
        this.process?.end();
        return;
      default: {
        if (event.event === "repo_pruned") this.ctx.onMaintenanceEvent?.(this.hostPlan.host.name, event);
        const warning = this.tracker?.apply(event) ?? null;
        if (warning !== null) this.result.warnings.push(warning);
      }
    }
    this.progress("running", describeEvent(event, this.plan));
  }

  private progress(step: "running" | "log", detail: string): void {
    this.ctx.onProgress({ host: this.hostPlan.host.name, step, detail });
  }
}

/** No result, and neither sudo nor the bootstrap explains why: the agent's own stderr may. */
function endedWithoutResult(exitCode: number | null, stderr: string): HostError {
  const tail = stderr.trim().split("\n").slice(-5).join(" | ");
  return new HostError(
    "agent_failed",
    `the agent ended without a result (exit ${exitCode ?? "unknown"})${tail === "" ? "" : `: ${tail}`}`,
    "run with the same inventory and --limit on this host, and read the agent's error above",
  );
}
