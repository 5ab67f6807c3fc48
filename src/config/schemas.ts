// Strict zod schemas of both ResticLVM config generations, exactly as their files are written. The
// rules that span several keys are refinements that run whenever the keys they read are valid, so one
// broken value never hides another problem.
import { z } from "zod";
import {
  absolutePath,
  cowWarnPercent,
  isWithin,
  keepCount,
  KEEP_KEYS,
  lvName,
  repository,
  maskRepository,
  repositoryIdentity,
  snapshotSize,
  stripTrailingSlash,
  vgFreeMargin,
  vgName,
} from "./rules.js";

const pruneKeep = {
  prune_keep_last: keepCount.optional(),
  prune_keep_daily: keepCount.optional(),
  prune_keep_weekly: keepCount.optional(),
  prune_keep_monthly: keepCount.optional(),
  prune_keep_yearly: keepCount.optional(),
};

const ALL_ZERO =
  "every keep value of this retention policy is 0: restic forget would delete every snapshot not tagged protected";
const ALL_ZERO_HINT =
  "set at least one keep value above 0, or remove them all to never prune this repository";

/** Keep values all given as 0 would make restic delete everything; none given means never pruned. */
function rejectAllZero(prefix: string) {
  const keys = KEEP_KEYS.map((k) => `${prefix}${k}`);
  const fields = z.object(Object.fromEntries(keys.map((k) => [k, keepCount.optional()])));
  return [
    (value: Record<string, unknown>, ctx: z.core.$RefinementCtx) => {
      const given = keys.filter((k) => value[k] !== undefined);
      if (given.length > 0 && given.every((k) => value[k] === 0)) {
        ctx.addIssue({ code: "custom", message: `${ALL_ZERO}\n${ALL_ZERO_HINT}`, path: [given[0] ?? ""] });
      }
    },
    { when: (payload: { value: unknown }) => fields.safeParse(payload.value).success },
  ] as const;
}

export const snapshotSettingsSchema = z.strictObject({
  min_vg_free_after_snapshots: vgFreeMargin.optional(),
  snapshot_cow_warn_percent: cowWarnPercent.optional(),
});

const sourceAndExcludes = z.object({
  backup_source_path: absolutePath,
  exclude_paths: z.array(absolutePath).optional(),
});

function checkExcludes(
  value: { backup_source_path: string; exclude_paths?: string[] | undefined },
  ctx: z.core.$RefinementCtx,
) {
  (value.exclude_paths ?? []).forEach((exclude, index) => {
    if (!isWithin(exclude, value.backup_source_path)) {
      ctx.addIssue({
        code: "custom",
        path: ["exclude_paths", index],
        message: `exclude path "${exclude}" is outside the backup source "${stripTrailingSlash(value.backup_source_path)}"\nan exclude must lie below backup_source_path; remove it or fix the path`,
      });
    }
  });
}

const repoList = z.object({
  repositories: z
    .array(z.object({ repo_path: z.string(), copy_to: z.array(z.object({ repo: z.string() })).optional() }))
    .optional(),
});

function checkDuplicateRepositories(value: z.infer<typeof repoList>, ctx: z.core.$RefinementCtx) {
  const seen = new Map<string, number>();
  (value.repositories ?? []).forEach((repo, index) => {
    const identity = repositoryIdentity(repo.repo_path);
    const first = seen.get(identity);
    if (first !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["repositories", index, "repo_path"],
        message: `repository "${maskRepository(repo.repo_path)}" is listed twice for this job (also repositories[${first}])\nremove one of the two entries`,
      });
    } else seen.set(identity, index);
    const copies = new Set<string>();
    (repo.copy_to ?? []).forEach((copy, copyIndex) => {
      const copyIdentity = repositoryIdentity(copy.repo);
      const path = ["repositories", index, "copy_to", copyIndex, "repo"];
      if (copyIdentity === identity) {
        ctx.addIssue({ code: "custom", path, message: "copy_to names the repository it copies from" });
      } else if (copies.has(copyIdentity)) {
        ctx.addIssue({
          code: "custom",
          path,
          message: `copy_to destination "${maskRepository(copy.repo)}" is listed twice`,
        });
      }
      copies.add(copyIdentity);
    });
  });
}

// The category format of the seed: [standard_path.NAME], [logical_volume_root.NAME], ...

const categoryCopyTo = z
  .strictObject({ repo: repository, password_file: absolutePath, ...pruneKeep })
  .superRefine(...rejectAllZero("prune_keep_"));

const categoryRepository = z
  .strictObject({
    repo_path: repository,
    password_file: absolutePath,
    ...pruneKeep,
    copy_to: z.array(categoryCopyTo).optional(),
  })
  .superRefine(...rejectAllZero("prune_keep_"));

const categoryJobCommon = {
  backup_source_path: absolutePath,
  exclude_paths: z.array(absolutePath).optional(),
  repositories: z.array(categoryRepository).min(1, "expected at least one repository").optional(),
  // The legacy single-repository form.
  restic_repo: repository.optional(),
  restic_password_file: absolutePath.optional(),
  ...pruneKeep,
};

const LEGACY_KEYS = ["restic_repo", "restic_password_file", ...KEEP_KEYS.map((k) => `prune_keep_${k}`)];

