// verify's options: the rotating default subset, and --read-data-subset / --restore-sample validated
// before anything is read or connected (exit 2 with the rule), as the agent validates them again.
import { describe, expect, it } from "vitest";
import { parseSubset, rotatingSubset } from "../../../src/cli/commands/verify.js";
import { parseSampleFiles } from "../../../src/cli/options.js";
import { runCli } from "../../helpers/run-cli.js";

describe("verify options", () => {
  it("rotates the default subset through n/7 by the UTC day: day number mod 7, plus 1", () => {
    const day = (n: number, hour = 0) => new Date(n * 86_400_000 + hour * 3_600_000);
    expect(rotatingSubset(day(0))).toBe("1/7");
    expect(rotatingSubset(day(6, 23))).toBe("7/7");
    expect(rotatingSubset(day(7))).toBe("1/7");
    // Seven days in a row read every seventh once.
    expect(new Set([0, 1, 2, 3, 4, 5, 6].map((n) => rotatingSubset(day(20_000 + n))))).toEqual(
      new Set(["1/7", "2/7", "3/7", "4/7", "5/7", "6/7", "7/7"]),
    );
    expect(rotatingSubset(new Date("2026-12-03T05:00:00Z"))).toBe("1/7"); // day 20790 = 7 × 2970
    expect(rotatingSubset(new Date("2026-12-04T00:00:00Z"))).toBe("2/7");
  });

  it.each(["1/7", "7/7", "1/1", "100%", "2.5%", "0.001%", "500M", "2g", "10k", "1T"])(
    "takes %s",
    (subset) => {
      expect(parseSubset(subset)).toBe(subset);
    },
  );

  it.each([
    "0/7",
    "8/7",
    "7",
    "1/0",
    "0%",
    "0.0%",
    "100.5%",
    "101%",
    "-5%",
    "1.2345%",
    "0M",
    "10X",
    "M",
    "",
    "1/7;rm",
  ])("refuses %j", (subset) => {
    expect(() => parseSubset(subset)).toThrow(/--read-data-subset must be n\/t/);
  });

  it("takes --restore-sample from 0 (no drill) to 1000", () => {
    expect(parseSampleFiles("--restore-sample", "0")).toBe(0);
    expect(parseSampleFiles("--restore-sample", "5")).toBe(5);
    expect(parseSampleFiles("--restore-sample", "1000")).toBe(1000);
    for (const bad of ["1001", "-1", "5a", "", "1e3"])
      expect(() => parseSampleFiles("--restore-sample", bad), bad).toThrow(
        /--restore-sample must be a number of files/,
      );
  });

  it("refuses a bad value with exit 2 before reading the inventory", async () => {
    const subset = await runCli(["verify", "-i", "/nonexistent/inventory.toml", "--read-data-subset", "9/7"]);
    expect(subset.code).toBe(2);
    expect(subset.stderr).toContain("--read-data-subset must be n/t (3/7, n from 1 to t), a percentage");
    const sample = await runCli(["verify", "-i", "/nonexistent/inventory.toml", "--restore-sample", "x"]);
    expect(sample.code).toBe(2);
    expect(sample.stderr).toContain("--restore-sample must be a number of files from 0 to 1000");
    const backup = await runCli(["backup", "-i", "/nonexistent/inventory.toml", "--verify-sample", "1001"]);
    expect(backup.code).toBe(2);
    expect(backup.stderr).toContain(
      '--verify-sample must be a number of files from 0 to 1000 (0: none), got "1001"',
    );
  });

  it("documents both options and the sampling in --help", async () => {
    const help = (await runCli(["verify", "--help"])).stdout;
    expect(help).toContain("--read-data-subset <subset>");
    expect(help).toContain("--restore-sample <n>");
    expect(help).toContain('(default: "5")');
    expect(help).toContain("The sample is deterministic");
  });
});
