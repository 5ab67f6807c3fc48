// A controller whose open-files limit is lower than --forks needs: it runs as many hosts at once as
// the limit leaves room for and says so, instead of failing the rest with EMFILE while connecting.
// The real binary under `prlimit`, against 120 real sshd hosts.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { findExecutable } from "./harness/prerequisites.js";
import { describeIntegration } from "./harness/describe-integration.js";
import { startFleet, type Fleet } from "./harness/fleet.js";
import { writeInventory } from "./helpers/test-fleet.js";

const BIN = join(import.meta.dirname, "../../bin/rlvm-fleet.js");
const HOSTS = 120;
// Enough for Node to load the CLI (its modules take some 100 at once at start), not for 100 hosts.
const LIMIT = 110;

describeIntegration("an open-files limit below --forks", () => {
  let fleet: Fleet;
  let inventory: string;
  let dir: string;

  beforeAll(async () => {
    fleet = await startFleet({ hosts: HOSTS });
    dir = mkdtempSync(join(fleet.dir, "open-files-"));
    const config = join(dir, "host.toml");
    writeFileSync(
      config,
      '[standard_path.data]\nbackup_source_path = "/srv/data"\nexclude_paths = []\n\n[[standard_path.data.repositories]]\nrepo_path = "/srv/backups/data"\npassword_file = "/etc/resticlvm/pw"\n',
    );
    inventory = writeInventory(fleet, join(dir, "inventory.toml"), { defaults: { config } });
  }, 120_000);

  afterAll(async () => {
    await fleet?.stop();
  });

  it("runs as many hosts at once as the limit allows, says so, and every host is ok", () => {
    const prlimit = findExecutable("prlimit");
    expect(prlimit, "prlimit (util-linux) is needed").toBeDefined();
    const report = join(dir, "report.json");
    const run = spawnSync(
      prlimit as string,
      [
        `--nofile=${LIMIT}:${LIMIT}`,
        process.execPath,
        BIN,
        "ping",
        "--inventory",
        inventory,
        "--forks",
        String(HOSTS),
        "--quiet",
        "--report",
        report,
      ],
      { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" }, timeout: 120_000 },
    );
    const doc = JSON.parse(readFileSync(report, "utf8")) as { summary: { ok: number; failed: number } };
    expect(doc.summary, run.stdout + run.stderr).toMatchObject({ ok: HOSTS, failed: 0 });
    expect(run.stderr).toContain(
      `rlvm-fleet: warning: the open-files limit (${LIMIT}) leaves room for 39 hosts at once, not --forks ${HOSTS}: running 39 at a time`,
    );
    expect(run.status).toBe(0);
  }, 180_000);
});
