// The value rules of DESIGN §4: what LVM, restic and a sane path would accept, checked before any
// of it reaches a host.
// Every limit that the agent enforces comes from the contract (src/agent/protocol.ts), so whatever
// these rules accept, the agent accepts.
import { z } from "zod";
import { isPlanName, PLAN_LIMITS } from "../agent/protocol.js";

/** A host, group or job name: letters, digits, '.', '_', '-', and not "." or "..". */
export const isName = isPlanName;
export const NAME_RULE = "may use only letters, digits, '.', '_' and '-', and must not be '.' or '..'";

// lvm(8) "VALID NAMES": [a-zA-Z0-9+_.-], not starting with '-', not "." or "..". The run appends
// `_rlvm_<runid>` to an LV name for its snapshot, so leave room under LVM's 127-character limit.
const LVM_NAME = PLAN_LIMITS.lvmName;
const lvmName = (what: string, max: number) =>
  z
    .string()
    .max(max, `${what} is longer than ${max} characters`)
    .refine((s) => LVM_NAME.test(s) && s !== "." && s !== "..", {
      message: `${what} must use only LVM's characters (letters, digits, + _ . -) and must not start with '-'`,
    });
export const vgName = lvmName("a VG name", 100);
export const lvName = lvmName("an LV name", 90).refine((s) => !/^(snapshot|pvmove)/.test(s), {
  message: 'an LV name must not start with "snapshot" or "pvmove" (reserved by LVM)',
});

// `lvcreate -L` sizes: a positive number, optionally with one unit letter and no space (2G, 512M, 1.5t).
const LVM_SIZE = /^(?:\d+(?:\.\d+)?|\.\d+)[bBsSkKmMgGtTpPeE]?$/;
const TOO_LARGE = `larger than LVM can hold (at most 8 EiB, ${PLAN_LIMITS.maxBytes} bytes)`;
export const snapshotSize = z.string().superRefine((s, ctx) => {
  const bytes = LVM_SIZE.test(s) ? lvmSizeBytes(s) : null;
  if (bytes === null || bytes === 0n) {
    ctx.addIssue({
      code: "custom",
      message:
        'expected an LVM size such as "2G", "512M" or "1.5T": a positive number and one unit letter, no space',
    });
  } else if (bytes > PLAN_LIMITS.maxBytes) {
    ctx.addIssue({ code: "custom", message: `snapshot size "${s}" is ${TOO_LARGE}` });
  }
});

export const cowWarnPercent = z.number().gt(0).max(100);

const PERCENT = /^(\d+(?:\.\d+)?)%$/;
export const vgFreeMargin = z.string().superRefine((s, ctx) => {
  const percent = PERCENT.exec(s);
  if (percent !== null) {
    if (marginBasisPoints(s) > PLAN_LIMITS.maxBasisPoints) {
      ctx.addIssue({
        code: "custom",
        message: `a margin of ${s} of the VG leaves no room for any snapshot: expected a percentage below 100%`,
      });
    }
  } else if (!LVM_SIZE.test(s)) {
    ctx.addIssue({
      code: "custom",
      message: 'expected an LVM size such as "1G" or a percentage of the VG such as "10%"',
    });
  } else if ((lvmSizeBytes(s) ?? 0n) > PLAN_LIMITS.maxBytes) {
    ctx.addIssue({ code: "custom", message: `margin "${s}" is ${TOO_LARGE}` });
  }
});

/** A "12.5%" margin in 1/100 % of the VG, rounded up (a margin is a minimum). */
export function marginBasisPoints(margin: string): number {
  const match = PERCENT.exec(margin);
  if (match?.[1] === undefined) return NaN;
  const [whole = "0", fraction = ""] = match[1].split(".");
  const exact = BigInt(whole) * 100n + BigInt((fraction + "00").slice(0, 2));
  const roundUp = /[1-9]/.test(fraction.slice(2)) ? 1n : 0n;
  const bp = exact + roundUp;
  return bp > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(bp);
}

