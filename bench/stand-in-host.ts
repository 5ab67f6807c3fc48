// ssh2 stand-in hosts (not sshd): one Node process, started by the bench's scale dimension outside the
// controller's process tree and CPU group, that stands in for N hosts, so that the controller's own
// CPU, memory, file descriptors and event-loop delay can be measured at sizes where N real sshd
// processes (with a session, sudo, bash and the agent per host) do not fit the machine.
//
// Each host is a listener on its own loopback address (127.1.x.y; Linux routes all of 127/8 to lo),
// with one ed25519 host key for all. A host logs in only the given user with the given public key
// (the signature checked), and answers the one exec rlvm-fleet's `ping` makes as a real host running
// the bootstrap and the agent would, byte for byte on the wire (src/agent/deliver.ts):
//   - the command must be `[sudo -n --] bash -c BOOTSTRAP rlvm-fleet-bootstrap RUN_ID SHA256 LENGTH HOST`;
//   - it prints the ready line, skips stdin up to `RLVM-FLEET-AGENT RUN_ID`, reads exactly LENGTH bytes
//     of agent and checks their sha256 against SHA256 (a mismatch exits 98, as the bootstrap does);
//   - it reads the plan up to `end`, and for `ping` prints what the agent prints (its log lines on
//     stderr; agent_start with the agent version found in the uploaded agent, then result "pong"),
//     then waits for stdin's EOF and exits 0. Any other command gets agent_unsupported.
// What it does not do: run the bootstrap script, sudo, bash or the agent (the facts it reports say so).
//
//   node --import tsx stand-in-host.ts SPEC.json
//   SPEC: {count, hostKeyPath, authorizedKey ("ssh-ed25519 AAAA…"), user}
// Prints one JSON line {"hosts":[{address, port}, …]} once every host listens. Reads commands on stdin:
// `stats` prints {"logins": [per host], "agents", "checksum_mismatch", "refused", "auth_failures"}
// since the last `stats`; EOF closes every listener and exits.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { release } from "node:os";
import { createInterface } from "node:readline";
import ssh2 from "ssh2";
import { BOOTSTRAP_EXIT, READY_LINE } from "../src/agent/deliver.js";
import { PROTOCOL_VERSION } from "../src/agent/protocol.js";

const STAND_IN_LABEL = "ssh2 stand-in hosts (not sshd)";

interface Spec {
  count: number;
  hostKeyPath: string;
  authorizedKey: string;
  user: string;
}

/** 127.1.0.2, 127.1.0.3, …: apart from the harness's sshd fleets (127.0.0.x), .0 and .255 skipped. */
function standInAddresses(count: number): string[] {
  const out: string[] = [];
  for (let n = (1 << 16) + 2; out.length < count; n++) {
    const last = n & 0xff;
    if (last === 0 || last === 0xff) continue;
    out.push(`127.${(n >> 16) & 0xff}.${(n >> 8) & 0xff}.${last}`);
  }
  return out;
}

/** Words of a POSIX shell command line as src/transport/remote-command.ts quotes them. */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (c === " ") {
      if (word !== null) words.push(word);
      word = null;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end === -1) throw new Error("unterminated quote");
      word = (word ?? "") + line.slice(i + 1, end);
      i = end;
    } else if (c === "\\") {
      word = (word ?? "") + (line[++i] ?? "");
    } else word = (word ?? "") + c;
  }
  if (word !== null) words.push(word);
  return words;
}

/** A plan value: `\xHH` escapes, `-` for the empty string (src/agent/protocol.ts encodeValue). */
function decodeValue(value: string): string {
  if (value === "-") return "";
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    if (value[i] === "\\" && value[i + 1] === "x") {
      bytes.push(parseInt(value.slice(i + 2, i + 4), 16));
      i += 3;
    } else bytes.push(value.charCodeAt(i));
  }
  return Buffer.from(bytes).toString("utf8");
}

const event = (fields: Record<string, unknown>) => `${JSON.stringify({ v: PROTOCOL_VERSION, ...fields })}\n`;

