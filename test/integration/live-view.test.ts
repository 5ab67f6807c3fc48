// The live view in a real terminal (tmux): a loopback backup long enough for restic's percentages,
// read off the screen with capture-pane while it runs; then the final table and a clean prompt. The
// same backup with stderr in a pipe keeps the timestamped lines, with a percent line per host.
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeIntegration } from "./harness/describe-integration.js";
import { startFleet, type Fleet } from "./harness/fleet.js";
import { requireExecutable } from "./harness/prerequisites.js";
import { resticInit, standardPathConfig, writeInventory, writePasswordFile } from "./helpers/test-fleet.js";

const ROOT = join(import.meta.dirname, "../..");
const BIN = join(ROOT, "bin/rlvm-fleet.js");
const HOSTS = ["lv1", "lv2"];
const SESSION = "live";
/**
 * A tmux server of this test's own: never another's session, whatever else runs on the machine. Each
 * test takes a new one (freshServer): a killed server takes a moment to exit, and a client that meets
 * it then fails with "server exited unexpectedly".
 */
let server = 0;
const socket = () => `rlvm-live-${process.pid}-${server}`;
const tmux = (...args: string[]) => execFileSync("tmux", ["-L", socket(), ...args], { encoding: "utf8" });
const freshServer = () => {
  spawnSync("tmux", ["-L", socket(), "kill-server"]);
  server++;
};
/**
 * Per host: 96 MiB in 64 files, uploaded at the wrapper's 8 MiB/s, so the backup lasts about 12 s.
 * restic counts bytes done as it packs them, and packs ahead of the upload only a few packs deep
 * (about 16 MiB each): less data than that would be all "done" at once, long before its upload ends.
 */
const FILES = 64;
const writeSource = (source: string) => {
  // Random, so that restic's deduplication and compression leave it all to upload.
  for (let n = 0; n < FILES; n++) writeFileSync(join(source, `data-${n}.bin`), randomBytes(1536 * 1024));
};

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