/** An absolute, normalised path: no `.` or `..` components, no `//`. */
export const absolutePath = z.string().superRefine((s, ctx) => {
  if (!s.startsWith("/")) {
    ctx.addIssue({ code: "custom", message: `expected an absolute path (starting with "/"), got "${s}"` });
  } else if (
    s
      .split("/")
      .some((part, i, all) => part === "." || part === ".." || (part === "" && i > 0 && i < all.length - 1))
  ) {
    ctx.addIssue({ code: "custom", message: `path "${s}" is not normalised (no ".", ".." or "//" allowed)` });
  }
});

export function stripTrailingSlash(path: string): string {
  return path.length > 1 ? path.replace(/\/+$/, "") : path;
}

/** True when `path` is `base` or lies below it. */
export function isWithin(path: string, base: string): boolean {
  const p = stripTrailingSlash(path);
  const b = stripTrailingSlash(base);
  return b === "/" || p === b || p.startsWith(`${b}/`);
}

const BACKEND_PREFIX = /^(local|sftp|rest|s3|b2|azure|gs|swift|rclone):/;

/**
 * A restic repository: a backend URL kept exactly as written (so `rest:http://` keeps its `//`), or a
 * local absolute path.
 */
export const repository = z.string().superRefine((s, ctx) => {
  const match = BACKEND_PREFIX.exec(s);
  if (match === null) {
    if (!s.startsWith("/")) {
      ctx.addIssue({
        code: "custom",
        message: `expected an absolute local path or a restic backend URL (sftp:, rest:, s3:, b2:, azure:, gs:, swift:, rclone:), got "${maskRepository(s)}"`,
      });
    }
  } else if (s.length === match[0].length) {
    ctx.addIssue({
      code: "custom",
      message: `repository "${maskRepository(s)}" names a backend but no location`,
    });
  } else if (match[1] === "local" && !s.slice("local:".length).startsWith("/")) {
    ctx.addIssue({
      code: "custom",
      message: `a local: repository needs an absolute path, got "${maskRepository(s)}"`,
    });
  }
});

/** The same repository written two ways (trailing slash, `local:` prefix) is one repository. */
export function repositoryIdentity(repo: string): string {
  const local = repo.startsWith("local:") ? repo.slice("local:".length) : repo;
  return local.startsWith("/") ? stripTrailingSlash(local) : repo.replace(/\/+$/, "");
}

/**
 * The parts of a repository string that are credentials, as [start, end) spans, for every form restic
 * accepts. This is the one place that knows where a repository keeps its secrets; maskRepository and
 * repositorySecrets (and through them validate, plan, the report's labels and redact) all use it.
 *
 * - `scheme://userinfo@host/...` (rest:, s3:, sftp://, swift/azure/gs endpoints): the user-info ends at
 *   the LAST `@`, so a password holding `@`, `:` or `/` is masked whole (a path holding `@` is masked too:
 *   hiding too much is only a display cost). `user:password` keeps the user; a user-info without `:` is
 *   an SSH login for sftp:// and kept, and a token anywhere else, and masked.
 * - `rclone:remote,key=value,...:path` and `rclone::backend,key=value,...:path`: every inline value,
 *   quoted (`"a:b"`, `'a,b'`, a doubled quote escapes it) or not. Unparseable parameters are masked to
 *   the end.
 * - `sftp:user@host:/path`, `b2:`, `azure:`, `gs:`, `swift:`, `rclone:remote:path`, local paths: no
 *   credentials in the string.
 */
function credentialSpans(repo: string): [number, number][] {
  if (repo.startsWith("rclone:")) return rcloneSpans(repo, "rclone:".length);
  const scheme = repo.indexOf("://");
  if (scheme === -1) return [];
  const start = scheme + 3;
  const at = repo.lastIndexOf("@");
  if (at < start) return [];
  const colon = repo.indexOf(":", start);
  if (colon !== -1 && colon < at) return [[colon + 1, at]];
  return /^sftp:\/\//.test(repo) ? [] : [[start, at]];
}

