// The scale dimension's ssh2 stand-in hosts must behave as a host does for what `ping` makes of it:
// the real controller pings them to ok, and an agent whose sha256 does not match is refused (exit 98),
// or the bench would measure a controller that skipped its checks.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import ssh2 from "ssh2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentPayload, bootstrapArgv, loadAgent } from "../../../src/agent/deliver.js";
import { shellCommand } from "../../../src/transport/remote-command.js";
import { writeInventory } from "../../integration/helpers/test-fleet.js";
import type { BenchContext } from "../../../bench/dimension.js";
import { startStandIn, type Endpoint } from "../../../bench/scale.js";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

describe("bench: ssh2 stand-in hosts", { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "rlvm-bench-stand-in-"));
  let endpoint: Endpoint;

  beforeAll(async () => {
    const ctx = { repoRoot, asRoot: true, log: () => {} } as unknown as BenchContext;
    endpoint = await startStandIn(ctx, join(dir, "stand-in"), 3, null);
  });
  afterAll(async () => {
    await endpoint?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers the real controller's ping on every host, one login each", async () => {
    const config = join(dir, "host.toml");
    writeFileSync(
      config,
      '[standard_path.data]\nbackup_source_path = "/srv/data"\nexclude_paths = []\n\n[[standard_path.data.repositories]]\nrepo_path = "/srv/backups/data"\npassword_file = "/etc/resticlvm/pw"\n',
    );
    const inventory = writeInventory(endpoint.fleet, join(dir, "inventory.toml"), { defaults: { config } });
    const report = join(dir, "report.json");
    const run = spawnSync(
      process.execPath,
      [join(repoRoot, "bin/rlvm-fleet.js"), "ping", "--inventory", inventory, "--quiet", "--report", report],
      { encoding: "utf8" },
    );
    expect(run.status, run.stderr).toBe(0);
    const doc = JSON.parse(readFileSync(report, "utf8")) as { summary: { ok: number } };
    expect(doc.summary.ok).toBe(3);
    expect(await endpoint.stats()).toMatchObject({ logins: [1, 1, 1], agents: 3, checksum_mismatch: 0 });
  });

  it("refuses an agent whose sha256 does not match, as the bootstrap does (exit 98)", async () => {
    const agent = loadAgent();
    const host = endpoint.fleet.hosts[0]!;
    const wrong = { bytes: agent.bytes, sha256: "0".repeat(64) };
    const command = shellCommand(["sudo", "-n", "--", ...bootstrapArgv("run-1", host.name, wrong)]);
    const code = await new Promise<number | null>((resolve, reject) => {
      const client = new ssh2.Client();
      client.on("error", reject);
      client.on("ready", () =>
        client.exec(command, (error, channel) => {
          if (error) return reject(error);
          let exit: number | null = null;
          channel.on("exit", (c: number | null) => (exit = c));
          channel.on("close", () => {
            client.end();
            resolve(exit);
          });
          channel.stderr.resume();
          channel.resume();
          for (const piece of agentPayload("run-1", wrong, ["plan 2", "end"])) channel.write(piece);
        }),
      );
      client.connect({
        host: host.address,
        port: host.port,
        username: endpoint.fleet.loginUser,
        privateKey: readFileSync(endpoint.fleet.clientKey.privateKeyPath),
        hostVerifier: () => true,
      });
    });
    expect(code).toBe(98);
    expect(await endpoint.stats()).toMatchObject({ agents: 0, checksum_mismatch: 1 });
  });
});
