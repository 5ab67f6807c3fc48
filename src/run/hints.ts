// Hints the controller derives from facts: for the code an agent stopped with, and for a check whose
// detail is restic's own error (the agent passes restic's words on; it does not interpret them).
import { AGENT_ERROR_CODES, type AgentErrorCode, type ResticFailureCode } from "../agent/protocol.js";
import type { Check } from "../report/report-schema.js";

export function hintForAgentFailure(code: AgentErrorCode, checks: readonly Check[]): string {
  if (code === "preflight") {
    const failed = checks.filter((c) => !c.ok);
    return failed.length === 0
      ? "see the checks"
      : `fix the failed checks: ${failed.map((c) => c.name).join(", ")}`;
  }
  return AGENT_ERROR_CODES[code].hint;
}

/** What to do about each failure restic names precisely (a check's `code`, an entry's `error_code`). */
export const RESTIC_FAILURE_HINTS = {
  repo_missing:
    "no repository there: create it with 'restic init' (rlvm-fleet never creates repositories), or fix the repository path",
  repo_locked:
    "another restic holds the repository's lock (another host's prune, or a restic still running): wait for it and run again; if none runs, 'restic unlock' removes a stale lock",
  repo_wrong_password: "the password in its password_file does not open this repository: check password_file",
} as const satisfies Record<ResticFailureCode, string>;

/** The hint for failures that all have one precise code; null when they have none or differ. */
export function hintForResticFailures(codes: readonly (ResticFailureCode | null)[]): string | null {
  const [first] = codes;
  if (first === undefined || first === null || codes.some((code) => code !== first)) return null;
  return RESTIC_FAILURE_HINTS[first];
}

/** restic's error line → what to do, first match wins. */
const RESTIC_ERROR_HINTS: readonly [RegExp, string][] = [
  [
    /did not answer within/,
    "the backend does not respond: check the network path to it and that the service is up",
  ],
  [/wrong password/, "the password in its password_file does not open this repository: check password_file"],
  [
    /Resolving password failed|password file|Please specify repository password/,
    "restic could not read the password file: see its password_file check",
  ],
  [
    /dial tcp|connection refused|no such host|i\/o timeout|network is unreachable|connection reset|TLS handshake|x509:|no route to host|sftp session/,
    "the backend is unreachable: check the network, DNS, firewall, and the credentials in restic_env_file",
  ],
  [
    /unable to open config file|does not exist|Is there a repository/,
    "no repository there: create it with 'restic init' (rlvm-fleet never creates repositories), or fix the repository path",
  ],
];

/** A repository check (`repo:*`, `copy:*`) that failed on restic's error gets its hint here. */
export function hintForCheck(check: Check): string {
  if (check.ok || check.hint !== "" || !/^(repo|copy):/.test(check.name)) return check.hint;
  if (check.code !== null) return RESTIC_FAILURE_HINTS[check.code];
  for (const [pattern, hint] of RESTIC_ERROR_HINTS) if (pattern.test(check.detail)) return hint;
  return "run 'restic cat config' against this repository by hand to see the whole error";
}
