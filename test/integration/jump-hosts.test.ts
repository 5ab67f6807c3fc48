// proxy_jump end to end: a fleet inside a network namespace, reachable only through a bastion whose
// port a socat bridge exposes here; the bridge counts the TCP connections the controller makes.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { freePort } from "../../src/demo/free-port.js";
import { runJson } from "../helpers/run-cli.js";
import { waitFor } from "../helpers/wait-for.js";
import { describeIntegration } from "./harness/describe-integration.js";
import { startFleet, type Fleet } from "./harness/fleet.js";
import { resticInit, writeInventory, writePasswordFile, standardPathConfig } from "./helpers/test-fleet.js";

const TARGETS = Array.from({ length: 20 }, (_, i) => `jt${i + 1}`);
const BRIDGE = "127.0.0.9";

describeIntegration("proxy_jump through a bastion into a network namespace", () => {
  // Unique per run: CI runs this as root in the machine's own namespace.
  const ns = `rlvm-jump-${process.pid}-${randomBytes(3).toString("hex")}`;
  let nsCreated = false;
  let fleet: Fleet | undefined;
  let bridge: ChildProcess | undefined;
  let bridgeLog: string;
  let bridgePort: number;
  let dir: string;
  let repo: string;
  let password: string;
  let bastionKnownHosts: string;

  const accepted = () => (readFileSync(bridgeLog, "utf8").match(/accepting connection from/g) ?? []).length;

  /** The fleet's inventory with `defaults` and `[jump_hosts]` text added. */
  const inventory = (name: string, defaults: Record<string, string | number | string[]>, extra = "") =>
    writeInventory(fleet as Fleet, join(dir, name), {
      hosts: TARGETS,
      defaults: { config: join(dir, "host.toml"), ...defaults },
      extra,
    });
  const bastionTable = (knownHosts: string) =>
    `[jump_hosts.bastion]\naddress = "${BRIDGE}"\nport = ${bridgePort}\nknown_hosts = ${JSON.stringify(knownHosts)}\n`;

  beforeAll(async () => {
    execFileSync("ip", ["netns", "add", ns]);
    nsCreated = true;
    execFileSync("ip", ["netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
    fleet = await startFleet({ hosts: ["bastion1", "bastion2", ...TARGETS], netns: ns });
    dir = mkdtempSync(join(fleet.dir, "jump-"));
    chmodSync(dir, 0o755);
    password = writePasswordFile(join(dir, "restic-password"), "jump test password");
    repo = resticInit(join(dir, "repo"), password);
    const source = join(dir, "src");
    mkdirSync(source);
    writeFileSync(join(source, "file.txt"), "behind the bastion\n");
    writeFileSync(
      join(dir, "host.toml"),
      standardPathConfig({ source: source, repo: repo, passwordFile: password }),
    );
    const b1 = fleet.host("bastion1");
    bridgePort = await freePort(BRIDGE);
    bridgeLog = join(dir, "bridge.log");
    writeFileSync(bridgeLog, "");
    // A script for EXEC: socat would split an inline command at its colons.
    const inner = join(dir, "into-namespace.sh");
    writeFileSync(inner, `#!/bin/sh\nexec ip netns exec ${ns} socat STDIO TCP:${b1.address}:${b1.port}\n`, {
      mode: 0o755,
    });
    bridge = spawn(
      "sh",
      [
        "-c",
        `exec socat -d -d TCP-LISTEN:${bridgePort},bind=${BRIDGE},fork,reuseaddr EXEC:${inner} 2>>${bridgeLog}`,
      ],
      { stdio: "ignore", detached: true },
    );
    await waitFor("the socat bridge to listen", () => /listening on/.test(readFileSync(bridgeLog, "utf8")), {
      timeoutMs: 10_000,
      detail: () => readFileSync(bridgeLog, "utf8"),
    });
    bastionKnownHosts = join(dir, "bastion_known_hosts");
    writeFileSync(bastionKnownHosts, `[${BRIDGE}]:${bridgePort} ${b1.hostKeyPub}\n`);
  }, 180_000);

  afterAll(async () => {
    if (bridge?.pid !== undefined) {
      try {
        process.kill(-bridge.pid, "SIGTERM");
      } catch {
        // already gone
      }
    }
    await fleet?.stop();
    if (nsCreated) execFileSync("ip", ["netns", "del", ns]);
  });

  it("backs up 20 hosts behind the bastion over ONE connection to it", async () => {
    const file = inventory("inventory.toml", { proxy_jump: "bastion" }, bastionTable(bastionKnownHosts));
    const before = accepted();
    const run = await runJson("backup", file, "--forks", "10");
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.report.summary).toMatchObject({ hosts: 20, ok: 20, failed: 0, unreachable: 0 });
    expect(accepted() - before).toBe(1);
    const snapshots = JSON.parse(
      execFileSync("restic", ["-r", repo, "--password-file", password, "snapshots", "--json", "--no-lock"], {
        encoding: "utf8",
      }),
    ) as unknown[];
    expect(snapshots).toHaveLength(20);
  });

  it("without proxy_jump the same hosts are unreachable (exit 4)", async () => {
    const file = inventory("direct.toml", {});
    const run = await runJson("ping", file);
    expect(run.code).toBe(4);
    expect(run.report.summary).toMatchObject({ hosts: 20, unreachable: 20 });
  });

  it("a chain of two bastions reaches the host through the second one", async () => {
    const b2 = (fleet as Fleet).host("bastion2");
    const logBefore = readFileSync(b2.logFile, "utf8").length;
    const file = inventory(
      "chain.toml",
      { proxy_jump: ["bastion", "bastion2"] },
      `${bastionTable(bastionKnownHosts)}[jump_hosts.bastion2]\naddress = "${b2.address}"\nport = ${b2.port}\n`,
    );
    const before = accepted();
    const run = await runJson("ping", file, "--limit", "jt1,jt2,jt3");
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.report.summary).toMatchObject({ hosts: 3, ok: 3 });
    expect(accepted() - before).toBe(1);
    // bastion2 logged one login (from bastion1) and opened a forward per host.
    const log = readFileSync(b2.logFile, "utf8").slice(logBefore);
    expect(log.match(/Accepted publickey/g) ?? []).toHaveLength(1);
  });

  it("a changed bastion key fails every host behind it, naming the bastion and the key", async () => {
    const wrong = join(dir, "wrong_known_hosts");
    const other = (fleet as Fleet).host("bastion2");
    writeFileSync(wrong, `[${BRIDGE}]:${bridgePort} ${other.hostKeyPub}\n`);
    const file = inventory("changed.toml", { proxy_jump: "bastion" }, bastionTable(wrong));
    const run = await runJson("ping", file);
    expect(run.code).toBe(4);
    expect(run.report.summary).toMatchObject({ hosts: 20, unreachable: 20 });
    const b1 = (fleet as Fleet).host("bastion1");
    for (const name of TARGETS) {
      const error = run.host(name)?.error;
      expect(error?.code).toBe("bastion_unreachable");
      expect(error?.message).toContain('bastion "bastion"');
      expect(error?.message).toContain("HOST KEY CHANGED");
      expect(error?.message).toContain(b1.hostKeyFingerprint);
    }
  });
});
