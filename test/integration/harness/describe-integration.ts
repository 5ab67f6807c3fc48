import { describe, it } from "vitest";
import { checkPrerequisites, describeMissingPrerequisites, isIntegrationRequired } from "./prerequisites.js";

/**
 * `describe` for tests that need a real sshd fleet. When prerequisites are missing the suite is skipped with
 * a warning saying why, unless RLVM_REQUIRE_INTEGRATION=1 (CI), where it fails instead: CI must never pass
 * by silently skipping.
 */
export function describeIntegration(name: string, body: () => void): void {
  const missing = checkPrerequisites();
  const reason = describeMissingPrerequisites(missing);
  if (missing.length > 0 && isIntegrationRequired()) {
    describe(name, () => {
      it("has its prerequisites installed", () => {
        throw new Error(`${reason} (RLVM_REQUIRE_INTEGRATION=1 forbids skipping)`);
      });
    });
    return;
  }
  if (missing.length > 0) {
    console.warn(`Skipping "${name}": ${reason}. Set RLVM_REQUIRE_INTEGRATION=1 to make this an error.`);
  }
  describe.skipIf(missing.length > 0)(name, body);
}
