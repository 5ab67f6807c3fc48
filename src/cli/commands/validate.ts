import { resolve } from "node:path";
import { buildPlan } from "../../plan/build-plan.js";
import { planDocument } from "../../plan/plan-document.js";
import { EXIT_CODES } from "../../errors.js";
import type { CliIo } from "../io.js";
import type { CommonOptions } from "../main.js";
import type { Style } from "../render/style.js";
import { renderValidateSummary } from "../render/validate-summary.js";

export function validateCommand(options: CommonOptions, io: CliIo, style: Style): number {
  const plan = planDocument(buildPlan(resolve(io.cwd, options.inventory), { limit: options.limit }));
  if (options.format === "json") io.stdout(`${JSON.stringify({ valid: true, ...plan }, null, 2)}\n`);
  else io.stdout(renderValidateSummary(plan, style, io.cwd));
  return EXIT_CODES.ok.code;
}
