// The bootstrap (src/agent/deliver.ts), run locally with bash: finding 8 of issue 13. The programs it
// starts come from root's own directories, never from the PATH it was started with.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { agentPayload, bootstrapArgv, READY_LINE, type AgentFile } from "../../../src/agent/deliver.js";

const base = mkdtempSync(join(tmpdir(), "rlvm-deliver-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));

function agentFile(text: string): AgentFile {
  const bytes = Buffer.from(text);
  return { bytes, sha256: createHash("sha256").update(bytes).digest("hex") };
}

describe("the bootstrap", () => {
  it("runs none of the programs of the PATH it was started with, and hands that PATH to the agent", () => {
    // A directory first in PATH, as a login user's ~/bin or a world-writable one would be: every
    // program the bootstrap starts, each leaving a marker and then doing the real work.
    const evil = mkdtempSync(join(base, "path-"));
    const markers = join(base, "ran");
    const names = ["bash", "mkdir", "chmod", "mktemp", "head", "sha256sum", "rm", "cat", "printf", "echo"];
    for (const name of names) {
      const file = join(evil, name);
      writeFileSync(file, `#!/bin/sh\necho ${name} >> '${markers}'\nPATH=/usr/bin:/bin exec ${name} "$@"\n`);
      chmodSync(file, 0o755);
    }
    const agent = agentFile('echo "agent ran with PATH=$PATH"\n');
    const runId = `20250101T000000Z-deliver${process.pid}`;
    const argv = bootstrapArgv(runId, "deliverhost", agent);
    expect(argv[0]).toBe("bash");
    const input = Buffer.concat([Buffer.from("junk\n"), ...agentPayload(runId, agent, ["plan 2", "end"])]);
    const path = `${evil}:/usr/sbin:/usr/bin:/sbin:/bin`;
    const r = spawnSync("/bin/bash", argv.slice(1), {
      input,
      env: { PATH: path, HOME: base, TMPDIR: base },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${READY_LINE} ${runId}\nagent ran with PATH=${path}\n`);
    expect(existsSync(markers) ? readFileSync(markers, "utf8") : "").toBe("");
    // The run directory is gone, however the agent ended.
    expect(existsSync(`/run/rlvm-fleet/${runId}.deliverhost`)).toBe(false);
    expect(readdirSync(base).filter((e) => e.startsWith("rlvm-fleet."))).toEqual([]);
  });
});
