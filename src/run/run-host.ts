// One host's run: connect, deliver the agent, feed it the plan, read its events, clean up. Whatever
// happens becomes this host's result; nothing here throws to the caller.
import type { ClientChannel } from "ssh2";
import { HostError } from "../errors.js";
import { agentPayload, BOOTSTRAP_EXIT, bootstrapArgv, READY_LINE, type AgentFile } from "../agent/deliver.js";
import { parseEvents } from "../agent/parse-events.js";
import { agentPlan, type AgentCommand, type AgentPlan } from "../agent/plan-lines.js";
import type { AgentEvent, ResultEvent } from "../agent/protocol.js";
import type { HostPlan } from "../plan/build-plan.js";
import { trackJobs, type JobTracker, type TrackedCommand } from "./job-tracker.js";
import { redact, redactDeep, secretsOf } from "./redact.js";
import type { Check, HostResult } from "../report/report-schema.js";
import { becomeCommand, SUDO_PROMPT } from "../transport/remote-command.js";
import { connectSsh, type ConnectTarget, type SshSession } from "../transport/ssh-connection.js";
import type { LocalFiles } from "./local-files.js";
import { decideHostOutcome, decideJobs } from "./host-outcome.js";
import { hintForCheck } from "./hints.js";

export type ProgressStep = "connecting" | "running" | "log" | "done";

export interface ProgressEvent {
  host: string;
  step: ProgressStep;
  /** "running": what the agent reported last; "log": one line of its stderr; "done": the host's status. */
  detail?: string;
  status?: HostResult["status"];
}

export interface HostRunContext {
  runId: string;
  command: AgentCommand;
  /** Which results the report lists per job, and how a job the agent never reports on appears. */
  jobs: { command: TrackedCommand; initial: "skipped" | "planned" } | null;
  /** prune: forget --dry-run only. */
  dryRun: boolean;
  /** status: a job whose latest snapshot is older than this (or missing) is stale. */
  maxAgeS: number | null;
  agent: AgentFile;
  files: LocalFiles;
  agentSocket: string | null;
  signal: AbortSignal;
  onProgress: (event: ProgressEvent) => void;
  connect?: (target: ConnectTarget) => Promise<SshSession>;
}

const STDERR_TAIL = 4096;
/** Warnings of the controller's own: they do not make a host partial. */
const CONTROLLER_WARNINGS = new Set(["host_key_added", "agent_noise"]);
/** How long a stopped agent gets to clean up and report before its channel is closed. */
const STOP_GRACE_MS = 60_000;

