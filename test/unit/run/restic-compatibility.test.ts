// Which restic versions `check` calls untested: anything newer than the newest MAJOR.MINOR in CI.
import { describe, expect, it } from "vitest";
import { NEWEST_TESTED_RESTIC, untestedResticWarning } from "../../../src/run/restic-compatibility.js";

describe("untestedResticWarning", () => {
  it("is silent for the tested series and those between them, for older ones (the agent refuses those) and without a version", () => {
    for (const version of [
      `${NEWEST_TESTED_RESTIC}.0`,
      `${NEWEST_TESTED_RESTIC}.9`,
      "0.14.0",
      "0.16.4-dev",
      "0.13.1",
      null,
      "dev",
    ])
      expect(untestedResticWarning(version), String(version)).toBeNull();
  });

  it("warns for a newer minor or major, naming the version and the newest tested", () => {
    for (const version of ["0.19.0", "0.20.1-dev", "1.0.0"])
      expect(untestedResticWarning(version), version).toMatch(
        new RegExp(
          `^restic ${version.replaceAll(".", "\\.")} is newer than .*\\(${NEWEST_TESTED_RESTIC.replace(".", "\\.")}\\.x\\)`,
        ),
      );
  });
});
