// The real CLI against a hostile host: an in-process SSH server that plays the bootstrap and an agent
// whose facts, checks, warnings, log lines and error carry terminal escape sequences. With --no-color
// not one ESC byte reaches stdout or stderr; the JSON report keeps the host's exact text.
import { chmodSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import ssh2 from "ssh2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { READY_LINE } from "../../../src/agent/deliver.js";
import { agentEventOf, type AgentEventFields } from "../../helpers/agent-event.js";
import { runCli, runJson, writeTree } from "../../helpers/run-cli.js";

const EVIL = "\u001b]52;c;cm0gLXJmIC8K\u0007\u001b[2J\u009b31m\u007f\rfake";
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

const line = (fields: AgentEventFields) => `${JSON.stringify(agentEventOf(fields))}\n`;

/** What the hostile agent prints for `command`, given the run id the controller chose. */
function agentOutput(command: string, runId: string): { stdout: string; stderr: string } {
  const start = line({
    event: "agent_start",
    agent_version: "1.0.0",
    run_id: runId,
    facts: {
      hostname: `evil${EVIL}`,
      kernel: `6.1${EVIL}`,
      os: `Debian${EVIL}`,
      bash: "5.2",
      restic: `0.16${EVIL}`,
      lvm: null,
      user: "root",
    },
  });
  const events =
    command === "ping"
      ? [line({ event: "result", code: "agent_error", message: `broke: ${EVIL}` })]
      : [
          line({ event: "check", name: "bash", ok: true, detail: `5.2${EVIL}`, hint: "", code: null }),
          line({
            event: "check",
            name: "repo:/srv/a",
            ok: false,
            detail: `Fatal: ${EVIL}`,
            hint: "",
            code: null,
          }),
          line({ event: "warning", code: "restic_partial", message: `warned ${EVIL}` }),
          line({ event: "result", code: null, message: "done" }),
        ];
  return { stdout: start + events.join(""), stderr: `rlvm-agent: log ${EVIL}\n` };
}

let server: ssh2.Server;
let inventory = "";
let cleanup = () => {};

beforeAll(async () => {
  const hostKey = ssh2.utils.generateKeyPairSync("ed25519");
  const clientKey = ssh2.utils.generateKeyPairSync("ed25519");
  server = new ssh2.Server({ hostKeys: [hostKey.private] }, (client) => {
    client.on("authentication", (ctx) => ctx.accept());
    client.on("error", () => {});
    client.on("session", (acceptSession) => {
      acceptSession().on("exec", (acceptExec, _reject, info) => {
        const channel = acceptExec();
        const runId = /rlvm-fleet-bootstrap'? '?([^' ]+)/.exec(info.command)?.[1] ?? "";
        let input = "";
        let started = false;
        channel.write(`${READY_LINE} ${runId}\n`);
        channel.on("data", (chunk: Buffer) => {
          input += chunk.toString();
          if (started || !input.includes(`RLVM-FLEET-AGENT ${runId}\n`) || !/\nend\n/.test(input)) return;
          started = true;
          const out = agentOutput(/\ncommand (\S+)/.exec(input)?.[1] ?? "", runId);
          channel.stderr.write(out.stderr);
          channel.write(out.stdout);
        });
        channel.on("end", () => {
          channel.exit(0);
          channel.end();
        });
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const tree = writeTree({
    "host.toml": `[standard_path.data]
backup_source_path = "/srv/data"
exclude_paths = []

[[standard_path.data.repositories]]
repo_path = "/srv/a"
password_file = "/etc/restic-password"
prune_keep_last = 3
`,
    known_hosts: `[127.0.0.1]:${port} ${hostKey.public}\n`,
    id_ed25519: clientKey.private,
  });
  chmodSync(join(tree.dir, "id_ed25519"), 0o600);
  inventory = join(tree.dir, "inventory.toml");
  writeFileSync(
    inventory,
    `[defaults]
user = "rlvm"
become = "none"
identity_file = "id_ed25519"
known_hosts = "known_hosts"
config = "host.toml"
connect_retries = 0

[hosts.evil]
address = "127.0.0.1"
port = ${port}
`,
  );
  cleanup = tree.cleanup;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  cleanup();
});

describe("a host that sends terminal escape sequences, through the real CLI", () => {
  for (const command of ["check", "ping"]) {
    for (const format of ["table", "markdown"]) {
      it(`${command} --format ${format} --no-color --verbose: no ESC on stdout or stderr`, async () => {
        const run = await runCli([
          command,
          "--inventory",
          inventory,
          "--no-color",
          "--verbose",
          "--format",
          format,
        ]);
        expect(run.code, run.stdout + run.stderr).toBe(1);
        const output = run.stdout + run.stderr;
        expect(output).not.toContain("\u001b");
        expect(output).not.toMatch(RAW_CONTROL);
        // What the host sent is there, visibly.
        expect(output).toContain("\\x1b]52;c;cm0gLXJmIC8K\\x07");
        expect(run.stderr).toContain("[evil] rlvm-agent: log \\x1b]52;c;");
        if (command === "check") expect(run.stdout).toContain("Fatal: \\x1b]52;c;");
        else expect(run.stdout).toContain("broke: \\x1b]52;c;");
      });
    }
  }

  it("the JSON report keeps the host's exact text (JSON escapes it)", async () => {
    const run = await runJson("check", inventory);
    expect(run.host("evil")?.facts?.hostname).toBe(`evil${EVIL}`);
    expect(run.host("evil")?.checks.find((c) => c.name === "repo:/srv/a")?.detail).toBe(`Fatal: ${EVIL}`);
    expect(run.stdout).not.toContain("\u001b");
  });
});
