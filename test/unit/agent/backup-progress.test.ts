// The agent's progress forwarding (issue 16): while a `restic backup --json` runs, its newest status
// line becomes a progress event at most every 2 s, read as the file grows (a line still being written
// waits for its end), and a value not in restic's plain form is passed as null; the controller's
// schema refuses what is not a progress event. The modules are sourced by bash, as in
// agent-build.test.ts; a bash function writing status lines stands in for restic.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentEvent, PROTOCOL_VERSION } from "../../../src/agent/protocol.js";

const SRC = fileURLToPath(new URL("../../../agents/src/", import.meta.url));
const MODULES = ["prelude.sh", "helpers.sh", "json.sh", "exec.sh", "cmd-backup.sh"];

let dir = "";
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "rlvm-progress-"));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** run_restic_progress over `fake` (bash writing restic's stdout); the events it emitted, parsed. */
function progressOf(fake: string): { events: Record<string, unknown>[]; ms: number; rc: string } {
  const sources = MODULES.map((m) => `source ${JSON.stringify(join(SRC, m))}`).join("\n");
  const script = `${sources}
fake() { ${fake}; }
TOOL[sleep]=$(command -v sleep)
JOB_NAME=(data) REPO_ID=(r0)
RUN_DIR=${JSON.stringify(dir)}
exec 3>&1
run_restic_progress "$RUN_DIR/out" "$RUN_DIR/err" 0 0 fake
printf 'rc=%s\\n' "$REPLY" >&2`;
  const start = Date.now();
  const r = spawnSync("bash", ["--noprofile", "--norc", "-c", script], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, TMPDIR: dir, LC_ALL: "C" },
    encoding: "utf8",
    timeout: 60_000,
  });
  if (r.error) throw r.error;
  const events = r.stdout
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { events, ms: Date.now() - start, rc: r.stderr.trim() };
}

const status = (fields: string) => `printf '%s\\n' '{"message_type":"status",${fields}}'`;

describe("run_restic_progress", () => {
  it("forwards the newest status line at most every 2 s, and restic's exit status", () => {
    const { events, ms, rc } = progressOf(
      [
        status(`"percent_done":0,"total_files":3,"total_bytes":300`),
        "sleep 1",
        status(`"percent_done":0.25,"total_files":3,"files_done":1,"total_bytes":300,"bytes_done":75`),
        "sleep 1.5",
        status(
          `"percent_done":0.5,"total_files":3,"files_done":2,"total_bytes":300,"bytes_done":150,"seconds_remaining":4`,
        ),
        // Half a line now, its end later: never read as two.
        `printf '%s' '{"message_type":"status","percent_done":0.75,"total_'`,
        "sleep 2.2",
        `printf '%s\\n' 'files":3,"files_done":3,"total_bytes":300,"bytes_done":225,"seconds_remaining":1}'`,
        "sleep 2.2",
        `printf '%s\\n' '{"message_type":"summary","files_new":3}'`,
        "return 3",
      ].join("\n"),
    );
    expect(rc).toBe("rc=3");
    expect(events.length).toBeGreaterThanOrEqual(2);
    expect(events.length).toBeLessThanOrEqual(Math.floor(ms / 2000));
    for (const event of events) expect(agentEvent.safeParse(event).success).toBe(true);
    expect(events[0]).toMatchObject({ v: PROTOCOL_VERSION, event: "progress", job: "data", repo: "r0" });
    expect(events.map((e) => e["fraction"])).toContain(0.5);
    expect(events.at(-1)).toEqual({
      v: PROTOCOL_VERSION,
      event: "progress",
      job: "data",
      repo: "r0",
      fraction: 0.75,
      bytes_total: 300,
      bytes_done: 225,
      files_total: 3,
      files_done: 3,
      eta_s: 1,
    });
  }, 30_000);

  it("passes a value not in restic's plain form as null", () => {
    const { events } = progressOf(
      [
        status(
          `"percent_done":"0.5","total_files":-1,"files_done":1e99,"total_bytes":99999999999999999999,"bytes_done":NaN,"seconds_remaining":"\\u001b[2J"`,
        ),
        "sleep 2.5",
      ].join("\n"),
    );
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      fraction: null,
      bytes_total: null,
      bytes_done: null,
      files_total: null,
      files_done: null,
      eta_s: null,
    });
    expect(agentEvent.safeParse(events[0]).success).toBe(true);
  }, 30_000);
});

describe("the progress event's schema", () => {
  const good = {
    v: PROTOCOL_VERSION,
    event: "progress",
    job: "data",
    repo: "r0",
    fraction: 0.5,
    bytes_done: 1,
    bytes_total: 2,
    files_done: 1,
    files_total: 2,
    eta_s: 3,
  };
  it("takes restic's values and refuses hostile ones", () => {
    expect(agentEvent.safeParse(good).success).toBe(true);
    for (const bad of [
      { fraction: "0.5" },
      { fraction: -0.1 },
      { fraction: Number.NaN },
      { fraction: Number.POSITIVE_INFINITY },
      { bytes_done: 2 ** 60 },
      { bytes_done: 1.5 },
      { files_total: -1 },
      { eta_s: "1" },
      { extra: "field" },
      { repo: 1 },
    ])
      expect(agentEvent.safeParse({ ...good, ...bad }).success, JSON.stringify(bad)).toBe(false);
    expect(
      agentEvent.safeParse(
        JSON.parse(
          `{"v":${PROTOCOL_VERSION},"event":"progress","job":"d","repo":"r","fraction":1e400,"bytes_done":null,"bytes_total":null,"files_done":null,"files_total":null,"eta_s":null}`,
        ),
      ).success,
    ).toBe(false);
  });
});
