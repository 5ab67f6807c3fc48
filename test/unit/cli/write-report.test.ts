// The report file: written through a unique temporary file created exclusively, never through a
// file or symlink someone planted beside it.
import {
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { writeAtomically } from "../../../src/cli/run-fleet-command.js";

describe("writeAtomically (the --report file)", () => {
  it("writes the text (mode 0600) and leaves no temporary file", () => {
    const dir = mkdtempSync(join(tmpdir(), "rlvm-report-"));
    const report = join(dir, "report.json");
    writeAtomically(report, "{}\n");
    expect(readFileSync(report, "utf8")).toBe("{}\n");
    expect(statSync(report).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(["report.json"]);
  });

  it("uses a new, unpredictable temporary name for every write (not the pid alone)", () => {
    const dir = mkdtempSync(join(tmpdir(), "rlvm-report-"));
    const report = join(dir, "report.json");
    // Planted at the old, predictable name: a default write neither follows nor trips over it.
    writeFileSync(join(dir, "victim"), "precious\n");
    symlinkSync(join(dir, "victim"), `${report}.tmp-${process.pid}`);
    writeAtomically(report, "y\n");
    writeAtomically(report, "z\n");
    expect(readFileSync(report, "utf8")).toBe("z\n");
    expect(readFileSync(join(dir, "victim"), "utf8")).toBe("precious\n");
    expect(readdirSync(dir).sort()).toEqual(["report.json", `report.json.tmp-${process.pid}`, "victim"]);
  });

  it("a symlink planted at the temporary name is not followed: the write fails, its target is untouched", () => {
    const dir = mkdtempSync(join(tmpdir(), "rlvm-report-"));
    const victim = join(dir, "victim");
    writeFileSync(victim, "precious\n");
    const report = join(dir, "report.json");
    const planted = `${report}.tmp-${process.pid}`;
    symlinkSync(victim, planted);
    expect(() => writeAtomically(report, "{}\n", () => String(process.pid))).toThrow(/EEXIST/);
    expect(readFileSync(victim, "utf8")).toBe("precious\n");
    expect(lstatSync(planted).isSymbolicLink()).toBe(true);
    expect(readdirSync(dir).sort()).toEqual([`report.json.tmp-${process.pid}`, "victim"]);
  });
});
