// `validate`: parse and check the inventory and every selected host's config; no connection.
import { resolve } from "node:path";
import { buildPlan } from "../../plan/build-plan.js";
import { planDocument } from "../../plan/plan-document.js";
import { EXIT_CODES } from "../../errors.js";
import type { CliIo } from "../io.js";
import type { CommonOptions } from "../options.js";
import type { Style } from "../render/style.js";
import { renderValidateSummary } from "../render/validate-summary.js";

export interface ValidateOptions extends CommonOptions {
  verbose?: boolean;
}

export function validateCommand(options: ValidateOptions, io: CliIo, style: Style): number {
  const fleet = buildPlan(resolve(io.cwd, options.inventory), {
    limit: options.limit,
    inventoryFormat: options.inventoryFormat,
    env: io.env,
  });
  const plan = planDocument(fleet);
  if (options.format === "json") io.stdout(`${JSON.stringify({ valid: true, ...plan }, null, 2)}\n`);
  else {
    const hosts = options.verbose === true ? fleet.hosts.map((h) => h.host) : undefined;
    io.stdout(renderValidateSummary(plan, style, io.cwd, hosts));
  }
  return EXIT_CODES.ok.code;
}
