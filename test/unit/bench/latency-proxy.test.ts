// The bench's latency proxy stands for a network path: everything arrives, in order, one RTT later,
// and a FIN arrives as a FIN after the data before it (a reordered SSH stream fails its MAC; a lost
// tail loses an exit status).
import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startLatencyProxy } from "../../../bench/latency-proxy.js";
import type { Fleet } from "../../integration/harness/fleet.js";

describe("bench: latency proxy", () => {
  const dir = mkdtempSync(join(tmpdir(), "rlvm-bench-proxy-"));
  const servers: Server[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    rmSync(dir, { recursive: true, force: true });
  });

  /** An echo server that answers a half-close by ending its side once it has echoed everything. */
  async function echoServer(): Promise<number> {
    const server = createServer({ allowHalfOpen: true }, (socket) => {
      socket.on("data", (chunk) => socket.write(chunk));
      socket.on("end", () => socket.end());
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return (server.address() as { port: number }).port;
  }

  it("delivers a burst of small writes whole and in order, one RTT later, then the FIN", async () => {
    const port = await echoServer();
    const fleet = {
      hosts: [{ name: "h1", address: "127.0.0.1", port, hostKeyPub: "ssh-ed25519 AAAA" }],
      knownHostsFile: join(dir, "known_hosts"),
    } as unknown as Fleet;
    const proxy = await startLatencyProxy(fleet, 20);
    try {
      const via = proxy.view.hosts[0]!;
      const socket = connect({ host: via.address, port: via.port, allowHalfOpen: true });
      const received: Buffer[] = [];
      let endedAt = 0;
      const done = new Promise<void>((resolve) => {
        socket.on("data", (chunk: Buffer) => received.push(chunk));
        socket.on("end", () => {
          endedAt = Date.now();
          resolve();
        });
      });
      await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
      const started = Date.now();
      const sent: Buffer[] = [];
      // Writes spread over several milliseconds and loop turns: the case where timers reordered.
      for (let i = 0; i < 400; i++) {
        const piece = Buffer.from(`${i.toString().padStart(4, "0")};`);
        sent.push(piece);
        socket.write(piece);
        if (i % 40 === 0) await new Promise((r) => setImmediate(r));
      }
      socket.end();
      await done;
      expect(Buffer.concat(received).toString()).toBe(Buffer.concat(sent).toString());
      // There and back: at least one RTT, plus the connection's first RTT (the handshake).
      expect(endedAt - started).toBeGreaterThanOrEqual(20);
      socket.destroy();
    } finally {
      await proxy.stop();
    }
  });
});