/** A job has [[repositories]] or the legacy single-repository keys, not both, not neither. */
function checkRepositoryForm(value: Record<string, unknown>, ctx: z.core.$RefinementCtx) {
  const legacy = LEGACY_KEYS.filter((k) => value[k] !== undefined);
  if (value["repositories"] !== undefined) {
    if (legacy.length > 0) {
      ctx.addIssue({
        code: "custom",
        path: [legacy[0] ?? ""],
        message: `the single-repository keys (${legacy.join(", ")}) cannot be combined with [[repositories]]\nmove them into a [[repositories]] entry (repo_path, password_file, prune_keep_*)`,
      });
    }
  } else if (legacy.length === 0) {
    ctx.addIssue({
      code: "custom",
      path: ["repositories"],
      message:
        "missing required key (expected at least one [[repositories]] entry with repo_path and password_file)",
    });
  } else {
    for (const key of ["restic_repo", "restic_password_file"]) {
      if (value[key] === undefined) {
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: "missing required key of the single-repository form (expected a string)",
        });
      }
    }
  }
}

// Refinements read the parsed object through the narrow shapes their `when` guard has checked.
type Refinement = (value: never, ctx: z.core.$RefinementCtx) => void;
const loosely = (check: Refinement) => (value: unknown, ctx: z.core.$RefinementCtx) =>
  check(value as never, ctx);

const withJobRules = <T extends z.ZodObject>(schema: T) =>
  schema
    .superRefine(loosely(checkRepositoryForm))
    .superRefine(...rejectAllZero("prune_keep_"))
    .superRefine(loosely(checkExcludes), { when: (p) => sourceAndExcludes.safeParse(p.value).success })
    .superRefine(loosely(checkDuplicateRepositories), { when: (p) => repoList.safeParse(p.value).success });

export const standardPathJob = withJobRules(
  z.strictObject({ ...categoryJobCommon, remount_readonly: z.boolean().optional() }),
);

export const logicalVolumeJob = withJobRules(
  z.strictObject({ ...categoryJobCommon, vg_name: vgName, lv_name: lvName, snapshot_size: snapshotSize }),
);

export const categoryFile = z.strictObject({
  standard_path: z.record(z.string(), standardPathJob).optional(),
  logical_volume_root: z.record(z.string(), logicalVolumeJob).optional(),
  logical_volume_nonroot: z.record(z.string(), logicalVolumeJob).optional(),
  snapshot_settings: snapshotSettingsSchema.optional(),
});

export type CategoryFile = z.infer<typeof categoryFile>;

// The volume format of ResticLVM 0.10: [prune_policy.NAME], [volume.NAME] with volume_type.

export const prunePolicy = z
  .strictObject({
    keep_last: keepCount.optional(),
    keep_daily: keepCount.optional(),
    keep_weekly: keepCount.optional(),
    keep_monthly: keepCount.optional(),
    keep_yearly: keepCount.optional(),
  })
  .superRefine(...rejectAllZero("keep_"));

const volumeCopyTo = z.strictObject({
  repo: repository,
  password_file: absolutePath,
  prune_policy: z.string().optional(),
});

const volumeRepository = z.strictObject({
  repo_path: repository,
  password_file: absolutePath,
  prune_policy: z.string().optional(),
  copy_to: z.array(volumeCopyTo).optional(),
});

export const VOLUME_TYPES = [
  "standard_path",
  "lv_root",
  "lv_nonroot",
  "logical_volume_root",
  "logical_volume_nonroot",
] as const;

const LV_KEYS = ["vg_name", "lv_name", "snapshot_size"] as const;

/** LV volumes need vg_name, lv_name and snapshot_size; standard_path volumes must not have them. */
function checkVolumeKeys(value: Record<string, unknown>, ctx: z.core.$RefinementCtx) {
  const type = value["volume_type"];
  if (type === "standard_path") {
    for (const key of LV_KEYS) {
      if (value[key] !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: `${key} does not apply to a standard_path volume (it is backed up live, without a snapshot)\nremove ${key}, or set volume_type = "lv_nonroot" or "lv_root"`,
        });
      }
    }
  } else {
    for (const key of LV_KEYS) {
      if (value[key] === undefined) {
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: `missing required key for volume_type "${String(type)}" (expected a string)`,
        });
      }
    }
    if (value["remount_readonly"] !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["remount_readonly"],
        message:
          "remount_readonly applies only to standard_path volumes (LV volumes are read from a snapshot)",
      });
    }
  }
}

export const volumeJob = z
  .strictObject({
    volume_type: z.enum(VOLUME_TYPES, {
      error: () => `expected one of ${VOLUME_TYPES.map((t) => `"${t}"`).join(", ")}`,
    }),
    backup_source_path: absolutePath,
    exclude_paths: z.array(absolutePath).optional(),
    remount_readonly: z.boolean().optional(),
    vg_name: vgName.optional(),
    lv_name: lvName.optional(),
    snapshot_size: snapshotSize.optional(),
    repositories: z.array(volumeRepository).min(1, "expected at least one repository"),
  })
  .superRefine(checkVolumeKeys, {
    when: (p) => z.object({ volume_type: z.enum(VOLUME_TYPES) }).safeParse(p.value).success,
  })
  .superRefine(checkExcludes, { when: (p) => sourceAndExcludes.safeParse(p.value).success })
  .superRefine(checkDuplicateRepositories, { when: (p) => repoList.safeParse(p.value).success });

export const volumeFile = z.strictObject({
  prune_policy: z.record(z.string(), prunePolicy).optional(),
  volume: z.record(z.string(), volumeJob).optional(),
  snapshot_settings: snapshotSettingsSchema.optional(),
});

export type VolumeFile = z.infer<typeof volumeFile>;
export type CategoryRepository = z.infer<typeof categoryRepository>;
