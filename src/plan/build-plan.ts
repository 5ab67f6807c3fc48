// Inventory + configs + options → what would run on each host. Pure apart from reading the files;
// powers `validate`, `plan` and, later, every command that connects.
import { UsageError, type Problem } from "../errors.js";
import {
  CATEGORIES,
  canonicalCategory,
  CATEGORY_ALIASES,
  type Category,
  type Job,
  type ResticConfig,
  type Retention,
} from "../config/model.js";
import { loadResticConfig } from "../config/load-config.js";
import type { InventoryFormat } from "../inventory/inventory-source.js";
import {
  loadInventory,
  type HostSpec,
  type Inventory,
  type RepositoryDeclaration,
} from "../inventory/load-inventory.js";
import { maskRepository, repositoryIdentity } from "../config/rules.js";
import { selectHosts } from "../inventory/select-hosts.js";
import { formatShard, selectShard, type Shard } from "./shard.js";
import { didYouMean } from "../validation.js";

export interface PlanOptions {
  /** --inventory-format; detected when undefined. */
  inventoryFormat?: InventoryFormat | undefined;
  /** The environment an Ansible source or inventory script is read in. */
  env?: Record<string, string | undefined> | undefined;
  limit?: string | undefined;
  /** Category names or aliases; empty means all. */
  categories?: string[] | undefined;
  /** Job names; empty means all. */
  names?: string[] | undefined;
  /** Where `--limit @FILE` paths are relative to (the working directory). */
  cwd?: string | undefined;
  /** --shard: after every other selection and check, only the hosts that fall in it. */
  shard?: Shard | null | undefined;
}

/** A host that backs up: it has a config. */
export type BackupHost = HostSpec & { config: string };

/** What one host runs: its config and the jobs selected. A maintenance run of a host without a config has neither. */
export interface HostPlan {
  host: HostSpec;
  config: ResticConfig | null;
  /** The jobs selected by --category/--name, in config order. */
  jobs: Job[];
}

/** A host that backs up, with its config: the plan's hosts. */
export interface BackupPlan extends HostPlan {
  host: BackupHost;
  config: ResticConfig;
}

export interface FleetPlan {
  inventory: Inventory;
  hosts: BackupPlan[];
  /** The inventory's [repositories] that the planned hosts use, with who maintains them. */
  repositories?: MaintainedRepository[];
  /** Why the plan runs fewer hosts than it might (an empty shard); the report carries them. */
  warnings?: PlanWarning[];
}

/** A declared repository and the planned hosts' jobs that write to it. */
export interface MaintainedRepository {
  declaration: RepositoryDeclaration;
  maintainer: HostSpec;
  uses: { host: string; job: string; copy: boolean; keep: Retention | null }[];
}

export interface PlanWarning {
  code: string;
  message: string;
}

export function buildPlan(inventoryFile: string, options: PlanOptions = {}): FleetPlan {
  const loaded = loadInventory(inventoryFile, {
    format: options.inventoryFormat,
    env: options.env,
  });
  if (!loaded.ok) throw new UsageError("the inventory is not valid", { problems: loaded.problems });
  const inventory = loaded.inventory;
  const selected = selectHosts(inventory, options.limit, options.cwd);
  const categories = resolveCategories(inventoryFile, options.categories ?? []);

  // Many hosts often share one config file: read and check each file once.
  const configs = new Map<string, ReturnType<typeof loadResticConfig>>();
  const problems: Problem[] = [];
  const hosts: BackupPlan[] = [];
  const configOf = (file: string) => {
    let result = configs.get(file);
    if (result === undefined) {
      result = loadResticConfig(file);
      configs.set(file, result);
    }
    return result;
  };
  const reported = new Set<string>();
  for (const host of selected) {
    // A host without a config only maintains repositories: it never backs up.
    if (!hasConfig(host)) continue;
    const result = configOf(host.config);
    if (!result.ok) {
      if (!reported.has(host.config)) problems.push(...result.problems);
      reported.add(host.config);
      continue;
    }
    const jobs = result.config.jobs.filter(
      (job) =>
        (categories.length === 0 || categories.includes(job.category)) &&
        (options.names === undefined || options.names.length === 0 || options.names.includes(job.name)),
    );
    hosts.push({ host, config: result.config, jobs });
  }
  if (problems.length > 0) {
    const files = new Set(problems.map((p) => p.file.replace(/:\d+:\d+$/, ""))).size;
    throw new UsageError(
      `${files === 1 ? "a ResticLVM config is" : `${files} ResticLVM configs are`} not valid`,
      {
        problems,
      },
    );
  }
  const names = options.names ?? [];
  const known = new Set(hosts.flatMap((h) => h.config.jobs.map((j) => j.name)));
  const unknownNames = names.filter((name) => !known.has(name));
  if (unknownNames.length > 0) {
    throw new UsageError("--name names a job that no selected host has", {
      problems: unknownNames.map((name) => {
        const close = didYouMean(name, known);
        return {
          file: inventoryFile,
          path: "",
          message: `--name: no selected host has a job "${name}"${close === undefined ? "" : ` (did you mean "${close}"?)`}`,
        };
      }),
      hint: "see the jobs of each host with `rlvm-fleet plan`",
    });
  }
  checkDeclarations(inventory, configOf);
  // The shard is taken last: every machine checks the whole selection (its configs, --name) the same
  // way, so a mistake fails every shard alike rather than only the machines whose hosts it touches.
  if (options.shard === undefined || options.shard === null) return withRepositories({ inventory, hosts });
  const shard = options.shard;
  const inShard = selectShard(hosts, shard, (h) => h.host.name);
  const warnings: PlanWarning[] =
    inShard.length > 0
      ? []
      : [
          {
            code: "empty_shard",
            message: `shard ${formatShard(shard)} holds none of the ${hosts.length} selected host${hosts.length === 1 ? "" : "s"}: nothing to run here`,
          },
        ];
  return withRepositories({ inventory, hosts: inShard, warnings });
}

