// The value rules of DESIGN §4: what LVM, restic and a sane path would accept, checked before any
// of it reaches a host.
import { z } from "zod";

export const NAME_PATTERN = /^[A-Za-z0-9._-]+$/;

export const jobName = z
  .string()
  .regex(NAME_PATTERN, "a job name may use only letters, digits, '.', '_' and '-'");

// lvm(8) "VALID NAMES": [a-zA-Z0-9+_.-], not starting with '-', not "." or "..". The run appends
// `_rlvm_<runid>` to an LV name for its snapshot, so leave room under LVM's 127-character limit.
const LVM_NAME = /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$/;
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
export const snapshotSize = z.string().refine((s) => LVM_SIZE.test(s) && parseFloat(s) > 0, {
  message:
    'expected an LVM size such as "2G", "512M" or "1.5T": a positive number and one unit letter, no space',
});

export const cowWarnPercent = z.number().gt(0).max(100);
export const vgFreeMargin = z.string().refine((s) => LVM_SIZE.test(s) || /^\d+(?:\.\d+)?%$/.test(s), {
  message: 'expected an LVM size such as "1G" or a percentage of the VG such as "10%"',
});

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

export const keepCount = z.number().int("expected a whole number").min(0, "expected a number ≥ 0");

const UNIT_BYTES: Record<string, number> = {
  b: 1,
  s: 512,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
  p: 1024 ** 5,
  e: 1024 ** 6,
};

/** Bytes of an `lvcreate -L` size; LVM reads every unit as a power of 1024, and no unit as MiB. */
export function lvmSizeBytes(size: string): number {
  const match = /^([\d.]+)([A-Za-z]?)$/.exec(size);
  if (match === null) return NaN;
  return Math.ceil(Number(match[1]) * (UNIT_BYTES[(match[2] || "m").toLowerCase()] ?? NaN));
}
