// A TCP port that is free on an address right now. Whoever binds it next may lose a race with another
// process; callers that start a server on it check that it came up.
import { createServer } from "node:net";

export function freePort(address = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen({ host: address, port: 0, exclusive: true }, () => {
      const bound = server.address();
      server.close(() => {
        if (typeof bound === "object" && bound !== null) resolve(bound.port);
        else reject(new Error(`no port on ${address}`));
      });
    });
  });
}
