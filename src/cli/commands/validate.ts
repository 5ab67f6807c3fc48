// `validate`: parse and check the inventory and every selected host's config; no connection.
import { resolve } from "node:path";
import { buildPlan } from "../../plan/build-plan.js";
import { planDocument } from "../../plan/plan-document.js";
import { EXIT_CODES } from "../../errors.js";
import type { CliIo } from "../io.js";
import type { CommonOptions } from "../options.js";
import type { Style } from "../render/style.js";
import { renderValidateSummary } from "../render/validate-summary.js";

export type ValidateOptions = CommonOptions;

export function validateCommand(options: ValidateOptions, io: CliIo, style: Style): number {
  const plan = planDocument(buildPlan(resolve(io.cwd, options.inventory), { limit: options.limit }));
  if (options.format === "json") io.stdout(`${JSON.stringify({ valid: true, ...plan }, null, 2)}\n`);
  else io.stdout(renderValidateSummary(plan, style, io.cwd));
  return EXIT_CODES.ok.code;
}
