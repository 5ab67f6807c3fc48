// Read one ResticLVM config (either generation) and normalise it, listing every problem found.
import { PLAN_LIMITS } from "../agent/protocol.js";
import { formatTomlPath, type Problem } from "../errors.js";
import { findControlCharacters, readTomlFile, suggestion, zodProblems } from "../validation.js";
import {
  CATEGORIES,
  canonicalCategory,
  DEFAULT_COW_WARN_PERCENT,
  type Category,
  type Job,
  type ResticConfig,
  type Retention,
} from "./model.js";
import { isName, KEEP_KEYS, lvmSizeBytes, maskSecretsIn, NAME_RULE, stripTrailingSlash } from "./rules.js";
import {
  categoryFile,
  volumeFile,
  type CategoryFile,
  type CategoryRepository,
  type VolumeFile,
} from "./schemas.js";

export type ConfigResult = { ok: true; config: ResticConfig } | { ok: false; problems: Problem[] };

const VOLUME_KEYS = ["volume", "prune_policy"];

export function loadResticConfig(file: string): ConfigResult {
  const read = readTomlFile(file, "ResticLVM config");
  if (!read.ok) return { ok: false, problems: [read.problem] };
  return normaliseResticConfig(file, read.data);
}

export function normaliseResticConfig(file: string, data: Record<string, unknown>): ConfigResult {
  const problems: Problem[] = findControlCharacters(file, data);
  const keys = Object.keys(data);
  const format = keys.some((k) => VOLUME_KEYS.includes(k)) ? "volume" : "category";
  if (format === "volume" && keys.some((k) => (CATEGORIES as readonly string[]).includes(k))) {
    problems.push({
      file,
      path: "",
      message:
        "mixes the category format ([standard_path.*], [logical_volume_*.*]) and the 0.10 volume format ([volume.*], [prune_policy.*])",
      hint: "write the whole file in one of the two formats",
    });
    return { ok: false, problems };
  }
  const schema = format === "volume" ? volumeFile : categoryFile;
  const parsed = schema.safeParse(data, { reportInput: true });
  if (!parsed.success) problems.push(...zodProblems(file, schema, parsed.error.issues));

  // Rules across tables, read from the raw data so they are reported alongside the per-value ones.
  const jobTables =
    format === "volume" ? ["volume"] : Object.keys(data).filter((k) => canonicalCategory(k) === k);
  problems.push(...checkJobNames(file, data, jobTables));
  if (format === "volume") problems.push(...checkPolicyReferences(file, data));
  if (jobTables.every((table) => !isTable(data[table]) || Object.keys(data[table]).length === 0)) {
    problems.push({
      file,
      path: "",
      message: "defines no backup job",
      hint: "add a [standard_path.NAME], [logical_volume_root.NAME], [logical_volume_nonroot.NAME] or [volume.NAME] table",
    });
  }
  if (problems.length > 0 || !parsed.success) return { ok: false, problems: masked(problems, data) };

  const jobs =
    format === "volume"
      ? volumeJobs(parsed.data as VolumeFile)
      : categoryJobs(parsed.data as CategoryFile, jobTables);
  const settings = parsed.data.snapshot_settings;
  const config: ResticConfig = {
    file,
    format,
    jobs,
    snapshot_settings: {
      min_vg_free_after_snapshots:
        settings?.min_vg_free_after_snapshots ?? (format === "volume" ? VOLUME_FORMAT_VG_MARGIN : null),
      snapshot_cow_warn_percent: settings?.snapshot_cow_warn_percent ?? DEFAULT_COW_WARN_PERCENT,
    },
  };
  const totals = checkVgTotals(config);
  return totals.length > 0 ? { ok: false, problems: totals } : { ok: true, config };
}

/**
 * ResticLVM 0.10's own loader (backup_config.py) keeps 1G free in each VG when [snapshot_settings]
 * does not say otherwise; the seed's category format never had a margin, so it keeps none by default.
 */
export const VOLUME_FORMAT_VG_MARGIN = "1G";

/** A VG's snapshots plus its margin must be a byte count the agent (and LVM) can work with. */
function checkVgTotals(config: ResticConfig): Problem[] {
  const margin = config.snapshot_settings.min_vg_free_after_snapshots;
  const marginBytes = margin === null || margin.endsWith("%") ? 0n : (lvmSizeBytes(margin) ?? 0n);
  const totals = new Map<string, bigint>();
  for (const job of config.jobs) {
    if (job.volume === null) continue;
    const vg = job.volume.vg_name;
    totals.set(vg, (totals.get(vg) ?? marginBytes) + (lvmSizeBytes(job.volume.snapshot_size) ?? 0n));
  }
  return [...totals]
    .filter(([, bytes]) => bytes > PLAN_LIMITS.maxBytes)
    .map(([vg]) => ({
      file: config.file,
      path: "",
      message: `the snapshots in VG ${vg} and its margin add up to more than LVM can hold (8 EiB)`,
      hint: "check snapshot_size of the jobs in that VG and min_vg_free_after_snapshots",
    }));
}

/** null when no keep value is given: the repository is never pruned. */
function retention(entry: object, prefix: string): Retention | null {
  const keep = (k: string) => (entry as Record<string, number | undefined>)[`${prefix}${k}`];
  if (KEEP_KEYS.every((k) => keep(k) === undefined)) return null;
  return Object.fromEntries(KEEP_KEYS.map((k) => [k, keep(k) ?? 0])) as unknown as Retention;
}

