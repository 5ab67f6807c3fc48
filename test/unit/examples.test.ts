// The samples a new user reads first must stay valid.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadResticConfig } from "../../src/config/load-config.js";
import { commandLineProblems, rlvmFleetArgv } from "../helpers/command-lines.js";
import { runCli } from "../helpers/run-cli.js";

const ROOT = join(import.meta.dirname, "../..");

describe("shipped samples", () => {
  const inventories = readdirSync(join(ROOT, "inventory")).filter((f) => f.endsWith(".toml"));
  it.each(inventories)("inventory/%s validates with every config it names", async (file) => {
    const result = await runCli(["validate", "--inventory", join("inventory", file)], { cwd: ROOT });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
  });

  const configs = readdirSync(join(ROOT, "examples")).filter(
    (f) => f.startsWith("config-") && f.endsWith(".toml"),
  );
  it.each(configs)("examples/%s is a valid ResticLVM config", (file) => {
    const result = loadResticConfig(join(ROOT, "examples", file));
    expect(result.ok ? [] : result.problems).toEqual([]);
  });

  it.each(["single-host", "fleet-groups"])(
    "examples/%s/inventory.toml validates with its configs",
    async (name) => {
      const result = await runCli(["validate", "--inventory", join("examples", name, "inventory.toml")], {
        cwd: ROOT,
      });
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
    },
  );

  it("runs only real commands and options from the systemd unit and the cron line", async () => {
    const lines = [
      ...readFileSync(join(ROOT, "examples/systemd/rlvm-fleet-backup.service"), "utf8")
        .split("\n")
        .filter((l) => l.startsWith("ExecStart="))
        .map((l) => l.slice("ExecStart=".length)),
      ...readFileSync(join(ROOT, "examples/cron/rlvm-fleet"), "utf8")
        .split("\n")
        .filter((l) => /^\d/.test(l))
        .flatMap((l) => l.split(/;|\|\||&&/)),
    ];
    const argvs = lines.map(rlvmFleetArgv).filter((argv): argv is string[] => argv !== null);
    expect(argvs.map((a) => a[0])).toEqual(["backup", "status", "backup", "status"]);
    for (const argv of argvs) expect(await commandLineProblems(argv)).toEqual([]);
    expect(argvs.find((a) => a[0] === "status")).toEqual(expect.arrayContaining(["--max-age", "26h"]));
  });

  it("has samples to check", () => {
    expect(inventories.length).toBeGreaterThan(0);
    expect(configs.length).toBeGreaterThanOrEqual(2);
  });
});
