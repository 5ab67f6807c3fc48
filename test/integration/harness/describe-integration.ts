import { describeOrSkip } from "../../helpers/skip-or-fail.js";
import { checkPrerequisites, describeMissingPrerequisites } from "./prerequisites.js";

/**
 * `describe` for tests that need a real sshd fleet: skipped with the reason printed when this machine
 * lacks their tools, a failure instead where RLVM_REQUIRE_INTEGRATION=1 (CI).
 */
export function describeIntegration(name: string, body: () => void): void {
  const missing = checkPrerequisites();
  describeOrSkip(
    "integration",
    name,
    missing.length > 0 ? describeMissingPrerequisites(missing) : undefined,
    body,
  );
}
