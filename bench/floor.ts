// The floor: the least a Node controller can do for the same work. Connects to every host at once with
// ssh2 (host keys verified against known_hosts with the project's own matcher, host-key algorithms
// pinned to the known types as rlvm-fleet does), runs `sudo -n bash -s`, pipes the payload, and waits
// for the exit. No inventory, no plan, no report.
//
//   node floor.mjs SPEC.json      SPEC: {hosts: [{name, address, port}], user, privateKeyPath,
//                                        knownHostsFile, payloadPath}
// Prints one line per host (name, exit status, whether the agent's ok result came out); exits 0 only
// when every host ran the payload with exit status 0 and printed the result.
import { readFileSync } from "node:fs";
import { Client } from "ssh2";
import {
  hostKeyAlgorithmsForKeyTypes,
  keyTypeOfBlob,
  knownKeyTypes,
  parseKnownHosts,
  verifyHostKey,
} from "../src/transport/known-hosts.js";

interface Spec {
  hosts: { name: string; address: string; port: number }[];
  user: string;
  privateKeyPath: string;
  knownHostsFile: string;
  payloadPath: string;
  /** `sudo -n bash -s` (the default), or `bash -s` where the bench cannot use sudo. */
  command?: string;
}

// The agent's result event without an error code (protocol v2: src/agent/protocol.ts resultEvent).
const RESULT_OK = '"event":"result","code":null';

function runOne(
  host: Spec["hosts"][number],
  spec: Spec,
  key: Buffer,
  payload: Buffer,
  known: ReturnType<typeof parseKnownHosts>["entries"],
): Promise<{ name: string; code: number | null; ok: boolean; error?: string }> {
  return new Promise((resolve) => {
    const client = new Client();
    let stdout = "";
    let code: number | null = null;
    let done = false;
    const finish = (error?: string) => {
      if (done) return;
      done = true;
      client.end();
      resolve({
        name: host.name,
        code,
        ok: error === undefined && code === 0 && stdout.includes(RESULT_OK),
        error,
      });
    };
    client.on("error", (error) => finish(error.message));
    client.on("close", () => finish(code === null ? "connection closed" : undefined));
    client.on("ready", () => {
      client.exec(spec.command ?? "sudo -n bash -s", (error, channel) => {
        if (error) return finish(error.message);
        channel.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
        channel.stderr.resume();
        channel.on("exit", (exitCode: number | null) => (code = exitCode));
        channel.on("close", () => finish());
        channel.end(payload);
      });
    });
    client.connect({
      host: host.address,
      port: host.port,
      username: spec.user,
      privateKey: key,
      readyTimeout: 60_000,
      algorithms: {
        serverHostKey: hostKeyAlgorithmsForKeyTypes(knownKeyTypes(known, host.address, host.port)) as never,
      },
      hostVerifier: (blob: Buffer) =>
        verifyHostKey(known, host.address, host.port, { type: keyTypeOfBlob(blob) ?? "unknown", blob })
          .result === "match",
    });
  });
}

const spec = JSON.parse(readFileSync(process.argv[2] as string, "utf8")) as Spec;
const key = readFileSync(spec.privateKeyPath);
const payload = readFileSync(spec.payloadPath);
const known = parseKnownHosts(readFileSync(spec.knownHostsFile, "utf8"), spec.knownHostsFile).entries;
const results = await Promise.all(spec.hosts.map((host) => runOne(host, spec, key, payload, known)));
let failed = 0;
for (const result of results) {
  if (!result.ok) failed++;
  process.stdout.write(
    `${result.name} exit=${result.code ?? "none"} ${result.ok ? "ok" : `FAILED${result.error ? `: ${result.error}` : ""}`}\n`,
  );
}
process.exitCode = failed === 0 ? 0 : 1;
