// The one rule for a test that cannot run on this machine (a tool missing, not root): on a laptop it is
// skipped with its reason printed; where its tier's RLVM_REQUIRE_* variable is 1 (CI), it fails instead,
// so that a green run never hides a case that did not run.
import { describe, it } from "vitest";

export type Tier = "unit" | "integration" | "vm";

export const REQUIRE_VARIABLES = {
  unit: "RLVM_REQUIRE_UNIT",
  integration: "RLVM_REQUIRE_INTEGRATION",
  vm: "RLVM_REQUIRE_VM",
} as const satisfies Record<Tier, string>;

/** The part of vitest's test context this needs (a plain object in this helper's own tests). */
export interface SkippableContext {
  skip: (note: string) => void;
  task: { name: string };
}

export function isRequired(tier: Tier, env: NodeJS.ProcessEnv = process.env): boolean {
  return env[REQUIRE_VARIABLES[tier]] === "1";
}

/**
 * Inside a test: when `reason` says why it cannot run here, skip it with the reason printed, or throw
 * when the tier is required. Does nothing when `reason` is undefined or empty.
 */
export function skipOrFail(
  ctx: SkippableContext,
  tier: Tier,
  reason: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): void {
  if (reason === undefined || reason === "") return;
  const variable = REQUIRE_VARIABLES[tier];
  if (isRequired(tier, env)) throw new Error(`${reason} (${variable}=1 forbids skipping)`);
  console.warn(`Skipping "${ctx.task.name}": ${reason}. Set ${variable}=1 to make this an error.`);
  ctx.skip(reason);
}

/**
 * `describe` whose cases need what `reason` says is missing: skipped as a whole with the reason printed,
 * or, when the tier is required, one failing case in their place.
 */
export function describeOrSkip(
  tier: Tier,
  name: string,
  reason: string | undefined,
  body: () => void,
  env: NodeJS.ProcessEnv = process.env,
): void {
  if (reason === undefined || reason === "") {
    describe(name, body);
  } else if (isRequired(tier, env)) {
    describe(name, () => {
      it("has what its cases need", (ctx) => skipOrFail(ctx, tier, reason, env));
    });
  } else {
    const variable = REQUIRE_VARIABLES[tier];
    console.warn(`Skipping "${name}": ${reason}. Set ${variable}=1 to make this an error.`);
    describe.skip(name, body);
  }
}
