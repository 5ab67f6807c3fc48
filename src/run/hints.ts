// Hints for failures the agent reports by code.
import type { Check } from "../report/report-schema.js";

const HINTS: Record<string, string> = {
  agent_protocol: "the agent and the controller disagree about the protocol; this is a bug in rlvm-fleet",
  agent_error: "the agent stopped on an unexpected error; its message says where",
  locked: "another run holds this host's lock; wait for it, or check for a stuck run",
  prune_failed: "see the failed repositories below; restic's own message says why",
  repo_unreadable: "check the repository and its password file with `rlvm-fleet check`",
  backup_failed: "see the failed repositories below; the other repositories and hosts were backed up",
  snapshot_failed:
    "check the VG's free space and the LV (lvs, vgs); nothing was backed up, and every snapshot taken was removed",
  agent_unsupported: "the host's bash is older than 4.4, or the agent does not know this command",
  agent_interrupted: "the agent was stopped by a signal on the host; it cleaned up before it exited",
};

export function hintFor(code: string, checks: readonly Check[]): string {
  if (code === "preflight") {
    const failed = checks.filter((c) => !c.ok);
    return failed.length === 0
      ? "see the checks"
      : `fix the failed checks: ${failed.map((c) => c.name).join(", ")}`;
  }
  return HINTS[code] ?? "see the message";
}
