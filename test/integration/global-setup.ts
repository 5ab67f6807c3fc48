// The integration tier runs the built binary too: build it from the sources under test first.
import { execFileSync } from "node:child_process";
import { join } from "node:path";

export default function setup(): void {
  execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], {
    cwd: join(import.meta.dirname, "../.."),
    stdio: "inherit",
  });
}
