// `plan`: what a backup would run on each host, from the inventory and configs; no connection.
import { resolve } from "node:path";
import { buildPlan } from "../../plan/build-plan.js";
import { parseShard } from "../../plan/shard.js";
import { planDocument } from "../../plan/plan-document.js";
import { EXIT_CODES } from "../../errors.js";
import type { CliIo } from "../io.js";
import { splitList, type CommonOptions, type JobFilterOptions, type ShardOption } from "../options.js";
import { renderPlanTable } from "../render/plan-table.js";
import type { Style } from "../render/style.js";

export interface PlanOptions extends CommonOptions, JobFilterOptions, ShardOption {}

export function planCommand(options: PlanOptions, io: CliIo, style: Style): number {
  const built = buildPlan(resolve(io.cwd, options.inventory), {
    inventoryFormat: options.inventoryFormat,
    env: io.env,
    limit: options.limit,
    cwd: io.cwd,
    categories: splitList(options.category),
    names: splitList(options.name),
    shard: options.shard === undefined ? null : parseShard(options.shard),
  });
  for (const warning of built.warnings ?? []) io.stderr(`rlvm-fleet: warning: ${warning.message}\n`);
  const plan = planDocument(built);
  io.stdout(options.format === "json" ? `${JSON.stringify(plan, null, 2)}\n` : renderPlanTable(plan, style));
  return EXIT_CODES.ok.code;
}