interface Counters {
  logins: number[];
  agents: number;
  checksum_mismatch: number;
  refused: number;
  auth_failures: number;
}

function newCounters(count: number): Counters {
  return {
    logins: new Array<number>(count).fill(0),
    agents: 0,
    checksum_mismatch: 0,
    refused: 0,
    auth_failures: 0,
  };
}

/** One exec channel: the bootstrap's part, then the agent's, as src/agent/deliver.ts defines them. */
function serveExec(channel: ssh2.ServerChannel, command: string, user: string, counters: Counters): void {
  let exited = false;
  const exit = (code: number, message?: string) => {
    if (exited) return;
    exited = true;
    if (message !== undefined) channel.stderr.write(`${message}\n`);
    channel.exit(code);
    channel.end();
  };
  const fail = (code: number, message: string) => exit(code, message);
  // A controller that goes away mid-run must not take the other hosts down with this process.
  channel.on("error", () => {});
  channel.stderr.on("error", () => {});
  let argv: string[];
  try {
    argv = shellWords(command);
  } catch {
    counters.refused++;
    return fail(2, "ssh2 stand-in host: cannot parse the command");
  }
  let asRoot = false;
  if (argv[0] === "sudo") {
    // Only sudo -n (no password); the bench's hosts have passwordless sudo.
    if (argv[1] !== "-n" || argv[2] !== "--") {
      counters.refused++;
      return fail(1, "sudo: a password is required");
    }
    asRoot = true;
    argv = argv.slice(3);
  }
  const [bash, dashC, , name, runId, sha, length, host] = argv;
  if (bash !== "bash" || dashC !== "-c" || name !== "rlvm-fleet-bootstrap" || argv.length !== 8) {
    counters.refused++;
    return fail(127, "ssh2 stand-in host (not sshd): it runs only rlvm-fleet's bootstrap");
  }
  const agentLength = Number(length);
  channel.write(`${READY_LINE} ${runId}\n`);
  let phase: "marker" | "agent" | "plan" | "ran" = "marker";
  let text = "";
  let left = agentLength;
  const hash = createHash("sha256");
  const agentHead: Buffer[] = [];
  let headBytes = 0;
  const marker = `RLVM-FLEET-AGENT ${runId}`;
  const runAgent = (planText: string) => {
    phase = "ran";
    const plan = planText.split("\n").map((l) => l.split(" "));
    const field = (key: string) => {
      const found = plan.find((words) => words[0] === key);
      return found?.[1] === undefined ? "" : decodeValue(found[1]);
    };
    const version =
      /readonly AGENT_VERSION="([^"]+)"/.exec(Buffer.concat(agentHead).toString("latin1"))?.[1] ?? "unknown";
    const planHost = field("host");
    const planCommand = field("command");
    if (plan[0]?.join(" ") !== "plan 2" || field("run_id") !== runId) {
      channel.write(
        event({ event: "result", code: "agent_protocol", message: "plan: not a plan 2 for this run" }),
      );
      return;
    }
    channel.stderr.write(`rlvm-agent: agent ${version}: ${planCommand} for ${planHost}, run ${runId}\n`);
    if (planCommand !== "ping") {
      channel.write(
        event({
          event: "result",
          code: "agent_unsupported",
          message: `the ssh2 stand-in host implements only ping, not ${planCommand}`,
        }),
      );
      return;
    }
    counters.agents++;
    channel.write(
      event({
        event: "agent_start",
        agent_version: version,
        run_id: runId,
        facts: {
          hostname: `stand-in-${host}`,
          kernel: release(),
          os: STAND_IN_LABEL,
          bash: "none (ssh2 stand-in)",
          restic: null,
          lvm: null,
          user: asRoot ? "root" : user,
        },
      }),
    );
    channel.write(event({ event: "result", code: null, message: "pong" }));
    channel.stderr.write("rlvm-agent: result: done: pong\n");
  };
  channel.on("data", (chunk: Buffer) => {
    if (exited) return;
    let rest = chunk;
    while (rest.length > 0) {
      if (phase === "marker") {
        const newline = rest.indexOf(10);
        if (newline === -1) {
          text += rest.toString("latin1");
          return;
        }
        const line = text + rest.subarray(0, newline).toString("latin1");
        text = "";
        rest = rest.subarray(newline + 1);
        if (line === marker) phase = "agent";
      } else if (phase === "agent") {
        const piece = rest.subarray(0, left);
        hash.update(piece);
        // The version is near the start of the agent: keep only its first 64 KiB.
        if (headBytes < 65_536) {
          agentHead.push(piece);
          headBytes += piece.length;
        }
        left -= piece.length;
        rest = rest.subarray(piece.length);
        if (left === 0) {
          if (hash.digest("hex") !== sha) {
            counters.checksum_mismatch++;
            return fail(
              BOOTSTRAP_EXIT.checksum,
              "rlvm-fleet: the agent's sha256 does not match; refusing to run it",
            );
          }
          phase = "plan";
        }
      } else if (phase === "plan") {
        text += rest.toString("latin1");
        rest = Buffer.alloc(0);
        const end = text.indexOf("\nend\n");
        if (end !== -1) runAgent(text.slice(0, end));
      } else return;
    }
  });
  channel.on("end", () => {
    if (exited) return;
    if (phase === "marker") return fail(BOOTSTRAP_EXIT.noAgent, "rlvm-fleet: stdin ended before the agent");
    if (phase === "agent") {
      counters.checksum_mismatch++;
      return fail(
        BOOTSTRAP_EXIT.checksum,
        "rlvm-fleet: the agent's sha256 does not match; refusing to run it",
      );
    }
    if (phase === "plan")
      channel.write(event({ event: "result", code: "agent_protocol", message: "the plan ended before end" }));
    exit(0);
  });
}