describeIntegration("the live view in a real terminal", () => {
  let fleet: Fleet;
  let dir: string;
  let inventory: string;

  beforeAll(async () => {
    requireExecutable("tmux");
    const parent = mkdtempSync("/tmp/rlvm-live-");
    chmodSync(parent, 0o755);
    dir = parent;
    // restic itself, slowed by its own --limit-upload: real progress, only slower than the disk.
    const real = join(dir, "restic.real");
    copyFileSync(realpathSync(requireExecutable("restic")), real);
    chmodSync(real, 0o755);
    const wrapper = join(dir, "restic");
    writeFileSync(
      wrapper,
      `#!/bin/sh\nif [ "$1" = backup ]; then shift; exec ${real} backup --limit-upload 8192 "$@"; fi\nexec ${real} "$@"\n`,
      { mode: 0o755 },
    );
    fleet = await startFleet({ hosts: HOSTS, binds: [{ source: wrapper, target: "/usr/bin/restic" }] });
    const password = writePasswordFile(join(dir, "password"), "live view test password");
    for (const host of HOSTS) {
      const source = join(dir, "src", host);
      mkdirSync(source, { recursive: true });
      writeSource(source);
      const repo = resticInit(join(dir, `repo-${host}`), password);
      writeFileSync(join(dir, `${host}.toml`), standardPathConfig({ source, repo, passwordFile: password }));
    }
    inventory = writeInventory(fleet, join(dir, "inventory.toml"), {
      defaults: { config: join(dir, "{host}.toml") },
    });
  }, 120_000);

  afterAll(async () => {
    spawnSync("tmux", ["-L", socket(), "kill-server"]);
    await fleet?.stop();
  });

  it("redraws one line per running host with restic's percent in place, then prints the table and gives the prompt back", async () => {
    const command = `cd ${ROOT} && node ${BIN} backup -i ${inventory}; echo DONE-MARK $?`;
    tmux("new-session", "-d", "-s", SESSION, "-x", "120", "-y", "30", "sh", "-c", `${command}; sleep 600`);
    const screens: string[] = [];
    const deadline = Date.now() + 120_000;
    let screen = "";
    while (Date.now() < deadline) {
      screen = tmux("capture-pane", "-p", "-t", SESSION);
      screens.push(screen);
      if (screen.includes("DONE-MARK")) break;
      await sleep(250);
    }
    expect(screen, screens.join("\n-----\n")).toMatch(/DONE-MARK 0/);
    // While restic ran: both hosts on their own line with a percent, and the overall line, every line
    // within the 120 columns (the live lines never wrap).
    const live = screens.filter((s) =>
      HOSTS.every((host) => new RegExp(`^${host} .*backup \\d+\\.\\d%  data → `, "m").test(s)),
    );
    expect(live.length, screens.join("\n-----\n")).toBeGreaterThan(0);
    expect(live[0]).toMatch(/^0\/2 done · 2 running · 0 failed · 0 unreachable · elapsed \d+s/m);
    // In place: one line per host on each screen, however many times it was redrawn.
    for (const s of live)
      for (const host of HOSTS)
        expect(s.split("\n").filter((line) => line.startsWith(`${host} `))).toHaveLength(1);
    const percents = live.map((s) => Number(/^lv1 .*?(\d+\.\d)%/m.exec(s)?.[1]));
    expect(
      percents.some((p) => p > 0 && p < 100),
      `the percent moves as restic reads: ${percents.join(" ")}`,
    ).toBe(true);
    // At the end: the finished hosts' lines, the table, and nothing of the live lines left.
    const lines = screen.split("\n");
    for (const host of HOSTS)
      expect(lines.filter((line) => new RegExp(`^${host}  ok  \\d+s`).test(line))).toHaveLength(1);
    expect(screen).toMatch(/│ lv1 .*ok/);
    expect(screen).not.toMatch(/running · /);
    expect(screen).not.toMatch(/%/);
    // Nor in the scrollback: each redraw replaced the one before, none was pushed up.
    const history = tmux("capture-pane", "-p", "-J", "-S", "-", "-t", SESSION);
    expect(history.split("\n").filter((line) => / running · |\d+\.\d%/.test(line))).toEqual([]);
    const done = lines.findIndex((line) => line.startsWith("DONE-MARK"));
    expect(
      lines
        .slice(done + 1)
        .join("")
        .trim(),
    ).toBe("");
  }, 180_000);

  it("fits a resized terminal, and leaves a clean screen with the cursor shown on Ctrl-C", async () => {
    for (const host of HOSTS) writeSource(join(dir, "src", host));
    freshServer();
    // The shell catches SIGINT (a caught signal is default again in its children): it lives on to
    // print the mark, as an interactive shell would.
    const command = `trap true INT; cd ${ROOT} && node ${BIN} backup -i ${inventory}; echo DONE-MARK $?`;
    tmux("new-session", "-d", "-s", SESSION, "-x", "120", "-y", "30", "sh", "-c", `${command}; sleep 600`);
    const capture = () => tmux("capture-pane", "-p", "-t", SESSION);
    const cursorShown = () => tmux("display-message", "-p", "-t", SESSION, "#{cursor_flag}").trim() === "1";
    const waitFor = async (test: (screen: string) => boolean, what: string): Promise<string> => {
      const deadline = Date.now() + 60_000;
      let screen = "";
      while (Date.now() < deadline) {
        screen = capture();
        if (test(screen)) return screen;
        await sleep(200);
      }
      throw new Error(`no ${what} on the screen:\n${screen}`);
    };
    const percentLines = (screen: string) =>
      screen.split("\n").filter((line) => /^lv\d .*\d+\.\d%/.test(line));
    await waitFor((screen) => percentLines(screen).length === 2, "percent line per host");
    expect(cursorShown(), "the cursor is hidden while the view is drawn").toBe(false);
    tmux("resize-window", "-t", SESSION, "-x", "50", "-y", "30");
    // Redrawn to the new width: each host once, every line within 49 columns, cut with "…".
    const narrow = await waitFor(
      (screen) =>
        percentLines(screen).length === 2 && percentLines(screen).every((line) => line.endsWith("…")),
      "redraw at 50 columns",
    );
    for (const line of narrow.split("\n")) expect([...line].length).toBeLessThanOrEqual(49);
    tmux("send-keys", "-t", SESSION, "C-c");
    await waitFor((screen) => screen.includes("DONE-MARK"), "end of the run");
    // All of it, scrolled off or not, wrapped lines joined.
    const end = tmux("capture-pane", "-p", "-J", "-S", "-", "-t", SESSION);
    expect(end).toMatch(/DONE-MARK 130/);
    expect(cursorShown(), "the cursor is shown again").toBe(true);
    // From the interruption on, plain lines only: no live line or overall line left behind.
    const after = end.slice(end.indexOf("rlvm-fleet: interrupted"));
    expect(end).toContain("rlvm-fleet: interrupted");
    expect(after).not.toMatch(/running · |\d+\.\d%/);
    expect(end.split("\n").filter((line) => / running · /.test(line))).toEqual([]);
  }, 180_000);

  it("keeps the timestamped lines when stderr is not a terminal, with a percent line per running host", () => {
    // New data, so that restic has it all to read again.
    for (const host of HOSTS) writeSource(join(dir, "src", host));
    const run = spawnSync(process.execPath, [BIN, "backup", "-i", inventory], {
      encoding: "utf8",
      timeout: 120_000,
    });
    expect(run.status, run.stderr).toBe(0);
    const stamp = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[(lv\d)\] /;
    const stderr = run.stderr.split("\n").filter((line) => line !== "");
    for (const line of stderr) expect(line).toMatch(stamp);
    for (const host of HOSTS) {
      expect(stderr.some((line) => line.includes(`[${host}] connecting`))).toBe(true);
      // The first at once, then one every 30 s: this backup is shorter, so exactly one.
      expect(
        stderr.filter((line) => new RegExp(`\\[${host}\\] backup \\d+\\.\\d%  data → `).test(line)),
      ).toHaveLength(1);
      expect(stderr.some((line) => line.includes(`[${host}] ok`))).toBe(true);
    }
    expect(run.stderr).not.toContain("\u001b[");
  }, 180_000);
});