/** Jobs in file order: the order a reader sees is the order they run in. */
function categoryJobs(data: CategoryFile, tables: string[]): Job[] {
  return tables.flatMap((table) => {
    const category = table as Category;
    return Object.entries(data[category] ?? {}).map(([name, raw]): Job => {
      const listed: CategoryRepository[] | undefined = raw.repositories;
      const repositories = listed?.map((repo) => ({
        repo: repo.repo_path,
        password_file: repo.password_file,
        retention: retention(repo, "prune_keep_"),
        copy_to: (repo.copy_to ?? []).map((copy) => ({
          repo: copy.repo,
          password_file: copy.password_file,
          retention: retention(copy, "prune_keep_"),
        })),
      })) ?? [
        {
          repo: raw.restic_repo ?? "",
          password_file: raw.restic_password_file ?? "",
          retention: retention(raw, "prune_keep_"),
          copy_to: [],
        },
      ];
      return {
        name,
        category,
        source_path: stripTrailingSlash(raw.backup_source_path),
        exclude_paths: (raw.exclude_paths ?? []).map(stripTrailingSlash),
        remount_readonly: "remount_readonly" in raw ? (raw.remount_readonly ?? false) : false,
        volume:
          "vg_name" in raw
            ? { vg_name: raw.vg_name, lv_name: raw.lv_name, snapshot_size: raw.snapshot_size }
            : null,
        repositories,
      };
    });
  });
}

function volumeJobs(data: VolumeFile): Job[] {
  const policies = data.prune_policy ?? {};
  const policy = (name: string | undefined) => {
    const found = name === undefined ? undefined : policies[name];
    return found === undefined ? null : retention(found, "keep_");
  };
  return Object.entries(data.volume ?? {}).map(([name, raw]): Job => {
    const category = canonicalCategory(raw.volume_type) as Category;
    return {
      name,
      category,
      source_path: stripTrailingSlash(raw.backup_source_path),
      exclude_paths: (raw.exclude_paths ?? []).map(stripTrailingSlash),
      remount_readonly: raw.remount_readonly ?? false,
      volume:
        category === "standard_path"
          ? null
          : {
              vg_name: raw.vg_name ?? "",
              lv_name: raw.lv_name ?? "",
              snapshot_size: raw.snapshot_size ?? "",
            },
      repositories: raw.repositories.map((repo) => ({
        repo: repo.repo_path,
        password_file: repo.password_file,
        retention: policy(repo.prune_policy),
        copy_to: (repo.copy_to ?? []).map((copy) => ({
          repo: copy.repo,
          password_file: copy.password_file,
          retention: policy(copy.prune_policy),
        })),
      })),
    };
  });
}

/** Job names become restic tags: safe characters, and unique across categories. */
function checkJobNames(file: string, data: Record<string, unknown>, tables: string[]): Problem[] {
  const problems: Problem[] = [];
  const seen = new Map<string, string>();
  for (const table of tables) {
    const jobs = data[table];
    if (!isTable(jobs)) continue;
    for (const name of Object.keys(jobs)) {
      const path = formatTomlPath([table, name]);
      if (!isName(name)) {
        problems.push({
          file,
          path,
          message: `job name "${name}" ${NAME_RULE}`,
          hint: "it becomes a restic tag (job:NAME); rename the table",
        });
      }
      const other = seen.get(name);
      if (other !== undefined) {
        problems.push({
          file,
          path,
          message: `job name "${name}" is also used under ${other}; job names must be unique across categories`,
          hint: "rename one of them",
        });
      } else seen.set(name, table);
    }
  }
  return problems;
}

function checkPolicyReferences(file: string, data: Record<string, unknown>): Problem[] {
  const policies = isTable(data["prune_policy"]) ? Object.keys(data["prune_policy"]) : [];
  const problems: Problem[] = [];
  const check = (entry: unknown, path: PropertyKey[]) => {
    const name = isTable(entry) ? entry["prune_policy"] : undefined;
    if (typeof name !== "string" || policies.includes(name)) return;
    problems.push({
      file,
      path: formatTomlPath([...path, "prune_policy"]),
      message: `names prune policy "${name}", which is not defined${suggestion(name, policies)}`,
      hint:
        policies.length > 0
          ? `defined policies: ${policies.join(", ")}`
          : `define it as [prune_policy.${name}]`,
    });
  };
  const volumes = isTable(data["volume"]) ? data["volume"] : {};
  for (const [name, volume] of Object.entries(volumes)) {
    const repos = isTable(volume) && Array.isArray(volume["repositories"]) ? volume["repositories"] : [];
    repos.forEach((repo: unknown, index: number) => {
      check(repo, ["volume", name, "repositories", index]);
      const copies = isTable(repo) && Array.isArray(repo["copy_to"]) ? repo["copy_to"] : [];
      copies.forEach((copy: unknown, copyIndex: number) =>
        check(copy, ["volume", name, "repositories", index, "copy_to", copyIndex]),
      );
    });
  }
  return problems;
}

/**
 * A message may quote any value of the file (zod's "expected …, got", a value in the wrong key): the
 * credentials of every string that could be a repository are masked out of every message and hint.
 */
function masked(problems: Problem[], data: unknown): Problem[] {
  const strings: string[] = [];
  const walk = (value: unknown): void => {
    if (typeof value === "string") strings.push(value);
    else if (Array.isArray(value)) value.forEach(walk);
    else if (isTable(value)) Object.values(value).forEach(walk);
  };
  walk(data);
  return problems.map((problem) => ({
    ...problem,
    message: maskSecretsIn(problem.message, strings),
    ...(problem.hint === undefined ? {} : { hint: maskSecretsIn(problem.hint, strings) }),
  }));
}

function isTable(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value) && !(value instanceof Date);
}
