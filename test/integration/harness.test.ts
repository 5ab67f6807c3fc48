import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { skipOrFail } from "../helpers/skip-or-fail.js";
import { waitFor } from "../helpers/wait-for.js";
import { describeIntegration } from "./harness/describe-integration.js";
import { anyProcessAlive, startFleet, type Fleet, type FleetHost } from "./harness/fleet.js";
import { isRoot, needsRoot, requireExecutable } from "./harness/prerequisites.js";
import { runCommand } from "./harness/run-command.js";

function tcpConnect(host: FleetHost): Promise<"connected" | "refused" | "other error"> {
  return new Promise((resolve) => {
    const socket = connect({ host: host.address, port: host.port });
    socket.once("connect", () => {
      socket.destroy();
      resolve("connected");
    });
    socket.once("error", (error: NodeJS.ErrnoException) => {
      resolve(error.code === "ECONNREFUSED" ? "refused" : "other error");
    });
  });
}

describeIntegration("sshd fleet harness", () => {
  let fleet: Fleet;

  beforeAll(async () => {
    fleet = await startFleet({ hosts: 3 });
  }, 60_000);

  afterAll(async () => {
    await fleet?.stop();
  });

  it("gives every host its own loopback address, port and host key", () => {
    expect(fleet.mode).toBe(isRoot() ? "root" : "user");
    expect(fleet.hosts.map((host) => host.name)).toEqual(["host1", "host2", "host3"]);
    expect(fleet.hosts.map((host) => host.address)).toEqual(["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    expect(new Set(fleet.hosts.map((host) => host.hostKeyFingerprint)).size).toBe(3);
    for (const host of fleet.hosts) {
      expect(host.running).toBe(true);
      expect(host.hostKeyPub).toMatch(/^ssh-ed25519 AAAA\S+$/);
      expect(host.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
      expect(host.knownHostsLine).toBe(`[${host.address}]:${host.port} ${host.hostKeyPub}`);
    }
  });

  it("computes host key fingerprints the way ssh-keygen does", async () => {
    const host = fleet.hosts[0] as FleetHost;
    const listed = await runCommand(requireExecutable("ssh-keygen"), ["-l", "-f", fleet.knownHostsFile]);
    expect(listed.stdout).toContain(host.hostKeyFingerprint);
  });

  it("logs into every host with strict host key checking", async () => {
    for (const host of fleet.hosts) {
      const result = await fleet.sshExec(host, fleet.loginUser, 'id -un; echo "$RLVM_FLEET_HOST"');
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      expect(result.stdout).toBe(`${fleet.loginUser}\n${host.name}\n`);
    }
  });

  it("refuses a key that is not authorized", async () => {
    const wrongKey = await fleet.createWrongKey();
    const result = await fleet.sshExec("host1", fleet.loginUser, "true", {
      identityFile: wrongKey.privateKeyPath,
    });
    expect(result.code).toBe(255);
    expect(result.stderr).toContain("Permission denied (publickey)");
  });

  it("creates an authorized passphrase-protected key", async () => {
    const key = await fleet.createPassphraseKey("correct horse");
    const keygen = requireExecutable("ssh-keygen");
    const withoutPassphrase = await runCommand(keygen, ["-y", "-P", "", "-f", key.privateKeyPath]);
    expect(withoutPassphrase.code).not.toBe(0);

    const askpass = join(fleet.dir, "askpass.sh");
    await writeFile(askpass, `#!/bin/sh\necho '${key.passphrase}'\n`, { mode: 0o700 });
    const login = await fleet.sshExec("host1", fleet.loginUser, "id -un", {
      identityFile: key.privateKeyPath,
      sshOptions: ["BatchMode=no"],
      env: { ...process.env, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: "force" },
    });
    expect(login).toMatchObject({ code: 0, stdout: `${fleet.loginUser}\n` });
  });

  it("gives the login user passwordless sudo", async (ctx) => {
    skipOrFail(ctx, "integration", needsRoot());
    const result = await fleet.sshExec("host2", fleet.loginUser, "sudo -n id -u");
    expect(result).toMatchObject({ code: 0, stdout: "0\n" });
  });

  it("makes sudo ask the password user for a password", async (ctx) => {
    skipOrFail(ctx, "integration", needsRoot());
    const user = fleet.passwordUser as string;
    expect((await fleet.sshExec("host2", user, "id -un")).stdout).toBe(`${user}\n`);
    const withoutPassword = await fleet.sshExec("host2", user, "sudo -n true");
    expect(withoutPassword.code).toBe(1);
    expect(withoutPassword.stderr).toContain("a password is required");
    const withPassword = await fleet.sshExec("host2", user, "sudo -S -p '' id -u", {
      input: `${fleet.sudoPassword}\n`,
    });
    expect(withPassword).toMatchObject({ code: 0, stdout: "0\n" });
  });

  it("stopHost makes the port refuse connections and startHost brings it back", async () => {
    const host = fleet.host("host3");
    const { port, hostKeyFingerprint } = host;
    await fleet.stopHost("host3");
    expect(host.running).toBe(false);
    expect(await tcpConnect(host)).toBe("refused");
    const down = await fleet.sshExec(host, fleet.loginUser, "true");
    expect(down.code).toBe(255);
    expect(down.stderr).toContain("Connection refused");

    await fleet.startHost("host3");
    expect(host.port).toBe(port);
    expect(host.hostKeyFingerprint).toBe(hostKeyFingerprint);
    expect((await fleet.sshExec(host, fleet.loginUser, "id -un")).code).toBe(0);
  });

  it("startHost fails with the end of sshd's log when the port has been taken", async () => {
    const host = fleet.host("host3");
    await fleet.stopHost("host3");
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen({ host: host.address, port: host.port }, resolve));
    try {
      await expect(fleet.startHost("host3")).rejects.toThrow(
        /exited; end of .*sshd\.log:\n[^]*Address already in use/,
      );
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
    await fleet.startHost("host3");
    expect((await fleet.sshExec(host, fleet.loginUser, "true")).code).toBe(0);
  });

  /** Starts `sleep 300` on a host over ssh; resolves once it runs, with its pid and the ssh client's exit. */
  async function startRemoteSleep(hostName: string) {
    const marker = `rlvm-harness-sleep-${hostName}-${process.pid}`;
    const client = spawn(
      requireExecutable("ssh"),
      [...fleet.sshArgs(hostName, fleet.loginUser), "--", `exec -a ${marker} sleep 300`],
      { stdio: "ignore" },
    );
    const clientExit = new Promise<number | null>((resolve) => client.once("exit", resolve));
    const findPid = async () => {
      const found = await runCommand("pgrep", ["-f", `^${marker}`]);
      return Number(found.stdout.trim().split("\n")[0]) || undefined;
    };
    const pid = await waitFor(`the remote ${marker}`, findPid, { timeoutMs: 10_000, intervalMs: 50 });
    return { pid, client, clientExit };
  }

  it("stopHost kills sessions that are running on the host", async () => {
    const session = await startRemoteSleep("host1");
    expect(fleet.processIds()).toContain(session.pid);

    await fleet.stopHost("host1");
    expect(await session.clientExit).toBe(255);
    expect(anyProcessAlive([session.pid])).toBe(false);
    await fleet.startHost("host1");
  });

  it("stopHost with keepSessions stops only the listener, and stop() still finds the session", async () => {
    const host = fleet.host("host1");
    const session = await startRemoteSleep("host1");
    await fleet.stopHost("host1", { keepSessions: true });
    expect(await tcpConnect(host)).toBe("refused");
    expect(anyProcessAlive([session.pid])).toBe(true);
    expect(session.client.exitCode).toBeNull();
    expect(fleet.processIds()).toContain(session.pid);
    await fleet.startHost("host1");
    // The final test checks that fleet.stop() kills this session.
  });

  it("replaceHostKey makes strict host key checking fail until known_hosts is rewritten", async () => {
    const host = fleet.host("host2");
    const oldFingerprint = host.hostKeyFingerprint;
    await fleet.replaceHostKey("host2");
    expect(host.hostKeyFingerprint).not.toBe(oldFingerprint);
    const changed = await fleet.sshExec(host, fleet.loginUser, "true");
    expect(changed.code).toBe(255);
    expect(changed.stderr).toContain("REMOTE HOST IDENTIFICATION HAS CHANGED");
    expect(changed.stderr).toContain(host.hostKeyFingerprint);

    await fleet.writeKnownHosts();
    expect((await fleet.sshExec(host, fleet.loginUser, "true")).code).toBe(0);
  });

  it("stop() leaves no process of the fleet alive and removes its directory", async () => {
    const listeners = fleet.hosts.map((host) => host.pid as number);
    expect(listeners.every((pid) => pid > 0)).toBe(true);
    const pids = fleet.processIds();
    expect(pids).toEqual(expect.arrayContaining(listeners));
    await fleet.stop();
    expect(anyProcessAlive(pids)).toBe(false);
    expect(existsSync(fleet.dir)).toBe(false);
    for (const host of fleet.hosts) expect(await tcpConnect(host)).toBe("refused");
  });
});
