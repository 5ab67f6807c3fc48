// BENCH_RTT_MS: a user-space latency proxy in front of every host's sshd (this kernel has no netem).
// Each host gets a listener on 127.0.0.1; every tool connects there, never to the sshd itself. Data
// is delayed by RTT/2 in each direction, in order, and nothing flows until one RTT after the
// connection was accepted, as a TCP handshake over such a link would take. It runs in the bench's
// own process, outside the controller's CPU group: it stands for the network, not for a tool.
import { writeFileSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import type { Fleet, FleetHost } from "../test/integration/harness/fleet.js";

export interface LatencyProxy {
  readonly rttMs: number;
  /** The fleet as the tools see it: each host's address and port are its proxy listener's. */
  readonly view: Fleet;
  /** Median and spread of a 1-byte round trip through a proxy to an echo server (a plain TCP ping). */
  calibrate(samples?: number): Promise<{ medianMs: number; minMs: number; maxMs: number }>;
  stop(): Promise<void>;
}

/**
 * Copies `from` into `to`, each chunk delivered `delayMs` after it arrived but never before `notBefore`,
 * in order: one queue per direction, drained by one timer at a time (a timer per chunk could fire out
 * of order, since Node computes a timer's expiry from the event loop's cached time, and a reordered
 * SSH stream breaks its MAC). A FIN is passed on as a FIN, after the data before it (both sockets are
 * half-open capable, as a TCP path is); only a connection that broke (an error, or a close without
 * FIN) is broken on the other side, since destroying a socket drops what it has not sent yet.
 */
function delayedPipe(from: Socket, to: Socket, delayMs: number, notBefore: number): void {
  const queue: { due: number; deliver: () => void }[] = [];
  let timer: NodeJS.Timeout | null = null;
  let ended = false;
  const drain = () => {
    timer = null;
    while (queue.length > 0 && (queue[0] as { due: number }).due <= Date.now()) queue.shift()?.deliver();
    if (queue.length > 0) timer = setTimeout(drain, (queue[0] as { due: number }).due - Date.now());
  };
  const at = (deliver: () => void) => {
    queue.push({ due: Math.max(Date.now(), notBefore) + delayMs, deliver });
    timer ??= setTimeout(drain, (queue[0] as { due: number }).due - Date.now());
  };
  from.on("data", (chunk: Buffer) => at(() => to.destroyed || to.writableEnded || to.write(chunk)));
  from.on("end", () => {
    ended = true;
    at(() => to.end());
  });
  from.on("error", () => at(() => to.destroy()));
  from.on("close", () => {
    if (!ended) at(() => to.destroy());
  });
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port: 0 }, () => {
      const address = server.address();
      if (typeof address === "object" && address !== null) resolve(address.port);
      else reject(new Error("the latency proxy got no port"));
    });
  });
}

/** Every socket the proxies opened, destroyed by stop() (a tool may leave a connection open). */
const open = new Set<Socket>();
const track = (socket: Socket) => {
  open.add(socket);
  socket.on("close", () => open.delete(socket));
};

async function proxyTo(
  target: { address: string; port: number },
  rttMs: number,
): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen: true }, (client) => {
    const accepted = Date.now();
    const upstream = connect({ host: target.address, port: target.port, allowHalfOpen: true });
    track(client);
    track(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    delayedPipe(client, upstream, rttMs / 2, accepted + rttMs);
    delayedPipe(upstream, client, rttMs / 2, accepted + rttMs);
  });
  return { server, port: await listen(server) };
}

export async function startLatencyProxy(fleet: Fleet, rttMs: number): Promise<LatencyProxy> {
  const servers: Server[] = [];
  const hosts: FleetHost[] = [];
  for (const host of fleet.hosts) {
    const { server, port } = await proxyTo(host, rttMs);
    servers.push(server);
    // Only where the tools connect changes; the real host (its pid, its log) stays the harness's.
    hosts.push(
      Object.create(host, {
        address: { value: "127.0.0.1", enumerable: true },
        port: { value: port, enumerable: true },
        knownHostsLine: { value: `[127.0.0.1]:${port} ${host.hostKeyPub}`, enumerable: true },
      }) as FleetHost,
    );
  }
  const knownHostsFile = `${fleet.knownHostsFile}.via-proxy`;
  writeFileSync(knownHostsFile, hosts.map((h) => `${h.knownHostsLine}\n`).join(""), { mode: 0o644 });
  const byName = new Map(hosts.map((h) => [h.name, h]));
  const view = Object.create(fleet, {
    hosts: { value: hosts },
    knownHostsFile: { value: knownHostsFile },
    host: {
      value: (name: string) => {
        const host = byName.get(name);
        if (host === undefined) throw new Error(`no host ${name}`);
        return host;
      },
    },
  }) as Fleet;
  return {
    rttMs,
    view,
    calibrate: async (samples = 20) => {
      const echo = createServer((socket) => socket.pipe(socket));
      const echoPort = await listen(echo);
      const { server, port } = await proxyTo({ address: "127.0.0.1", port: echoPort }, rttMs);
      const socket = connect({ host: "127.0.0.1", port });
      socket.setNoDelay(true);
      await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
      // The first byte also waits for the handshake's RTT: warm up with it, then measure.
      const ping = () =>
        new Promise<number>((resolve) => {
          const sent = process.hrtime.bigint();
          socket.once("data", () => resolve(Number(process.hrtime.bigint() - sent) / 1e6));
          socket.write("x");
        });
      await ping();
      const times: number[] = [];
      for (let i = 0; i < samples; i++) times.push(await ping());
      socket.destroy();
      await Promise.all([server, echo].map((s) => new Promise((r) => s.close(r))));
      times.sort((a, b) => a - b);
      return {
        medianMs: times[Math.floor(times.length / 2)] ?? Number.NaN,
        minMs: times[0] ?? Number.NaN,
        maxMs: times[times.length - 1] ?? Number.NaN,
      };
    },
    stop: async () => {
      for (const socket of open) socket.destroy();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    },
  };
}
