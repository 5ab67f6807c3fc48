// The bench's payload for the tools other than rlvm-fleet: it must run today's agent to an ok result,
// or the bench compares rlvm-fleet with tools that only fail (as it did when the plan format moved on).
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { buildPayload } from "../../../bench/payload.js";

describe("bench payload", () => {
  const dir = mkdtempSync(join(tmpdir(), "rlvm-bench-payload-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("runs the agent's ping to an ok result, from a file and on stdin", () => {
    const payload = buildPayload("bench-test");
    const file = join(dir, "payload.sh");
    writeFileSync(file, payload);
    for (const run of [
      spawnSync("bash", [file], { encoding: "utf8" }),
      spawnSync("bash", ["-s"], { input: payload, encoding: "utf8" }),
    ]) {
      expect(run.status, run.stderr).toBe(0);
      expect(run.stdout).toContain('"event":"result","code":null,"message":"pong"');
    }
  });
});
