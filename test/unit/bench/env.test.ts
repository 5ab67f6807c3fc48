import { afterEach, describe, expect, it } from "vitest";
import { envChoices, envNumbers } from "../../../bench/env.js";

const NAME = "RLVM_FLEET_TEST_BENCH_VALUE";
afterEach(() => {
  delete process.env[NAME];
});

describe("envNumbers", () => {
  it("is the fallback when unset, the list when set, and empty for none", () => {
    expect(envNumbers(NAME, [200, 1000], 1)).toEqual([200, 1000]);
    process.env[NAME] = "50, 200";
    expect(envNumbers(NAME, [200, 1000], 1)).toEqual([50, 200]);
    process.env[NAME] = "none";
    expect(envNumbers(NAME, [200, 1000], 1)).toEqual([]);
  });

  it("stops on a value below the minimum or not a whole number, naming the variable", () => {
    for (const bad of ["0", "1.5", "ten"]) {
      process.env[NAME] = bad;
      expect(() => envNumbers(NAME, [], 1)).toThrow(`${NAME} must be whole numbers of at least 1`);
    }
  });
});

describe("envChoices", () => {
  const choices = ["rlvm-fleet", "parallel-ssh", "ansible", "floor"] as const;

  it("is the fallback when unset, else the names given", () => {
    expect(envChoices(NAME, choices, ["ansible"])).toEqual(new Set(["ansible"]));
    expect(envChoices(NAME, choices)).toEqual(new Set(choices));
    process.env[NAME] = "floor, rlvm-fleet";
    expect(envChoices(NAME, choices)).toEqual(new Set(["floor", "rlvm-fleet"]));
  });

  it("stops on an unknown name", () => {
    process.env[NAME] = "rlvm-fleet,pssh";
    expect(() => envChoices(NAME, choices)).toThrow(`${NAME}: unknown runner "pssh"`);
  });
});
