// The installed entry point, run as a user runs it: a real process, built output.
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "../../..");
const BIN = join(ROOT, "bin/rlvm-fleet.js");
const run = (...args: string[]) =>
  spawnSync(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
  });

describe("bin/rlvm-fleet.js", () => {
  beforeAll(() => {
    execFileSync("npm", ["run", "--silent", "build"], { cwd: ROOT });
  }, 120_000);

  it("--version prints the package version", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
    const result = run("--version");
    expect(result.status).toBe(0);
    expect(result.stdout.trim()).toBe(pkg.version);
  });

  it("--help lists the commands and the exit codes", () => {
    const result = run("--help");
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/validate/);
    expect(result.stdout).toMatch(/plan/);
    expect(result.stdout).toMatch(/Exit codes:\n\s+0 {2}every selected host ok/);
    expect(run("plan", "--help").stdout).toMatch(/--category <category\.\.\.>/);
  });

  it("output into a closed pipe (| head) ends quietly with the command's exit code, not an EPIPE stack trace", () => {
    // `true` exits before node writes: every write meets a pipe without a reader.
    const piped = spawnSync(
      "bash",
      ["-c", 'node "$1" plan --help | true; echo "status=${PIPESTATUS[0]}" >&2', "pipe", BIN],
      { cwd: ROOT, encoding: "utf8" },
    );
    expect(piped.stderr).toMatch(/status=0\n$/);
    expect(piped.stderr).not.toMatch(/EPIPE|Error|at /);
  });

  it("a usage error exits 2 with one message and no stack trace", () => {
    const result = run("validate");
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/required option '-i, --inventory <source>' not specified/);
    const broken = run("validate", "--inventory", "no/such/inventory.toml");
    expect(broken.status).toBe(2);
    expect(broken.stderr).toMatch(/inventory does not exist/);
    expect(broken.stderr).not.toMatch(/\n\s+at /);
  });

  it("validates the sample inventory", () => {
    const result = run("validate", "--inventory", "inventory/example.toml");
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/3 hosts, 6 jobs, 6 repositories: valid/);
  });
});