function hasConfig(host: HostSpec): host is BackupHost {
  return host.config !== null;
}

/** The repositories of a job's plan entries, copy destinations marked, with their keep values. */
function jobRepositories(job: Job): { repo: string; copy: boolean; keep: Retention | null }[] {
  return job.repositories.flatMap((r) => [
    { repo: r.repo, copy: false, keep: r.retention },
    ...r.copy_to.map((c) => ({ repo: c.repo, copy: true, keep: c.retention })),
  ]);
}

/**
 * Every declaration names a repository that some host of the inventory (selected or not) writes to,
 * compared as repositoryIdentity spells them; otherwise it is a typo that would maintain nothing.
 */
function checkDeclarations(
  inventory: Inventory,
  configOf: (file: string) => ReturnType<typeof loadResticConfig>,
): void {
  if (inventory.repositories.length === 0) return;
  const known = new Map<string, string>();
  for (const host of inventory.hosts) {
    if (!hasConfig(host)) continue;
    const result = configOf(host.config);
    if (!result.ok) continue; // an unselected host's broken config is its own run's error
    for (const job of result.config.jobs)
      for (const { repo } of jobRepositories(job)) known.set(repositoryIdentity(repo), repo);
  }
  const problems: Problem[] = inventory.repositories
    .filter((declaration) => !known.has(repositoryIdentity(declaration.url)))
    .map((declaration) => {
      const close = didYouMean(
        maskRepository(declaration.url),
        [...known.values()].map((repo) => maskRepository(repo)),
      );
      return {
        file: inventory.file,
        path: `${declaration.path}.url`,
        message: `repository "${maskRepository(declaration.url)}" is not a repository or copy_to destination of any host's config${close === undefined ? "" : ` (did you mean "${close}"?)`}`,
        hint: "write url exactly as the configs name the repository",
      };
    });
  // One maintenance run per host: its restic sees one environment.
  const envOf = new Map<string, RepositoryDeclaration>();
  for (const declaration of inventory.repositories) {
    const first = envOf.get(declaration.maintenance_host);
    if (first === undefined) envOf.set(declaration.maintenance_host, declaration);
    else if (first.env_file !== declaration.env_file)
      problems.push({
        file: inventory.file,
        path: `${declaration.path}.env_file`,
        message: `[${first.path}] and [${declaration.path}] are both maintained on ${declaration.maintenance_host} with different env_file settings`,
        hint: "give the repositories one maintenance host the same env_file (one file can hold every repository's variables)",
      });
  }
  if (problems.length > 0) throw new UsageError("the inventory is not valid", { problems });
}

/** The declared repositories the planned hosts write to, with their uses. */
function withRepositories(plan: FleetPlan): FleetPlan {
  const repositories: MaintainedRepository[] = [];
  for (const declaration of plan.inventory.repositories) {
    const identity = repositoryIdentity(declaration.url);
    const uses = plan.hosts.flatMap(({ host, jobs }) =>
      jobs.flatMap((job) =>
        jobRepositories(job)
          .filter(({ repo }) => repositoryIdentity(repo) === identity)
          .map(({ copy, keep }) => ({ host: host.name, job: job.name, copy, keep })),
      ),
    );
    const maintainer = plan.inventory.hosts.find((h) => h.name === declaration.maintenance_host);
    if (uses.length > 0 && maintainer !== undefined) repositories.push({ declaration, maintainer, uses });
  }
  return repositories.length > 0 ? { ...plan, repositories } : plan;
}

function resolveCategories(inventoryFile: string, names: string[]): Category[] {
  const accepted = [...CATEGORIES, ...Object.keys(CATEGORY_ALIASES)];
  const problems: Problem[] = [];
  const categories: Category[] = [];
  for (const name of names) {
    const category = canonicalCategory(name);
    if (category === undefined) {
      const close = didYouMean(name, accepted);
      problems.push({
        file: inventoryFile,
        path: "",
        message: `--category: unknown category "${name}"${close === undefined ? "" : ` (did you mean "${close}"?)`}`,
        hint: `categories: ${accepted.join(", ")}`,
      });
    } else categories.push(category);
  }
  if (problems.length > 0) throw new UsageError("unknown --category", { problems });
  return categories;
}
