// The normalised ResticLVM model: both config generations end up as this.

export const CATEGORIES = ["standard_path", "logical_volume_root", "logical_volume_nonroot"] as const;
export type Category = (typeof CATEGORIES)[number];

/** ResticLVM 0.10 names, accepted wherever a category is named (configs and `--category`). */
export const CATEGORY_ALIASES: Readonly<Record<string, Category>> = {
  lv_root: "logical_volume_root",
  lv_nonroot: "logical_volume_nonroot",
};

export function canonicalCategory(name: string): Category | undefined {
  if ((CATEGORIES as readonly string[]).includes(name)) return name as Category;
  return CATEGORY_ALIASES[name];
}

/** restic forget `--keep-*` values; a missing key is 0 (not used). */
export interface Retention {
  last: number;
  daily: number;
  weekly: number;
  monthly: number;
  yearly: number;
}

export interface CopyTarget {
  repo: string;
  password_file: string;
  /** null: no retention configured, prune leaves this destination alone. */
  retention: Retention | null;
}

export interface Repository {
  repo: string;
  password_file: string;
  retention: Retention | null;
  copy_to: CopyTarget[];
}

export interface SnapshotVolume {
  vg_name: string;
  lv_name: string;
  snapshot_size: string;
}

export interface Job {
  name: string;
  category: Category;
  source_path: string;
  exclude_paths: string[];
  /** standard_path only: remount the source read-only for the backup (the seed's semantics). */
  remount_readonly: boolean;
  /** The LV to snapshot; null for standard_path. */
  volume: SnapshotVolume | null;
  repositories: Repository[];
}

export interface SnapshotSettings {
  /** Free space a VG must keep after the run's snapshots: an LVM size ("1G") or a percentage ("10%"). */
  min_vg_free_after_snapshots: string | null;
  snapshot_cow_warn_percent: number;
}

export interface ResticConfig {
  file: string;
  format: "category" | "volume";
  jobs: Job[];
  snapshot_settings: SnapshotSettings;
}

export const DEFAULT_COW_WARN_PERCENT = 70;

/** Every repository string the config names (repositories and copy destinations), each once. */
export function repositoriesOf(config: Pick<ResticConfig, "jobs"> | null): string[] {
  const urls = (config?.jobs ?? []).flatMap((job) =>
    job.repositories.flatMap((r) => [r.repo, ...r.copy_to.map((c) => c.repo)]),
  );
  return [...new Set(urls)];
}
