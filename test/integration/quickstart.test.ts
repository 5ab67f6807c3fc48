// The README's Quickstart in the order it gives, as a newcomer runs it in a fresh clone: `npm run demo`,
// then `npm test`, whose lint and format steps must not trip over what the demo left in the checkout.
import { execFileSync, spawnSync } from "node:child_process";
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeIntegration } from "./harness/describe-integration.js";

const ROOT = join(import.meta.dirname, "../..");

function run(command: string, args: string[], cwd: string) {
  const result = spawnSync(command, args, {
    cwd,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
    timeout: 240_000,
  });
  if (result.error) throw result.error;
  return { code: result.status, output: `${result.stdout}${result.stderr}` };
}

/**
 * A fresh clone, as far as the Quickstart can tell: the tracked files (their working tree versions, so
 * that uncommitted fixes count), committed in a new repository; `npm ci`'s node_modules and dist.
 */
function freshCheckout(): string {
  const dir = mkdtempSync(join(tmpdir(), "rlvm-fleet-quickstart-"));
  const tracked = execFileSync("git", ["ls-files", "-z"], { cwd: ROOT, encoding: "utf8" })
    .split("\0")
    .filter((path) => path !== "" && existsSync(join(ROOT, path)));
  for (const path of tracked) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    copyFileSync(join(ROOT, path), join(dir, path));
  }
  const git = (...args: string[]) =>
    execFileSync(
      "git",
      ["-c", "user.name=quickstart", "-c", "user.email=quickstart@example.invalid", ...args],
      {
        cwd: dir,
        stdio: "ignore",
      },
    );
  git("init", "-q");
  git("add", "-A");
  git("commit", "-q", "-m", "fresh clone");
  // A symlink instead of npm ci's directory: .gitignore's `node_modules/` matches directories only.
  writeFileSync(join(dir, ".git", "info", "exclude"), "/node_modules\n");
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  // The integration tier's global setup has just built dist from these sources.
  cpSync(join(ROOT, "dist"), join(dir, "dist"), { recursive: true });
  return dir;
}

describeIntegration("the README's Quickstart in a fresh clone", () => {
  let checkout = "";
  beforeAll(() => {
    checkout = freshCheckout();
  }, 120_000);
  afterAll(() => {
    if (checkout !== "") rmSync(checkout, { recursive: true, force: true });
  });

  it("npm run demo, then npm test's lint and format steps pass, and git status stays clean", () => {
    const demo = run(process.execPath, ["bin/rlvm-fleet.js", "demo"], checkout);
    expect(demo.code, demo.output).toBe(0);
    expect(existsSync(join(checkout, "rlvm-fleet-demo", "reports", "backup-2.json"))).toBe(true);

    const format = run("npx", ["prettier", "--check", "."], checkout);
    expect(format.code, format.output).toBe(0);
    const lint = run("npx", ["eslint", "."], checkout);
    expect(lint.code, lint.output).toBe(0);
    const status = run("git", ["status", "--porcelain"], checkout);
    expect(status.code, status.output).toBe(0);
    expect(status.output).toBe("");
  }, 600_000);
});
