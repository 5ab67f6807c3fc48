// The one place that decides a host's status and error from what its agent reported.
import { HostError, type HostErrorCode } from "../errors.js";
import type { ResultEvent } from "../agent/protocol.js";
import type { Check, JobResult } from "../report/report-schema.js";
import { hintFor } from "./hints.js";

export interface HostOutcomeInput {
  agentResult: ResultEvent;
  jobs: JobResult[];
  checks: Check[];
}

export interface HostOutcome {
  status: "ok" | "partial" | "failed";
  error: HostError | null;
}

export function decideHostOutcome({ agentResult, jobs, checks }: HostOutcomeInput): HostOutcome {
  const worstJob = worstJobStatus(jobs);
  const stale = jobs.flatMap((job) =>
    job.latest.filter((l) => l.stale).map((l) => `${job.name} in ${l.repo}`),
  );
  if (agentResult.status !== "failed" && stale.length > 0) {
    return {
      status: "failed",
      error: new HostError(
        "stale",
        `no snapshot newer than --max-age for ${stale.join(", ")}`,
        "run backup for this host (and find out why the last ones did not happen)",
      ),
    };
  }
  if (agentResult.status !== "failed" && worstJob === "failed") {
    return {
      status: "failed",
      error: new HostError(
        "agent_failed",
        `${agentResult.message} (but a job failed)`,
        "see the failed jobs",
      ),
    };
  }
  if (agentResult.status === "ok" && worstJob === "partial") return { status: "partial", error: null };
  if (agentResult.status === "failed") {
    const code = (agentResult.code ?? "agent_failed") as HostErrorCode;
    return { status: "failed", error: new HostError(code, agentResult.message, hintFor(code, checks)) };
  }
  return { status: agentResult.status, error: null };
}

/** The report must not say ok when a repository or copy in it failed, whatever the agent said. */
function worstJobStatus(jobs: JobResult[]): "ok" | "partial" | "failed" {
  const statuses = jobs.flatMap((job) => [
    job.status,
    ...job.repos.map((r) => r.status),
    ...job.copies.map((c) => c.status),
  ]);
  if (statuses.includes("failed")) return "failed";
  return statuses.includes("partial") ? "partial" : "ok";
}
