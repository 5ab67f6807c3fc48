// The samples a new user reads first must stay valid.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadResticConfig } from "../../src/config/load-config.js";
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

  it("has samples to check", () => {
    expect(inventories.length).toBeGreaterThan(0);
    expect(configs.length).toBeGreaterThanOrEqual(2);
  });
});