function rcloneSpans(repo: string, from: number): [number, number][] {
  let i = repo[from] === ":" ? from + 1 : from;
  while (i < repo.length && repo[i] !== "," && repo[i] !== ":") i++;
  const spans: [number, number][] = [];
  while (repo[i] === ",") {
    const paramStart = i + 1;
    i = paramStart;
    while (i < repo.length && !",:=".includes(repo[i] ?? "")) i++;
    if (repo[i] !== "=") {
      if (i === paramStart) return [...spans, [paramStart, repo.length]];
      continue; // a flag without a value (`,env_auth`)
    }
    const valueStart = i + 1;
    const quote = repo[valueStart];
    if (quote === '"' || quote === "'") {
      i = valueStart + 1;
      for (;;) {
        if (i >= repo.length) return [...spans, [valueStart, repo.length]];
        if (repo[i] === quote && repo[i + 1] === quote) i += 2;
        else if (repo[i] === quote) break;
        else i++;
      }
      i++;
    } else {
      while (i < repo.length && repo[i] !== "," && repo[i] !== ":") i++;
    }
    if (i > valueStart) spans.push([valueStart, i]);
  }
  return spans;
}

/** Hide credentials inside a repository URL: `rest:https://user:p@ss@host/` → `rest:https://user:***@host/`. */
export function maskRepository(repo: string): string {
  let out = "";
  let last = 0;
  for (const [start, end] of credentialSpans(repo)) {
    out += `${repo.slice(last, start)}***`;
    last = end;
  }
  return out + repo.slice(last);
}

/** The secrets inside a repository string, as written and percent-decoded (for redacting free text). */
export function repositorySecrets(repo: string): string[] {
  return credentialSpans(repo).flatMap(([start, end]) => {
    const secret = repo.slice(start, end);
    const unquoted = /^(["']).*\1$/.test(secret)
      ? secret.slice(1, -1).split(secret[0]!.repeat(2)).join(secret[0])
      : secret;
    return [...new Set([secret, unquoted, decodeURIComponentSafe(unquoted)])];
  });
}

/** Every repository value's credentials masked out of `text` (longest secret first). */
export function maskSecretsIn(text: string, repos: Iterable<string>): string {
  const withSecrets = [...new Set(repos)].filter((repo) => credentialSpans(repo).length > 0);
  const secrets = [...new Set(withSecrets.flatMap(repositorySecrets))]
    .filter((s) => s.length > 0)
    .sort((a, b) => b.length - a.length);
  let out = text;
  for (const repo of withSecrets.sort((a, b) => b.length - a.length)) {
    out = out.split(repo).join(maskRepository(repo));
  }
  for (const secret of secrets) out = out.split(secret).join("***");
  return out;
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

export const KEEP_KEYS = ["last", "daily", "weekly", "monthly", "yearly"] as const;
export type KeepKey = (typeof KEEP_KEYS)[number];

export const keepCount = z
  .number()
  .int("expected a whole number")
  .min(0, "expected a number ≥ 0")
  .max(PLAN_LIMITS.maxKeep, `expected at most ${PLAN_LIMITS.maxKeep} (restic's largest keep value)`);

const UNIT_BYTES: Record<string, bigint> = {
  b: 1n,
  s: 512n,
  k: 1024n,
  m: 1024n ** 2n,
  g: 1024n ** 3n,
  t: 1024n ** 4n,
  p: 1024n ** 5n,
  e: 1024n ** 6n,
};

/**
 * Exact bytes of an `lvcreate -L` size, rounded up to a whole byte; LVM reads every unit as a power of
 * 1024, and no unit as MiB. null when it is not such a size.
 */
export function lvmSizeBytes(size: string): bigint | null {
  const match = /^(\d*)(?:\.(\d+))?([A-Za-z]?)$/.exec(size);
  const unit = match === null ? undefined : UNIT_BYTES[(match[3] || "m").toLowerCase()];
  if (match === null || unit === undefined || (match[1] === "" && match[2] === undefined)) return null;
  const fraction = match[2] ?? "";
  const scale = 10n ** BigInt(fraction.length);
  const scaled = (BigInt(match[1] || "0") * scale + BigInt(fraction || "0")) * unit;
  return (scaled + scale - 1n) / scale;
}
