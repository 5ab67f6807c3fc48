// The integration tier runs the built binary too: build it from the sources under test first, unless
// scripts/test.mjs built it already for passes that run side by side (RLVM_DIST_BUILT=1).
import { execFileSync } from "node:child_process";
import { join } from "node:path";

export default function setup(): void {
  if (process.env.RLVM_DIST_BUILT === "1") return;
  execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], {
    cwd: join(import.meta.dirname, "../.."),
    stdio: "inherit",
  });
}
