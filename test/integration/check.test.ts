// `check` and `ping` end to end: the real CLI against real sshd hosts, real sudo and real restic.
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { loadAgent } from "../../src/agent/deliver.js";
import { buildPlan } from "../../src/plan/build-plan.js";
import type { Report } from "../../src/report/report-schema.js";
import { runFleet } from "../../src/run/run-fleet.js";
import { runCli, runJson } from "../helpers/run-cli.js";
import { describeOrSkip } from "../helpers/skip-or-fail.js";
import { describeIntegration } from "./harness/describe-integration.js";
import { startFleet, type Fleet } from "./harness/fleet.js";
import { needsRoot } from "./harness/prerequisites.js";
import {
  leftoverRunDirs,
  makeDir,
  resticInit,
  writeInventory,
  writePasswordFile,
  type Settings,
} from "./helpers/test-fleet.js";

const HOSTS = ["chk1", "chk2", "chk3", "chk4"];
const BIN = join(import.meta.dirname, "../../bin/rlvm-fleet.js");

describeIntegration("check and ping over real sshd", () => {
  let fleet: Fleet;
  let dir: string;
  let config: string;

  beforeAll(async () => {
    fleet = await startFleet({ hosts: HOSTS });
    dir = mkdtempSync(join(fleet.dir, "check-"));
    chmodSync(dir, 0o755);
    const password = writePasswordFile(join(dir, "restic-password"), "correct horse battery staple");
    const repoA = resticInit(join(dir, "repo-a"), password);
    const repoB = resticInit(join(dir, "repo-b"), password);
    makeDir(join(dir, "data"));
    config = join(dir, "host.toml");
    writeFileSync(
      config,
      `[standard_path.data]
backup_source_path = ${JSON.stringify(join(dir, "data"))}
exclude_paths = []

[[standard_path.data.repositories]]
repo_path = ${JSON.stringify(repoA)}
password_file = ${JSON.stringify(password)}
prune_keep_last = 3

  [[standard_path.data.repositories.copy_to]]
  repo = ${JSON.stringify(repoB)}
  password_file = ${JSON.stringify(password)}
  prune_keep_last = 5
`,
    );
  }, 120_000);

  afterAll(async () => {
    await fleet?.stop();
  });

  afterEach(() => {
    // After every case: no run directory of ours is left on the hosts.
    expect(leftoverRunDirs(fleet)).toEqual([]);
  });

  const inventory = (name: string, options: Parameters<typeof writeInventory>[2] = {}) =>
    writeInventory(fleet, join(dir, name), { ...options, defaults: { config, ...options.defaults } });

  const check = (inventoryFile: string, ...args: string[]) => runJson("check", inventoryFile, ...args);

  it("passes a healthy fleet of 3 hosts with every check green (exit 0)", async () => {
    const run = await check(inventory("healthy.toml", { hosts: ["chk1", "chk2", "chk3"] }));
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.report.summary).toMatchObject({ hosts: 3, ok: 3, failed: 0, unreachable: 0 });
    for (const host of run.report.hosts) {
      expect(host.status).toBe("ok");
      expect(host.facts?.user).toBe(fleet.mode === "root" ? "root" : fleet.loginUser);
      const names = host.checks.map((c) => c.name);
      expect(names).toEqual(expect.arrayContaining(["bash", "restic", "lock", "leftovers"]));
      expect(names.filter((n) => n.startsWith("repo:"))).toHaveLength(2);
      expect(host.checks.filter((c) => !c.ok)).toEqual([]);
    }
  });

  it("ping reports the facts of every host, and the table says so at a glance", async () => {
    const file = inventory("ping.toml", { hosts: ["chk1", "chk2", "chk3"] });
    const json = await runJson("ping", file);
    expect(json.code, json.stdout + json.stderr).toBe(0);
    expect(json.report.hosts.map((h) => h.facts?.restic)).toEqual(
      ["0.14.0", "0.14.0", "0.14.0"].map(() => expect.stringMatching(/^0\.\d+\.\d+$/)),
    );
    const table = await runCli(["ping", "--inventory", file, "--no-color"]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/RECAP ping 3 hosts: ok=3 partial=0 failed=0 unreachable=0 skipped=0/);
    expect(table.stderr).toMatch(/\[chk1\] connecting/);
    expect(table.stderr).not.toMatch(/rlvm-agent:/);
    // --verbose adds the agent's own log lines from the host's stderr, per host.
    const verbose = await runCli(["ping", "--inventory", file, "--no-color", "--verbose", "--limit", "chk2"]);
    expect(verbose.code, verbose.stderr).toBe(0);
    expect(verbose.stderr).toMatch(/\[chk2\] rlvm-agent: agent \S+: ping for chk2, run \S+/);
    // The agent logs that its command ran to its end; the status is the controller's to decide.
    expect(verbose.stderr).toMatch(/\[chk2\] rlvm-agent: result: done: pong/);
    const both = await runCli(["ping", "--inventory", file, "--verbose", "--quiet"]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--verbose.*cannot be used with.*--quiet/);
  });

  it("refuses an unknown host key under strict, printing its fingerprint and how to add it", async () => {
    const knownHosts = join(dir, "known_hosts.partial");
    writeFileSync(
      knownHosts,
      readFileSync(fleet.knownHostsFile, "utf8")
        .split("\n")
        .filter((l) => !l.startsWith("[127.0.0.2]"))
        .join("\n"),
    );
    const file = inventory("unknown.toml", {
      hosts: ["chk1", "chk2"],
      defaults: { known_hosts: knownHosts },
    });
    const run = await check(file);
    expect(run.code, run.stdout + run.stderr).toBe(1);
    expect(run.host("chk1")).toMatchObject({ status: "failed", error: { code: "host_key_unknown" } });
    expect(run.host("chk1")?.error?.message).toContain(fleet.host("chk1").hostKeyFingerprint);
    expect(run.host("chk1")?.error?.hint).toContain(`ssh-keyscan -p ${fleet.host("chk1").port} 127.0.0.2 >>`);
    expect(run.host("chk2")?.status).toBe("ok");
    const table = await runCli(["check", "--inventory", file, "--quiet", "--no-color"]);
    expect(table.stdout).toContain(fleet.host("chk1").hostKeyFingerprint);
  });

  it("accepts a new host key under accept-new, adding exactly one line, once", async () => {
    const knownHosts = join(dir, "known_hosts.accept");
    writeFileSync(
      knownHosts,
      readFileSync(fleet.knownHostsFile, "utf8")
        .split("\n")
        .filter((l) => !l.startsWith("[127.0.0.2]"))
        .join("\n"),
    );
    const before = readFileSync(knownHosts, "utf8").trim().split("\n").length;
    const file = inventory("accept.toml", {
      hosts: ["chk1"],
      defaults: { known_hosts: knownHosts, host_key_policy: "accept-new" },
    });
    const first = await check(file);
    expect(first.code, first.stdout).toBe(0);
    expect(first.host("chk1")?.warnings.map((w) => w.code)).toEqual(["host_key_added"]);
    const lines = readFileSync(knownHosts, "utf8").trim().split("\n");
    expect(lines).toHaveLength(before + 1);
    expect(lines.at(-1)).toBe(fleet.host("chk1").knownHostsLine);
    const second = await check(file);
    expect(second.code).toBe(0);
    expect(second.host("chk1")?.warnings).toEqual([]);
    expect(readFileSync(knownHosts, "utf8").trim().split("\n")).toHaveLength(before + 1);
  });

  it("passes with a hashed known_hosts", async () => {
    const hashed = join(dir, "known_hosts.hashed");
    copyFileSync(fleet.knownHostsFile, hashed);
    execFileSync("ssh-keygen", ["-H", "-f", hashed], { stdio: "pipe" });
    expect(readFileSync(hashed, "utf8")).toMatch(/^\|1\|/);
    const run = await check(
      inventory("hashed.toml", { hosts: ["chk1", "chk2"], defaults: { known_hosts: hashed } }),
    );
    expect(run.code, run.stdout + run.stderr).toBe(0);
  });

  it("refuses a changed host key under both policies, printing both fingerprints", async () => {
    const stale = join(dir, "known_hosts.stale");
    copyFileSync(fleet.knownHostsFile, stale);
    const staleText = readFileSync(stale, "utf8");
    const old = fleet.host("chk4").hostKeyFingerprint;
    await fleet.replaceHostKey("chk4", { updateKnownHosts: true });
    for (const policy of ["strict", "accept-new"]) {
      const file = inventory(`changed-${policy}.toml`, {
        hosts: ["chk4"],
        defaults: { known_hosts: stale, host_key_policy: policy },
      });
      const run = await check(file);
      expect(run.code, run.stdout + run.stderr).toBe(1);
      expect(run.host("chk4")).toMatchObject({ status: "failed", error: { code: "host_key_changed" } });
      expect(run.host("chk4")?.error?.message).toContain(old);
      expect(run.host("chk4")?.error?.message).toContain(fleet.host("chk4").hostKeyFingerprint);
    }
    // accept-new never replaces a known key.
    expect(readFileSync(stale, "utf8")).toBe(staleText);
  });

  it("reports a host with no sshd as unreachable, exit 4 when it is the only problem", async () => {
    await fleet.stopHost("chk3");
    try {
      const run = await check(inventory("down.toml", { hosts: ["chk1", "chk3"] }));
      expect(run.code, run.stdout + run.stderr).toBe(4);
      expect(run.host("chk3")).toMatchObject({ status: "unreachable", error: { code: "refused" } });
      expect(run.host("chk1")?.status).toBe("ok");
    } finally {
      await fleet.startHost("chk3");
    }
  });

  it("keeps healthy hosts ok in a fleet mixing failed and unreachable ones (exit 1)", async () => {
    const wrongKey = await fleet.createWrongKey();
    await fleet.stopHost("chk3");
    try {
      const file = inventory("mixed.toml", {
        hosts: ["chk1", "chk2", "chk3"],
        host: { chk2: { identity_file: wrongKey.privateKeyPath } },
      });
      const run = await check(file);
      expect(run.code, run.stdout + run.stderr).toBe(1);
      expect(run.host("chk1")?.status).toBe("ok");
      expect(run.host("chk2")).toMatchObject({ status: "failed", error: { code: "auth" } });
      expect(run.host("chk2")?.error?.hint).toMatch(/authorized_keys/);
      expect(run.host("chk3")).toMatchObject({ status: "unreachable", error: { code: "refused" } });
    } finally {
      await fleet.startHost("chk3");
    }
  });

  it("does not let a host that never answers slow the others", async () => {
    // A TCP port that accepts and then says nothing: the SSH handshake never starts.
    const silent: Server = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.9", resolve));
    const port = (silent.address() as { port: number }).port;
    try {
      const file = inventory("silent.toml", {
        hosts: ["chk1", "chk2"],
        // Only the silent host gets the short timeout: a loaded CI machine must not fail the others.
        extra: `[hosts.silent]\naddress = "127.0.0.9"\nport = ${port}\nconnect_timeout = 8\n`,
      });
      const run = await check(file);
      expect(run.code, run.stdout + run.stderr).toBe(4);
      expect(run.host("silent")).toMatchObject({ status: "unreachable", error: { code: "timeout" } });
      const silentMs = run.host("silent")?.duration_ms ?? 0;
      expect(silentMs).toBeGreaterThanOrEqual(8000);
      // The others finish while the silent one is still waiting for its handshake.
      for (const name of ["chk1", "chk2"]) {
        expect(run.host(name)?.status).toBe("ok");
        expect(run.host(name)?.duration_ms).toBeLessThan(silentMs / 2);
      }
    } finally {
      silent.close();
    }
  });

  it("logs in with a passphrase-protected key, the passphrase read from a file", async () => {
    const key = await fleet.createPassphraseKey("open sesame, please");
    const passphrase = writePasswordFile(join(dir, "key-passphrase"), "open sesame, please");
    const file = inventory("passphrase.toml", {
      hosts: ["chk1"],
      defaults: { identity_file: key.privateKeyPath, identity_passphrase_file: passphrase },
    });
    const run = await check(file);
    expect(run.code, run.stdout + run.stderr).toBe(0);
  });

  it("logs in through the SSH agent (SSH_AUTH_SOCK) when no identity_file is set", async () => {
    const agentDir = mkdtempSync(join(fleet.dir, "agent-"));
    const socket = join(agentDir, "agent.sock");
    const agent = spawn("ssh-agent", ["-D", "-a", socket], { stdio: "ignore" });
    try {
      for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 20));
      execFileSync("ssh-add", [fleet.clientKey.privateKeyPath], {
        env: { ...process.env, SSH_AUTH_SOCK: socket },
        stdio: "pipe",
      });
      const file = writeInventory(fleet, join(dir, "agent.toml"), { hosts: ["chk1"], defaults: { config } });
      writeFileSync(file, readFileSync(file, "utf8").replace(/^identity_file = .*\n/m, ""));
      const withAgent = await runCli(["check", "--inventory", file, "--format", "json", "--quiet"], {
        env: { SSH_AUTH_SOCK: socket },
      });
      expect(withAgent.code, withAgent.stdout).toBe(0);
      const withoutAgent = await runCli(["check", "--inventory", file, "--format", "json", "--quiet"]);
      expect(JSON.parse(withoutAgent.stdout).hosts[0].error.code).toBe("auth");
    } finally {
      agent.kill();
      rmSync(agentDir, { recursive: true, force: true });
    }
  });

  it("retries connection errors, with connect_retries, but never authentication errors", async () => {
    // A proxy in front of chk1's sshd that counts connections; the first `drop` ones are cut at once.
    const target = fleet.host("chk1");
    let connections = 0;
    let drop = 0;
    const proxy = createServer((client) => {
      connections++;
      if (connections <= drop) return client.destroy();
      const upstream = connect({ host: target.address, port: target.port });
      client.pipe(upstream).pipe(client);
      upstream.on("error", () => client.destroy());
      client.on("error", () => upstream.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.10", resolve));
    const port = (proxy.address() as { port: number }).port;
    const knownHosts = join(dir, "known_hosts.proxy");
    writeFileSync(knownHosts, `[127.0.0.10]:${port} ${target.hostKeyPub}\n`);
    const proxied = (name: string, extra: Settings = {}) =>
      inventory(name, {
        hosts: [],
        defaults: { known_hosts: knownHosts, connect_retries: 2, ...extra },
        extra: `[hosts.chk1]\naddress = "127.0.0.10"\nport = ${port}\n`,
      });
    try {
      drop = 2;
      const recovered = await check(proxied("proxy-ok.toml"));
      expect(recovered.code, recovered.stdout).toBe(0);
      expect(connections).toBe(3);

      connections = 0;
      drop = 0;
      const wrongKey = await fleet.createWrongKey();
      const denied = await check(proxied("proxy-auth.toml", { identity_file: wrongKey.privateKeyPath }));
      expect(denied.host("chk1")?.error?.code).toBe("auth");
      expect(connections).toBe(1);

      connections = 0;
      drop = 10;
      const gaveUp = await check(proxied("proxy-down.toml"));
      expect(gaveUp.host("chk1")).toMatchObject({ status: "failed", error: { code: "connection_lost" } });
      expect(connections).toBe(3);
    } finally {
      proxy.close();
    }
  });

  describeOrSkip("integration", "sudo, as the test users", needsRoot(), () => {
    it("says a password is required, with a hint, and passes with become_password_file", async () => {
      const user = fleet.passwordUser as string;
      const without = await check(inventory("sudo-pw.toml", { hosts: ["chk1"], defaults: { user } }));
      expect(without.code).toBe(1);
      expect(without.host("chk1")).toMatchObject({
        status: "failed",
        error: { code: "sudo_password_required" },
      });
      expect(without.host("chk1")?.error?.hint).toMatch(/become_password_file/);

      const secret = fleet.sudoPassword as string;
      const passwordFile = writePasswordFile(join(dir, "sudo-password"), secret);
      const file = inventory("sudo-pw-ok.toml", {
        hosts: ["chk1", "chk2"],
        defaults: { user, become_password_file: passwordFile },
      });
      // Watch both sides' process lists for the whole run: the password must never be in any argv.
      const seen: string[] = [];
      let watching = true;
      const watcher = (async () => {
        while (watching) {
          const ps = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" });
          if (ps.includes(secret)) seen.push(ps);
          await new Promise((r) => setTimeout(r, 10));
        }
      })();
      const child = spawn(
        process.execPath,
        [BIN, "check", "--inventory", file, "--format", "json", "--quiet"],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      let stdout = "";
      child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
      watching = false;
      await watcher;
      expect(code, stdout).toBe(0);
      expect(seen).toEqual([]);
      expect(stdout).not.toContain(secret);
      const report = JSON.parse(stdout) as Report;
      expect(report.hosts.map((h) => [h.status, h.facts?.user])).toEqual([
        ["ok", "root"],
        ["ok", "root"],
      ]);
    });

    it("reports a wrong sudo password without sending it twice", async () => {
      const passwordFile = writePasswordFile(join(dir, "sudo-password-wrong"), "not the password");
      const run = await check(
        inventory("sudo-wrong.toml", {
          hosts: ["chk1"],
          defaults: { user: fleet.passwordUser as string, become_password_file: passwordFile },
        }),
      );
      expect(run.host("chk1"), run.stdout).toMatchObject({
        status: "failed",
        error: { code: "sudo_password_wrong" },
      });
    });

    it("refuses an agent whose sha256 does not match, running nothing", async () => {
      const canary = join(dir, "canary-agent-ran");
      const real = loadAgent();
      // The controller announces the real agent's checksum but the bytes that arrive differ.
      const tampered = Buffer.from(`#!/usr/bin/env bash\ntouch ${canary}\n`.padEnd(real.bytes.length, "#"));
      const report = await runFleet({
        command: "check",
        plan: buildPlan(inventory("tamper.toml", { hosts: ["chk1"] })),
        forks: 1,
        options: {
          inventory: "inventory.toml",
          limit: null,
          forks: 1,
          category: [],
          name: [],
          dry_run: false,
          max_age_s: null,
          serial: null,
          max_fail_percent: null,
          splay_s: null,
          shard: null,
        },
        agentSocket: null,
        signal: new AbortController().signal,
        onProgress: () => {},
        agent: { bytes: tampered, sha256: real.sha256 },
      });
      expect(report.hosts[0]).toMatchObject({ status: "failed", error: { code: "agent_checksum" } });
      expect(report.exit_code).toBe(1);
      expect(existsSync(canary)).toBe(false);
      expect(createHash("sha256").update(tampered).digest("hex")).not.toBe(real.sha256);
    });

    it("finds a missing restic binary, naming the check", async () => {
      await fleet.stopHost("chk4");
      await fleet.startHost("chk4", {
        hidePaths: [execFileSync("sh", ["-c", "command -v restic"], { encoding: "utf8" }).trim()],
      });
      try {
        const run = await check(inventory("no-restic.toml", { hosts: ["chk1", "chk4"] }));
        expect(run.code, run.stdout + run.stderr).toBe(1);
        expect(run.host("chk1")?.status).toBe("ok");
        const host = run.host("chk4");
        expect(host).toMatchObject({ status: "failed", error: { code: "preflight" } });
        const restic = host?.checks.find((c) => c.name === "restic");
        expect(restic).toMatchObject({ ok: false });
        expect(restic?.hint).toMatch(/restic/);
        expect(host?.error?.hint).toContain("restic");
      } finally {
        await fleet.stopHost("chk4");
        await fleet.startHost("chk4");
      }
    });
  });

  it("finds a password file that others can read, naming the check and the fix", async () => {
    const loose = join(dir, "restic-password-loose");
    copyFileSync(join(dir, "restic-password"), loose);
    chmodSync(loose, 0o644);
    const looseConfig = join(dir, "loose.toml");
    writeFileSync(looseConfig, readFileSync(config, "utf8").replaceAll(join(dir, "restic-password"), loose));
    const run = await check(
      inventory("loose.toml.inv", { hosts: ["chk1"], defaults: { config: looseConfig } }),
    );
    expect(run.code, run.stdout + run.stderr).toBe(1);
    const failed = run.host("chk1")?.checks.filter((c) => !c.ok) ?? [];
    expect(failed.map((c) => c.name)).toContain(`password_file:${loose}`);
    expect(failed.find((c) => c.name === `password_file:${loose}`)?.hint).toMatch(/chmod 600/);
    rmSync(loose);
  });
});
