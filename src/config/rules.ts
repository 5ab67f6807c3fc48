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
        message: `expected an absolute local path or a restic backend URL (sftp:, rest:, s3:, b2:, azure:, gs:, swift:, rclone:), got "${s}"`,
      });
    }
  } else if (s.length === match[0].length) {
    ctx.addIssue({ code: "custom", message: `repository "${s}" names a backend but no location` });
  } else if (match[1] === "local" && !s.slice("local:".length).startsWith("/")) {
    ctx.addIssue({ code: "custom", message: `a local: repository needs an absolute path, got "${s}"` });
  }
});

/** The same repository written two ways (trailing slash, `local:` prefix) is one repository. */
export function repositoryIdentity(repo: string): string {
  const local = repo.startsWith("local:") ? repo.slice("local:".length) : repo;
  return local.startsWith("/") ? stripTrailingSlash(local) : repo.replace(/\/+$/, "");
}

/** Hide credentials inside a repository URL: `rest:https://user:secret@host/` → `rest:https://user:***@host/`. */
export function maskRepository(repo: string): string {
  return repo.replace(/(\/\/[^/@:\s]*):[^/@\s]*@/, "$1:***@");
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