export async function runHost(hostPlan: HostPlan, ctx: HostRunContext): Promise<HostResult> {
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
  };
  const finish = (error: HostError | null, status?: HostResult["status"]): HostResult => {
    if (error !== null) {
      result.error = { code: error.code, message: error.message, hint: error.hint };
      result.status = status ?? error.status;
    } else if (status !== undefined) result.status = status;
    result.duration_ms = Date.now() - started;
    ctx.onProgress({ host: host.name, step: "done", status: result.status, detail: result.error?.message });
    return result;
  };

  if (ctx.signal.aborted) return finish(null, "skipped");
  ctx.onProgress({ host: host.name, step: "connecting" });
  let session: SshSession;
  try {
    session = await (ctx.connect ?? connectSsh)({
      name: host.name,
      address: host.address,
      port: host.port,
      user: host.user,
      knownHostsFile: host.known_hosts,
      knownHosts: ctx.files.knownHosts(host.known_hosts),
      hostKeyPolicy: host.host_key_policy,
      privateKey: ctx.files.privateKey(host.identity_file),
      passphrase: ctx.files.secret(host.identity_passphrase_file),
      agentSocket: ctx.agentSocket,
      connectTimeoutMs: host.connect_timeout_s * 1000,
      connectRetries: host.connect_retries,
      keepaliveIntervalMs: host.keepalive_interval_s * 1000,
    });
  } catch (error) {
    return finish(asHostError(error));
  }
  if (session.hostKeyNote !== null)
    result.warnings.push({ code: "host_key_added", message: session.hostKeyNote });

  const plan = agentPlan(hostPlan, ctx.command, ctx.runId, { dryRun: ctx.dryRun });
  const tracker = ctx.jobs === null ? null : trackJobs(hostPlan, plan, ctx.jobs.command, ctx.jobs.initial);
  if (tracker !== null) result.jobs = tracker.jobs;
  try {
    const outcome = await runAgent(session, hostPlan, plan, tracker, ctx, result);
    tracker?.finish(new Date(), ctx.maxAgeS);
    result.checks = result.checks.map((check) => ({ ...check, hint: hintForCheck(check) }));
    const facts = {
      command: ctx.command,
      jobs: result.jobs,
      initial: ctx.jobs?.initial ?? "skipped",
      cowWarnPercent: hostPlan.config.snapshot_settings.snapshot_cow_warn_percent,
    } as const;
    const decided =
      outcome.error === null
        ? decideHostOutcome({
            ...facts,
            agentResult: outcome.result,
            checks: result.checks,
            hostWarnings: result.warnings.filter((w) => !CONTROLLER_WARNINGS.has(w.code)),
          })
        : { ...decideJobs({ ...facts, finished: false }), error: outcome.error, status: undefined };
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

type AgentOutcome = { error: HostError; result?: undefined } | { error: null; result: ResultEvent };

function runAgent(
  session: SshSession,
  hostPlan: HostPlan,
  plan: AgentPlan,
  tracker: JobTracker | null,
  ctx: HostRunContext,
  result: HostResult,
): Promise<AgentOutcome> {
  const { host } = hostPlan;
  const password = host.become === "sudo" ? ctx.files.secret(host.become_password_file) : null;
  const become =
    host.become === "none"
      ? ({ method: "none" } as const)
      : { method: "sudo" as const, withPassword: password !== null };
  const command = becomeCommand(become, bootstrapArgv(ctx.runId, host.name, ctx.agent));
  const payload = agentPayload(ctx.runId, ctx.agent, plan.lines);

  return new Promise<AgentOutcome>((resolve) => {
    let channel: ClientChannel | null = null;
    let agentResult: ResultEvent | null = null;
    let forced: HostError | null = null;
    let stderrTail = "";
    let stderrLine = "";
    let promptScan = "";
    let passwordSent = false;
    let payloadSent = false;
    let exitCode: number | null = null;
    let exitSignal: string | null = null;
    let exitReceived = false;
    let noise = 0;

    let graceTimer: NodeJS.Timeout | undefined;
    /**
     * Stop the agent: closing its stdin is what it watches for; it then stops restic, undoes every
     * step and sends its last events, which the report keeps. Only if it does not finish within the
     * grace period is the channel closed under it (it still cleans up: its stdin is gone either way).
     */
    const stop = (error: HostError, graceMs = STOP_GRACE_MS) => {
      forced ??= error;
      if (channel === null) return;
      channel.end();
      graceTimer ??= setTimeout(() => channel?.close(), graceMs);
    };
    const sendPayload = () => {
      if (payloadSent || channel === null) return;
      payloadSent = true;
      for (const piece of payload) channel.write(piece);
    };
    const onEvent = (event: AgentEvent) => {
      switch (event.event) {
        case "agent_start": {
          const facts = event.facts;
          result.facts = facts;
          ctx.onProgress({
            host: host.name,
            step: "running",
            detail: `agent ${event.agent_version} as ${facts.user}`,
          });
          break;
        }
        case "check":
          result.checks.push(toCheck(event));
          ctx.onProgress({
            host: host.name,
            step: "running",
            detail: `${event.ok ? "✓" : "✗"} ${event.name}`,
          });
          break;
        case "warning":
          result.warnings.push({ code: event.code, message: event.message });
          break;
        case "result":
          if (agentResult !== null) {
            stop(
              new HostError(
                "agent_protocol",
                "the agent sent more than one result",
                "this is a bug in the agent",
              ),
            );
            return;
          }
          agentResult = event;
          // The run is over: closing stdin lets the agent and the bootstrap exit.
          channel?.end();
          break;
        default: {
          const warning = tracker?.apply(event) ?? null;
          if (warning !== null) result.warnings.push(warning);
          ctx.onProgress({ host: host.name, step: "running", detail: describeEvent(event, plan) });
        }
      }
    };
    const secrets = secretsOf(hostPlan, password);
    const parser = parseEvents(
      (event) => onEvent(redactDeep(event, secrets)),
      (line) => {
        if (line === `${READY_LINE} ${ctx.runId}`) return sendPayload();
        noise++;
      },
    );

    const timeout = setTimeout(
      () =>
        stop(
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
    const onAbort = () =>
      stop(
        new HostError(
          "interrupted",
          "interrupted before the host finished; the agent was stopped",
          "run the command again",
        ),
      );
    ctx.signal.addEventListener("abort", onAbort, { once: true });

    const settle = () => {
      clearTimeout(timeout);
      clearTimeout(graceTimer);
      ctx.signal.removeEventListener("abort", onAbort);
      parser.end();
      if (forced !== null) return resolve({ error: forced });
      if (agentResult !== null) {
        if (noise > 0)
          result.warnings.push({
            code: "agent_noise",
            message: `${noise} line(s) of the agent's output were not events`,
          });
        return resolve({ error: null, result: agentResult });
      }
      if (!exitReceived || exitSignal !== null) {
        // No exit status, or the remote session was killed: the connection, not the agent, ended it.
        return resolve({
          error: new HostError(
            "connection_lost",
            `the connection was lost while the agent ran${exitSignal === null ? "" : ` (the remote session ended by SIG${exitSignal})`}`,
            "check the host and the network; the agent stops and cleans up when its connection goes, and the next run removes anything a crash left",
          ),
        });
      }
      resolve({ error: diagnoseMissingResult(exitCode, redact(stderrTail, secrets), passwordSent) });
    };

    session
      .exec(command)
      .then((opened) => {
        channel = opened;
        opened.on("data", (chunk: Buffer) => parser.push(chunk));
        opened.stderr.on("data", (chunk: Buffer) => {
          const text = chunk.toString();
          promptScan = (promptScan + text).slice(-2 * SUDO_PROMPT.length);
          if (promptScan.includes(SUDO_PROMPT)) {
            promptScan = "";
            if (passwordSent || password === null) {
              // Asked again: the password was wrong. Never send it twice.
              stop(
                new HostError(
                  "sudo_password_wrong",
                  "sudo rejected the password from become_password_file",
                  "check become_password_file, and that the login user may use sudo",
                ),
              );
              return;
            }
            passwordSent = true;
            opened.write(`${password}\n`);
          }
          const cleaned = text.replaceAll(SUDO_PROMPT, "");
          stderrTail = (stderrTail + cleaned).slice(-STDERR_TAIL);
          const lines = (stderrLine + cleaned).split("\n");
          stderrLine = lines.pop() ?? "";
          for (const line of lines)
            if (line.trim() !== "")
              ctx.onProgress({ host: host.name, step: "log", detail: redact(line, secrets) });
        });
        opened.on("exit", (code: number | null, signal?: string) => {
          exitCode = code;
          exitSignal = signal ?? null;
          exitReceived = true;
        });
        opened.on("close", settle);
        // Without a sudo password nothing can consume our input early: send it all at once.
        if (password === null) sendPayload();
      })
      .catch((error: Error) => {
        clearTimeout(timeout);
        ctx.signal.removeEventListener("abort", onAbort);
        resolve({
          error: new HostError(
            "connection_lost",
            `could not start the agent: ${error.message}`,
            "check sshd's logs on the host",
          ),
        });
      });
    session.closed.then(() => {
      if (channel === null) return;
      // The connection went away under a running agent.
      if (agentResult === null && exitCode === null)
        forced ??= new HostError(
          "connection_lost",
          "the connection was lost while the agent ran",
          "check the host and the network; the agent cleans up when its connection goes",
        );
    });
  });
}

function describeEvent(event: AgentEvent, plan: AgentPlan): string {
  switch (event.event) {
    case "snapshot_created":
      return `snapshot ${event.snapshot} created`;
    case "repo_done":
      return `${event.job} → ${plan.repos.get(event.repo)?.label ?? event.repo}: ${event.summary.snapshot_id ?? "done"}`;
    case "repo_failed":
      return `${event.job} → ${plan.repos.get(event.repo)?.label ?? event.repo}: FAILED ${event.message}`;
    case "snapshot_removed":
      return `snapshot ${event.snapshot} removed after ${(event.lifetime_ms / 1000).toFixed(1)}s`;
    case "copy_done":
      return `${event.job}: copied to ${plan.copies.get(event.copy)?.to ?? event.copy}`;
    case "copy_failed":
      return `${event.job}: copy to ${plan.copies.get(event.copy)?.to ?? event.copy} FAILED`;
    case "orphan_removed":
      return `removed leftover ${event.kind} ${event.name}`;
    case "job_start":
      return `job ${event.job}`;
    case "prune_done":
      return `${event.job} → ${label(plan, event.repo)}: ${event.skipped ? "no retention, skipped" : `forget${event.dry_run ? " --dry-run" : ""} done`}`;
    case "prune_failed":
      return `${event.job} → ${label(plan, event.repo)}: FAILED ${event.message}`;
    case "repo_pruned":
      return `${label(plan, event.repo)}: ${event.ok ? "pruned" : `prune FAILED ${event.message}`}`;
    case "latest":
      return `${event.job} → ${label(plan, event.repo)}: ${event.snapshots.length} snapshot(s)`;
    case "latest_failed":
      return `${event.job} → ${label(plan, event.repo)}: FAILED ${event.message}`;
    case "job_end":
      return `job ${event.job} done`;
    default:
      return event.event;
  }
}

function label(plan: AgentPlan, id: string): string {
  return plan.repos.get(id)?.label ?? plan.copies.get(id)?.to ?? id;
}

function toCheck(event: { name: string; ok: boolean; detail: string; hint: string }): Check {
  return { name: event.name, ok: event.ok, detail: event.detail, hint: event.hint };
}

/** No result event: say why, from the exit status and what sudo or the bootstrap printed. */
function diagnoseMissingResult(exitCode: number | null, stderr: string, passwordSent: boolean): HostError {
  const tail = stderr.trim().split("\n").slice(-5).join(" | ");
  if (/a password is required/.test(stderr)) {
    return new HostError(
      "sudo_password_required",
      "sudo asks the login user for a password",
      "set become_password_file in the inventory, or give the login user a NOPASSWD sudo rule for running the agent",
    );
  }
  if (
    /incorrect password|Sorry, try again/.test(stderr) ||
    (passwordSent && exitCode === 1 && /sudo:/.test(stderr))
  ) {
    return new HostError(
      "sudo_password_wrong",
      "sudo rejected the password from become_password_file",
      "check become_password_file",
    );
  }
  if (/is not in the sudoers|not allowed to execute|may not run sudo/.test(stderr)) {
    return new HostError(
      "sudo_failed",
      `sudo refused: ${tail}`,
      'give the login user a sudo rule to run bash as root, or set become = "none" and log in as root',
    );
  }
  if (exitCode === BOOTSTRAP_EXIT.checksum) {
    return new HostError(
      "agent_checksum",
      "the agent's sha256 did not match on the host; it was not run",
      "the upload was corrupted or tampered with; run again, and check the path between controller and host",
    );
  }
  if (exitCode === BOOTSTRAP_EXIT.unsafeRunDir) {
    return new HostError(
      "agent_failed",
      `the run directory is not safe: ${tail}`,
      "/run/rlvm-fleet must be a directory owned by root",
    );
  }
  if (exitCode === 127 && /command not found|No such file/.test(stderr)) {
    return new HostError(
      "agent_failed",
      `a required program is missing: ${tail}`,
      "the host needs bash, sudo and coreutils",
    );
  }
  return new HostError(
    "agent_failed",
    `the agent ended without a result (exit ${exitCode ?? "unknown"})${tail === "" ? "" : `: ${tail}`}`,
    "run with the same inventory and --limit on this host, and read the agent's error above",
  );
}