async function main(): Promise<void> {
  const spec = JSON.parse(readFileSync(process.argv[2] as string, "utf8")) as Spec;
  const hostKey = readFileSync(spec.hostKeyPath);
  const allowed = ssh2.utils.parseKey(spec.authorizedKey);
  if (allowed instanceof Error) throw allowed;
  const allowedBlob = allowed.getPublicSSH();
  let counters = newCounters(spec.count);
  const servers: ssh2.Server[] = [];
  const listening = await Promise.all(
    standInAddresses(spec.count).map(
      (address, index) =>
        new Promise<{ address: string; port: number }>((resolve, reject) => {
          const server = new ssh2.Server({ hostKeys: [hostKey] }, (client) => {
            client.on("error", () => {});
            client.on("authentication", (ctx) => {
              const ok =
                ctx.method === "publickey" &&
                ctx.username === spec.user &&
                ctx.key.algo === allowed.type &&
                ctx.key.data.equals(allowedBlob);
              if (!ok) {
                if (ctx.method !== "none") counters.auth_failures++;
                return ctx.reject(["publickey"]);
              }
              // Without a signature the client only asks whether the key would do.
              if (ctx.signature === undefined) return ctx.accept();
              if (allowed.verify(ctx.blob as Buffer, ctx.signature, ctx.hashAlgo) === true) {
                counters.logins[index] = (counters.logins[index] ?? 0) + 1;
                return ctx.accept();
              }
              counters.auth_failures++;
              ctx.reject(["publickey"]);
            });
            client.on("session", (acceptSession) => {
              acceptSession().on("exec", (acceptExec, _reject, info) =>
                serveExec(acceptExec(), info.command, spec.user, counters),
              );
            });
          });
          servers.push(server);
          server.once("error", reject);
          server.listen(0, address, () => resolve({ address, port: (server.address() as AddressInfo).port }));
        }),
    ),
  );
  process.stdout.write(`${JSON.stringify({ hosts: listening })}\n`);
  const input = createInterface({ input: process.stdin });
  input.on("line", (line) => {
    if (line.trim() !== "stats") return;
    process.stdout.write(`${JSON.stringify(counters)}\n`);
    counters = newCounters(spec.count);
  });
  input.on("close", () => {
    for (const server of servers) server.close();
    // Open connections of a run that was cut short must not keep it alive.
    setTimeout(() => process.exit(0), 1_000).unref();
  });
}

await main();
