// Typed errors with stable codes and hints, and the one exit-code table of the tool.

/** The exit codes, in one place: `--help` prints this table and the report uses it. */
export const EXIT_CODES = {
  ok: { code: 0, meaning: "every selected host ok" },
  failed: { code: 1, meaning: "at least one host failed" },
  usage: { code: 2, meaning: "usage, inventory or config error; nothing ran" },
  partial: { code: 3, meaning: "some host partial (finished with warnings), none worse" },
  unreachable: { code: 4, meaning: "some host unreachable, none failed" },
  stopped: { code: 5, meaning: "stopped early by --max-fail-percent; hosts not started are skipped" },
  interrupted: { code: 130, meaning: "interrupted (SIGINT/SIGTERM)" },
} as const;

export type ExitKind = keyof typeof EXIT_CODES;

/** When several apply, the first of this list wins: 2 > 130 > 5 > 1 > 4 > 3 > 0. */
const EXIT_PRECEDENCE: readonly ExitKind[] = [
  "usage",
  "interrupted",
  "stopped",
  "failed",
  "unreachable",
  "partial",
  "ok",
];

export function worstExit(kinds: Iterable<ExitKind>): ExitKind {
  const seen = new Set(kinds);
  return EXIT_PRECEDENCE.find((kind) => seen.has(kind)) ?? "ok";
}

export function exitCodeTable(): string {
  return Object.values(EXIT_CODES)
    .map(({ code, meaning }) => `  ${String(code).padStart(3)}  ${meaning}`)
    .join("\n");
}

/** One problem in one input file, at one TOML path. */
export interface Problem {
  file: string;
  /** TOML path such as `logical_volume_nonroot.data.repositories[1].prune_keep_daily`; "" for the file. */
  path: string;
  message: string;
  hint?: string;
}

/**
 * A user error: bad usage, inventory or config. Exit 2, nothing ran. Carries every problem found,
 * not just the first.
 */
export class UsageError extends Error {
  readonly problems: Problem[];
  readonly hint: string | undefined;

  constructor(message: string, options: { problems?: Problem[]; hint?: string } = {}) {
    super(message);
    this.name = "UsageError";
    this.problems = options.problems ?? [];
    this.hint = options.hint;
  }
}

/** Render a path array the way TOML tools print it: `a.b[0]."odd key"`. */
export function formatTomlPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else {
      const key = String(part);
      const bare = /^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key);
      out += out === "" ? bare : `.${bare}`;
    }
  }
  return out;
}

/**
 * Host error codes and the status each gives by default. `unreachable` only when the SSH service could
 * not be reached at all; everything after it answered is `failed`. `timeout` is also the code of an
 * expired `run_timeout`, and then the host is `failed` (the status, not the code, says which).
 */
export const HOST_ERROR_CODES = {
  dns: "unreachable",
  refused: "unreachable",
  timeout: "unreachable",
  // Behind proxy_jump: the bastion could not be reached or logged into, or its key was refused.
  bastion_unreachable: "unreachable",
  // The bastion's connection dropped while the host was in use through it.
  bastion_lost: "failed",
  host_key_unknown: "failed",
  host_key_changed: "failed",
  host_key_revoked: "failed",
  auth: "failed",
  sudo_password_required: "failed",
  sudo_password_wrong: "failed",
  sudo_failed: "failed",
  agent_checksum: "failed",
  agent_protocol: "failed",
  agent_failed: "failed",
  agent_error: "failed",
  agent_unsupported: "failed",
  agent_interrupted: "failed",
  agent_not_installed: "failed",
  install_failed: "failed",
  repository_not_allowed: "failed",
  connection_lost: "failed",
  preflight: "failed",
  locked: "failed",
  backup_failed: "failed",
  snapshot_failed: "failed",
  prune_failed: "failed",
  verify_failed: "failed",
  verify_sample_failed: "failed",
  repo_unreadable: "failed",
  stale: "failed",
  interrupted: "failed",
  // Never started: --max-fail-percent's threshold was crossed first.
  max_fail: "skipped",
} as const;

export type HostErrorCode = keyof typeof HOST_ERROR_CODES;

/** A problem on one host: data for its result, never something that stops the other hosts. */
export class HostError extends Error {
  constructor(
    readonly code: HostErrorCode,
    message: string,
    readonly hint: string,
    /** Worth another connection attempt (connection errors only, never authentication). */
    readonly retryable = false,
    readonly status: (typeof HOST_ERROR_CODES)[HostErrorCode] = HOST_ERROR_CODES[code],
  ) {
    super(message);
    this.name = "HostError";
  }
}
