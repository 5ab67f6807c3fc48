// --ping-url end to end: the real CLI against real sshd hosts pings a real local HTTP server as
// healthchecks.io's protocol says (/start, then the check itself or /fail, with the summary as body).
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { runCli } from "../helpers/run-cli.js";
import { describeIntegration } from "./harness/describe-integration.js";
import { startFleet, type Fleet } from "./harness/fleet.js";
import { writeInventory } from "./helpers/test-fleet.js";

const HOSTS = ["pu1", "pu2"];

interface Ping {
  method: string;
  path: string;
  body: string;
}

describeIntegration("--ping-url over real sshd", () => {
  let fleet: Fleet;
  let dir: string;
  let inventoryFile: string;
  let server: Server;
  let base: string;
  const pings: Ping[] = [];
  // A server that accepts connections and never answers.
  let silent: TcpServer;
  let silentUrl: string;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    fleet = await startFleet({ hosts: HOSTS });
    dir = mkdtempSync(join(fleet.dir, "ping-"));
    // ping runs no job, but every host needs a valid config.
    writeFileSync(
      join(dir, "host.toml"),
      `[standard_path.etc]
backup_source_path = "/etc"

[[standard_path.etc.repositories]]
repo_path = "/srv/none"
password_file = "/etc/none.pw"
`,
    );
    inventoryFile = writeInventory(fleet, join(dir, "inventory.toml"), {
      defaults: { config: join(dir, "host.toml") },
    });
    server = createServer((request, response) => {
      let body = "";
      request.on("data", (chunk: Buffer) => (body += chunk.toString()));
      request.on("end", () => {
        pings.push({ method: request.method ?? "", path: request.url ?? "", body });
        response.end("OK");
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    base = `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`;
    silent = createTcpServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const silentAddress = silent.address();
    silentUrl = `http://127.0.0.1:${typeof silentAddress === "object" && silentAddress !== null ? silentAddress.port : 0}/never`;
  }, 120_000);

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent?.close(resolve));
    await new Promise((resolve) => server?.close(resolve));
    await fleet?.stop();
  });

  const ping = (...args: string[]) => runCli(["ping", "--inventory", inventoryFile, "--quiet", ...args]);

  it("pings /start, then the check itself on a clean run, with the summary as the body", async () => {
    pings.length = 0;
    const result = await ping("--ping-url", `${base}/abc`);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(pings.map((p) => `${p.method} ${p.path}`)).toEqual(["POST /abc/start", "POST /abc"]);
    for (const host of HOSTS) expect(pings[1]?.body).toContain(host);
    expect(result.stderr).not.toMatch(/warning/);
  });

  it("pings /start, then /fail for a run with an unreachable host, and the exit code is the run's", async () => {
    pings.length = 0;
    await fleet.stopHost("pu2");
    try {
      const result = await ping("--ping-url", `${base}/abc`);
      expect(result.code, result.stdout + result.stderr).toBe(4);
      expect(pings.map((p) => `${p.method} ${p.path}`)).toEqual(["POST /abc/start", "POST /abc/fail"]);
      expect(pings[1]?.body).toMatch(/pu2/);
      expect(pings[1]?.body).toMatch(/unreachable/);
    } finally {
      await fleet.startHost("pu2");
    }
  });

  it("a dead ping server only warns: nothing listening, or a server that never answers (bounded by the timeout)", async () => {
    const closed = createTcpServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const closedAddress = closed.address();
    const port = typeof closedAddress === "object" && closedAddress !== null ? closedAddress.port : 0;
    await new Promise((resolve) => closed.close(resolve));
    const refused = await ping("--ping-url", `http://127.0.0.1:${port}/x`);
    expect(refused.code, refused.stderr).toBe(0);
    expect(refused.stderr).toMatch(/warning/);

    const started = Date.now();
    const hanging = await ping("--ping-url", silentUrl);
    const elapsed = Date.now() - started;
    expect(hanging.code, hanging.stderr).toBe(0);
    expect(hanging.stderr).toMatch(/warning/);
    // The ping timeout is 10 s: the run takes at most that much longer than a run without pings.
    expect(elapsed).toBeLessThan(10_000 + 15_000);
    expect(elapsed).toBeGreaterThanOrEqual(9_000);
  }, 60_000);
});
