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
} from "../config/model.js";
import { loadResticConfig } from "../config/load-config.js";
import type { InventoryFormat } from "../inventory/inventory-source.js";
import { loadInventory, type HostSpec, type Inventory } from "../inventory/load-inventory.js";
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

export interface HostPlan {
  host: HostSpec;
  config: ResticConfig;
  /** The jobs selected by --category/--name, in config order. */
  jobs: Job[];
}

export interface FleetPlan {
  inventory: Inventory;
  hosts: HostPlan[];
  /** Why the plan runs fewer hosts than it might (an empty shard); the report carries them. */
  warnings?: PlanWarning[];
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
  const hosts: HostPlan[] = [];
  for (const host of selected) {
    let result = configs.get(host.config);
    if (result === undefined) {
      result = loadResticConfig(host.config);
      configs.set(host.config, result);
      if (!result.ok) problems.push(...result.problems);
    }
    if (!result.ok) continue;
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
  // The shard is taken last: every machine checks the whole selection (its configs, --name) the same
  // way, so a mistake fails every shard alike rather than only the machines whose hosts it touches.
  if (options.shard === undefined || options.shard === null) return { inventory, hosts };
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
  return { inventory, hosts: inShard, warnings };
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
