// The host run against a scripted host: a fake session whose channel plays what the bootstrap, sudo and
// the agent would print, so every protocol path that needs no real host runs in milliseconds.
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { READY_LINE } from "../../../src/agent/deliver.js";
import { INSTALLED_AGENT } from "../../../src/agent/installed-agent.js";
import { agentPlan } from "../../../src/agent/plan-lines.js";
import { PROTOCOL_VERSION } from "../../../src/agent/protocol.js";
import { buildPlan, type HostPlan } from "../../../src/plan/build-plan.js";
import type { ProgressEvent } from "../../../src/report/progress-event.js";
import { runHost, STDERR_LINE_MAX, type HostRunContext } from "../../../src/run/run-host.js";
import type { AgentEventFields } from "../../helpers/agent-event.js";
import type {
  ConnectTarget,
  RemoteExit,
  RemoteProcess,
  SshSession,
} from "../../../src/transport/ssh-connection.js";

const INVENTORY = join(import.meta.dirname, "../../../examples/single-host/inventory.toml");
const RUN_ID = "run1";
const PASSWORD = "s3cret-pw";
const AGENT = { bytes: Buffer.from("echo agent\n"), sha256: "0".repeat(64) };

/** One event as the agent writes it: a JSON line, parsed by the real parser on the way in. */
const line = (event: AgentEventFields) => `${JSON.stringify({ v: PROTOCOL_VERSION, ...event })}\n`;
const agentStart = line({
  event: "agent_start",
  agent_version: "1.2.3",
  run_id: RUN_ID,
  facts: {
    hostname: "vault1",
    kernel: "6.1",
    os: "Debian GNU/Linux 12 (bookworm)",
    bash: "5.2",
    restic: "0.14.0",
    lvm: "2.03",
    user: "root",
  },
});
const resultOk = line({ event: "result", code: null, message: "all good" });
const ready = `${READY_LINE} ${RUN_ID}\n`;

/** Output held until a listener takes it, as in ssh2's paused channel streams. */
class Pipe {
  private listener: ((chunk: Buffer) => void) | null = null;
  private held: Buffer[] = [];
  listen(listener: (chunk: Buffer) => void): void {
    this.listener = listener;
    // Handed over at once: harsher than a stream, which hands held data over a tick later.
    for (const chunk of this.held.splice(0)) listener(chunk);
  }
  push(text: string): void {
    if (this.listener === null) this.held.push(Buffer.from(text));
    else this.listener(Buffer.from(text));
  }
}

/** A channel whose far end is a script: it prints, waits for the controller, and exits. */
class ScriptedChannel implements RemoteProcess {
  readonly written: string[] = [];
  /** The command the controller ran: it holds this run's sudo prompt. */
  command = "";
  stdinClosed = false;
  closedByController = false;
  /** A host that answers keepalives but never closes the channel, whatever the controller sends. */
  ignoresClose = false;
  readonly closed: Promise<RemoteExit | null>;
  private finish: (exit: RemoteExit | null) => void = () => {};
  private waiters: (() => void)[] = [];
  private readonly out = new Pipe();
  private readonly err = new Pipe();

  constructor() {
    this.closed = new Promise((resolve) => (this.finish = resolve));
  }

  onStdout(listener: (chunk: Buffer) => void): void {
    this.out.listen(listener);
  }
  onStderr(listener: (chunk: Buffer) => void): void {
    this.err.listen(listener);
  }
  write(data: string | Buffer): void {
    if (this.stdinClosed) throw new Error("write after the controller closed stdin");
    this.written.push(data.toString());
    this.wake();
  }
  end(): void {
    this.stdinClosed = true;
    this.wake();
  }
  close(): void {
    this.closedByController = true;
    if (!this.ignoresClose) this.exit(null);
  }

  stdout(text: string): void {
    this.out.push(text);
  }
  stderr(text: string): void {
    this.err.push(text);
  }
  exit(exit: RemoteExit | null): void {
    this.finish(exit);
  }
  /** The prompt sudo prints on this channel (the one the controller put in the command). */
  prompt(): string {
    const prompt = /-p '([^']*)'/.exec(this.command)?.[1];
    if (prompt === undefined) throw new Error(`no sudo prompt in ${this.command}`);
    return prompt;
  }
  /** Everything the controller wrote to stdin so far. */
  input(): string {
    return this.written.join("");
  }
  /** Resolves once `condition` holds; rechecked whenever the controller writes or closes stdin. */
  async until(condition: () => boolean): Promise<void> {
    while (!condition()) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
  gotPayload(): boolean {
    return this.input().includes(`RLVM-FLEET-AGENT ${RUN_ID}\n`);
  }
  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

type HostScript = (channel: ScriptedChannel) => Promise<void> | void;

/** The usual agent: takes the payload, prints `events`, and exits when stdin closes. */
const agentPrints =
  (...events: string[]): HostScript =>
  async (channel) => {
    channel.stdout(ready);
    await channel.until(() => channel.gotPayload());
    for (const event of events) channel.stdout(event);
    await channel.until(() => channel.stdinClosed);
    channel.exit({ code: 0, signal: null });
  };

interface Harness {
  commands: string[];
  channels: ScriptedChannel[];
  progress: ProgressEvent[];
  sessionClosed: number;
  sessionDestroyed: number;
  targets: ConnectTarget[];
}

function setup(
  script: HostScript,
  options: {
    host?: Partial<HostPlan["host"]>;
    ctx?: Partial<HostRunContext>;
    exec?: () => Promise<never>;
    /** The exec's answer waits for this. */
    execGate?: Promise<void>;
    /** What the far end prints before the exec's reply reaches the controller. */
    early?: (channel: ScriptedChannel) => void;
    /** The channel ignores the controller's close (CHANNEL_CLOSE). */
    ignoresClose?: boolean;
    /** What the connection reports about known_hosts lines it ignored. */
    hostKeyWarnings?: string[];
  } = {},
) {
  const [example] = buildPlan(INVENTORY).hosts;
  if (example === undefined) throw new Error("the example has no host");
  const hostPlan: HostPlan = { ...example, host: { ...example.host, ...options.host } };
  const harness: Harness = {
    commands: [],
    channels: [],
    progress: [],
    sessionClosed: 0,
    sessionDestroyed: 0,
    targets: [],
  };
  const session: SshSession = {
    hostKeyNote: null,
    ...(options.hostKeyWarnings === undefined ? {} : { hostKeyWarnings: options.hostKeyWarnings }),
    exec: async (command) => {
      if (options.exec !== undefined) return options.exec();
      harness.commands.push(command);
      await options.execGate;
      const channel = new ScriptedChannel();
      channel.command = command;
      channel.ignoresClose = options.ignoresClose === true;
      harness.channels.push(channel);
      options.early?.(channel);
      // The far end starts once the controller holds the channel, as with a real one.
      setImmediate(() => void script(channel));
      return channel;
    },
    close: () => void harness.sessionClosed++,
    destroy: () => void harness.sessionDestroyed++,
    closed: new Promise(() => {}),
  };
  const ctx: HostRunContext = {
    runId: RUN_ID,
    command: "preflight",
    jobs: null,
    dryRun: false,
    maxAgeS: null,
    agent: AGENT,
    files: {
      privateKey: () => null,
      secret: (path) => (path === "/pw" ? PASSWORD : null),
      knownHosts: () => [],
    },
    agentSocket: null,
    signal: new AbortController().signal,
    onProgress: (event) => harness.progress.push(event),
    connect: async (target) => {
      harness.targets.push(target);
      return session;
    },
    ...options.ctx,
  };
  return { harness, run: () => runHost(hostPlan, ctx), hostPlan };
}

const withPassword = { become_password_file: "/pw" };

afterEach(() => {
  vi.useRealTimers();
});

describe("runHost against a scripted host", () => {
  it("fills the result from the agent's events and sends the payload once", async () => {
    const check = line({ event: "check", name: "restic", ok: true, detail: "0.16.4", hint: "", code: null });
    const failing = line({
      event: "check",
      name: "vg space",
      ok: false,
      detail: "low",
      hint: "grow it",
      code: null,
    });
    const warning = line({ event: "warning", code: "cow_high", message: "snapshot near full" });
    const { harness, run } = setup(agentPrints(agentStart, check, failing, warning, resultOk));
    const result = await run();

    // The agent only reports; the failed check is what fails the host (src/run/host-outcome.ts).
    expect(result).toMatchObject({
      name: "vault1",
      status: "failed",
      error: { code: "preflight", message: "1 of 2 checks failed: vg space" },
      facts: { hostname: "vault1", user: "root", restic: "0.14.0" },
      checks: [
        { name: "restic", ok: true, detail: "0.16.4", hint: "" },
        { name: "vg space", ok: false, detail: "low", hint: "grow it" },
      ],
      warnings: [{ code: "cow_high", message: "snapshot near full" }],
    });
    expect(result.facts).not.toHaveProperty("uid");
    expect(harness.commands).toEqual([expect.stringMatching(/^sudo -n -- bash -c /)]);
    const [channel] = harness.channels;
    expect(channel?.input().match(/RLVM-FLEET-AGENT run1\n/g)).toHaveLength(1);
    expect(channel?.input()).toContain("echo agent\n");
    expect(channel?.input()).toMatch(/\nend\n$/);
    expect(harness.progress.map((p) => [p.step, p.detail])).toEqual([
      ["connecting", undefined],
      ["running", "agent 1.2.3 as root"],
      ["running", "✓ restic"],
      ["running", "✗ vg space"],
      ["done", "1 of 2 checks failed: vg space"],
    ]);
    expect(harness.sessionClosed).toBe(1);
  });

  it("an untested restic is a warning of check only, which leaves the host ok", async () => {
    const start = (restic: string) =>
      agentStart.replace('"restic":"0.14.0"', `"restic":${JSON.stringify(restic)}`);
    const checked = await setup(agentPrints(start("0.19.0"), resultOk)).run();
    expect(checked.status).toBe("ok");
    expect(checked.warnings).toEqual([
      {
        code: "restic_untested",
        message: expect.stringMatching(/^restic 0\.19\.0 is newer than the newest .* \(0\.18\.x\)/) as string,
      },
    ]);
    for (const version of ["0.14.0", "0.18.0"]) {
      const tested = await setup(agentPrints(start(version), resultOk)).run();
      expect(tested.warnings).toEqual([]);
    }
    const pinged = await setup(agentPrints(start("0.19.0"), resultOk), { ctx: { command: "ping" } }).run();
    expect(pinged.warnings).toEqual([]);
  });

  it("tracks job events into the report's jobs", async () => {
    const { hostPlan } = setup(() => {});
    const plan = agentPlan(hostPlan, "backup", RUN_ID);
    const [repoId] = [...plan.repos.keys()];
    const job = hostPlan.jobs[0]?.name ?? "";
    const { harness, run } = setup(
      agentPrints(
        agentStart,
        line({ event: "job_start", job }),
        line({
          event: "repo_done",
          job,
          repo: repoId ?? "",
          exit_code: 0,
          duration_ms: 5,
          summary: {
            snapshot_id: "0123456789abcdef",
            files_new: 1,
            files_changed: 0,
            files_unmodified: 0,
            data_added: 10,
            total_duration: 0.1,
          },
        }),
        line({ event: "job_end", job }),
        resultOk,
      ),
      { ctx: { command: "backup", jobs: { command: "backup", initial: "skipped" } } },
    );
    const result = await run();
    expect(result.jobs[0]?.repos[0]).toMatchObject({ status: "ok", snapshot_id: "0123456789abcdef" });
    expect(harness.progress.filter((p) => p.step === "running").map((p) => p.detail)).toContain(`job ${job}`);
  });

  it("counts lines that are not events as noise (the ready line is not noise)", async () => {
    const { run } = setup(
      agentPrints(
        agentStart,
        "hello from a profile script\n",
        '{"v":1,"event":"nonsense"}\n',
        ready,
        resultOk,
      ),
    );
    const result = await run();
    expect(result.status).toBe("ok");
    expect(result.warnings).toEqual([
      { code: "agent_noise", message: "2 line(s) of the agent's output were not events" },
    ]);
  });

  it("passes legacy_host_key_algorithms on, and reports ignored known_hosts lines without making the host partial", async () => {
    const ignored = "known_hosts line /kh:1 ignored: key type sk-ssh-ed25519@openssh.com is not supported";
    for (const legacy of [false, true]) {
      const { harness, run } = setup(agentPrints(agentStart, resultOk), {
        host: { legacy_host_key_algorithms: legacy },
        hostKeyWarnings: [ignored],
      });
      const result = await run();
      expect(harness.targets.map((t) => t.legacyHostKeyAlgorithms)).toEqual([legacy]);
      expect(result.status).toBe("ok");
      expect(result.warnings).toEqual([{ code: "known_hosts_line_ignored", message: ignored }]);
    }
  });

  it("a missing result fails the host with the stderr tail", async () => {
    const { harness, run } = setup(async (channel) => {
      channel.stdout(ready);
      await channel.until(() => channel.gotPayload());
      channel.stdout(agentStart);
      channel.stderr("rlvm-agent: something broke\nrlvm-agent: giving up\n");
      channel.exit({ code: 3, signal: null });
    });
    const result = await run();
    expect(result.status).toBe("failed");
    expect(result.error).toMatchObject({
      code: "agent_failed",
      message:
        "the agent ended without a result (exit 3): rlvm-agent: something broke | rlvm-agent: giving up",
    });
    expect(harness.progress.filter((p) => p.step === "log").map((p) => p.detail)).toEqual([
      "rlvm-agent: something broke",
      "rlvm-agent: giving up",
    ]);
  });

  it("a channel that closes without an exit status is a lost connection", async () => {
    const { run } = setup(async (channel) => {
      channel.stdout(ready);
      await channel.until(() => channel.gotPayload());
      channel.stdout(agentStart);
      channel.exit(null);
    });
    const result = await run();
    expect(result).toMatchObject({
      status: "failed",
      error: { code: "connection_lost", message: "the connection was lost while the agent ran" },
    });
  });

  it("a remote session killed by a signal is a lost connection, naming the signal", async () => {
    const { run } = setup((channel) => channel.exit({ code: null, signal: "KILL" }));
    const result = await run();
    expect(result.error).toMatchObject({
      code: "connection_lost",
      message: "the connection was lost while the agent ran (the remote session ended by SIGKILL)",
    });
  });

  it("a second result is a protocol error, and stops the agent", async () => {
    const { harness, run } = setup(agentPrints(agentStart, resultOk, resultOk));
    const result = await run();
    expect(result).toMatchObject({
      status: "failed",
      error: { code: "agent_protocol", message: "the agent sent more than one result" },
    });
    expect(harness.channels[0]?.stdinClosed).toBe(true);
  });

  it("an event that breaks the protocol (a code the contract does not know) fails the host, unlike noise", async () => {
    const unknownCode = `${JSON.stringify({ v: PROTOCOL_VERSION, event: "result", code: "made_up", message: "m" })}\n`;
    const { run } = setup(agentPrints(agentStart, "some noise\n", unknownCode, resultOk));
    const result = await run();
    expect(result).toMatchObject({
      status: "failed",
      error: {
        code: "agent_protocol",
        message: expect.stringMatching(/^the agent sent an invalid result event \(code: /),
      },
    });
  });

  it("a failed result is decided by the host outcome", async () => {
    const failed = line({ event: "result", code: "locked", message: "already running" });
    const { run } = setup(agentPrints(agentStart, failed));
    const result = await run();
    expect(result).toMatchObject({ status: "failed", error: { code: "locked", message: "already running" } });
  });

  it("the bootstrap's checksum exit is agent_checksum", async () => {
    const { run } = setup(async (channel) => {
      channel.stdout(ready);
      await channel.until(() => channel.gotPayload());
      channel.stderr("rlvm-fleet: the agent's sha256 does not match; refusing to run it\n");
      channel.exit({ code: 98, signal: null });
    });
    const result = await run();
    expect(result).toMatchObject({ status: "failed", error: { code: "agent_checksum" } });
  });

  it("the bootstrap's exit for input that ended before the agent is diagnosed", async () => {
    const { run } = setup((channel) => {
      channel.stderr("rlvm-fleet: stdin ended before the agent\n");
      channel.exit({ code: 99, signal: null });
    });
    const result = await run();
    expect(result.error).toMatchObject({
      code: "agent_failed",
      message: "the bootstrap's stdin ended before the agent arrived; nothing ran",
    });
  });

  it("an exec the server refuses is a lost connection", async () => {
    const { run } = setup(() => {}, {
      exec: () => Promise.reject(new Error("Unable to exec")),
    });
    const result = await run();
    expect(result.error).toMatchObject({
      code: "connection_lost",
      message: "could not start the agent: Unable to exec",
    });
  });
});

describe("runHost and sudo", () => {
  it("sends the password once, only after sudo's prompt, and the payload after the ready line", async () => {
    let inputBeforePrompt: string | null = null;
    let inputBeforeReady: string | null = null;
    const { harness, run } = setup(
      async (channel) => {
        await new Promise((r) => setTimeout(r, 20));
        inputBeforePrompt = channel.input();
        channel.stderr(channel.prompt());
        await channel.until(() => channel.written.length > 0);
        inputBeforeReady = channel.input();
        // A tool on the host echoing the password must not show it.
        channel.stderr(`\nsomething printed ${PASSWORD}\n`);
        channel.stdout(ready);
        await channel.until(() => channel.gotPayload());
        channel.stdout(agentStart + resultOk);
        await channel.until(() => channel.stdinClosed);
        channel.exit({ code: 0, signal: null });
      },
      { host: withPassword },
    );
    const result = await run();
    expect(result.status).toBe("ok");
    expect(harness.commands[0]).toMatch(
      /^sudo -S -k -p '\[rlvm-fleet sudo password [0-9a-f]{16}\]' -- bash -c /,
    );
    expect(inputBeforePrompt).toBe("");
    expect(inputBeforeReady).toBe(`${PASSWORD}\n`);
    const input = harness.channels[0]?.input() ?? "";
    expect(input.startsWith(`${PASSWORD}\nRLVM-FLEET-AGENT ${RUN_ID}\n`)).toBe(true);
    expect(input.split(PASSWORD)).toHaveLength(2);
    const logs = harness.progress.filter((p) => p.step === "log").map((p) => p.detail);
    expect(logs).toEqual(["something printed ***"]);
  });

  it("answers a prompt that arrives together with the exec's reply", async () => {
    const { harness, run } = setup(
      async (channel) => {
        await channel.until(() => channel.written.length > 0);
        channel.stdout(ready);
        await channel.until(() => channel.gotPayload());
        channel.stdout(agentStart + resultOk);
        await channel.until(() => channel.stdinClosed);
        channel.exit({ code: 0, signal: null });
      },
      { host: withPassword, early: (channel) => channel.stderr(channel.prompt()) },
    );
    const result = await run();
    expect(result.status).toBe("ok");
    expect(harness.channels[0]?.input().startsWith(`${PASSWORD}\nRLVM-FLEET-AGENT ${RUN_ID}\n`)).toBe(true);
  });

  it("a second prompt means a wrong password: never sent twice, the run stops", async () => {
    const { harness, run } = setup(
      async (channel) => {
        channel.stderr(channel.prompt());
        await channel.until(() => channel.written.length > 0);
        channel.stderr(`Sorry, try again.\n${channel.prompt()}`);
        await channel.until(() => channel.stdinClosed);
        channel.stderr("sudo: no password was provided\n");
        channel.exit({ code: 1, signal: null });
      },
      { host: withPassword },
    );
    const result = await run();
    expect(result).toMatchObject({ status: "failed", error: { code: "sudo_password_wrong" } });
    expect(harness.channels[0]?.written).toEqual([`${PASSWORD}\n`]);
  });

  it("the prompt is new for every run", async () => {
    const commands = await Promise.all(
      [0, 1].map(async () => {
        const { harness, run } = setup(agentPrints(agentStart, resultOk), { host: withPassword });
        await run();
        return harness.commands[0] ?? "";
      }),
    );
    const [first, second] = commands.map((command) => /-p '([^']*)'/.exec(command)?.[1]);
    expect(first).toMatch(/^\[rlvm-fleet sudo password [0-9a-f]{16}\]$/);
    expect(second).toMatch(/^\[rlvm-fleet sudo password [0-9a-f]{16}\]$/);
    expect(first).not.toBe(second);
  });

  it("after the ready line, the prompt's text on stderr is only text: no password written, no refusal", async () => {
    const { harness, run } = setup(
      async (channel) => {
        channel.stderr(channel.prompt());
        await channel.until(() => channel.written.length > 0);
        channel.stdout(ready);
        await channel.until(() => channel.gotPayload());
        // A backend error (or a hostile host) repeating the prompt, once the agent runs.
        channel.stderr(`restic: ${channel.prompt()}\n`);
        channel.stdout(agentStart);
        channel.stderr(`${channel.prompt()}\n`);
        channel.stdout(resultOk);
        await channel.until(() => channel.stdinClosed);
        channel.exit({ code: 0, signal: null });
      },
      { host: withPassword },
    );
    const result = await run();
    expect(result.status).toBe("ok");
    const channel = harness.channels[0];
    expect(channel?.input().split(PASSWORD)).toHaveLength(2);
    expect(channel?.input().startsWith(`${PASSWORD}\nRLVM-FLEET-AGENT ${RUN_ID}\n`)).toBe(true);
    const logs = harness.progress.filter((p) => p.step === "log").map((p) => p.detail);
    expect(logs).toEqual([`restic: ${channel?.prompt()}`, channel?.prompt()]);
  });

  it("after the ready line, sudo is not blamed for how the agent ends", async () => {
    const { run } = setup(
      async (channel) => {
        channel.stderr(channel.prompt());
        await channel.until(() => channel.written.length > 0);
        channel.stdout(ready);
        await channel.until(() => channel.gotPayload());
        channel.stdout(agentStart);
        channel.stderr("restic: Sorry, try again. a password is required\n");
        channel.exit({ code: 1, signal: null });
      },
      { host: withPassword },
    );
    const result = await run();
    expect(result.error).toMatchObject({
      code: "agent_failed",
      message: "the agent ended without a result (exit 1): restic: Sorry, try again. a password is required",
    });
  });

  it("sudo's answer without a password configured is sudo_password_required", async () => {
    const { harness, run } = setup((channel) => {
      channel.stderr("sudo: a password is required\n");
      channel.exit({ code: 1, signal: null });
    });
    const result = await run();
    expect(result).toMatchObject({ status: "failed", error: { code: "sudo_password_required" } });
    expect(result.error?.hint).toMatch(/become_password_file/);
    expect(harness.channels[0]?.input()).not.toContain(PASSWORD);
  });
});

describe("runHost stopping the agent", () => {
  /** An agent that, once its stdin closes, cleans up, reports and exits, as the real one does. */
  const stoppableAgent: HostScript = async (channel) => {
    channel.stdout(ready);
    await channel.until(() => channel.gotPayload());
    channel.stdout(agentStart);
    await channel.until(() => channel.stdinClosed);
    channel.stdout(line({ event: "warning", code: "stopped", message: "cleaned up after a stop" }));
    channel.stdout(line({ event: "result", code: "agent_interrupted", message: "stopped" }));
    channel.exit({ code: 1, signal: null });
  };

  it("run_timeout closes the agent's stdin, keeps its last events and reports a timeout", async () => {
    const { harness, run } = setup(stoppableAgent, { host: { run_timeout_s: 0.05 } });
    const result = await run();
    expect(result).toMatchObject({
      status: "failed",
      error: {
        code: "timeout",
        message: "the run did not finish within run_timeout (0.05 s); the agent was stopped",
      },
      warnings: [{ code: "stopped", message: "cleaned up after a stop" }],
    });
    expect(harness.channels[0]?.closedByController).toBe(false);
  });

  it("abort closes the agent's stdin and reports the host interrupted", async () => {
    const abort = new AbortController();
    const { harness, run } = setup(
      async (channel) => {
        await stoppableAgent(channel);
      },
      { ctx: { signal: abort.signal } },
    );
    const running = run();
    await vi.waitFor(() => expect(harness.progress.some((p) => p.detail?.startsWith("agent "))).toBe(true));
    abort.abort();
    const result = await running;
    expect(result).toMatchObject({ status: "failed", error: { code: "interrupted" } });
    expect(harness.channels[0]?.stdinClosed).toBe(true);
  });

  it("an agent that does not finish within the grace period has its channel closed", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const abort = new AbortController();
    const { harness, run } = setup(
      async (channel) => {
        channel.stdout(ready);
        await channel.until(() => channel.gotPayload());
        channel.stdout(agentStart);
        // Ignores the closed stdin: only the controller's close ends it.
      },
      { ctx: { signal: abort.signal } },
    );
    const running = run();
    await vi.waitFor(() => expect(harness.channels[0]?.gotPayload()).toBe(true));
    abort.abort();
    expect(harness.channels[0]?.stdinClosed).toBe(true);
    await vi.advanceTimersByTimeAsync(59_000);
    expect(harness.channels[0]?.closedByController).toBe(false);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(harness.channels[0]?.closedByController).toBe(true);
    const result = await running;
    expect(result).toMatchObject({ status: "failed", error: { code: "interrupted" } });
  });

  /** An agent that ignores its closed stdin and the controller's close of its channel. */
  const deafAgent: HostScript = async (channel) => {
    channel.stdout(ready);
    await channel.until(() => channel.gotPayload());
    channel.stdout(agentStart);
  };
  const fastStop = { stopGraceMs: 20, forceEndMs: 30 };

  it("run_timeout ends the run even if the host never closes the channel: the connection is destroyed", async () => {
    const { harness, run } = setup(deafAgent, {
      host: { run_timeout_s: 0.05 },
      ctx: { timing: fastStop },
      ignoresClose: true,
    });
    const started = Date.now();
    const result = await run();
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(result).toMatchObject({ status: "failed", error: { code: "timeout" } });
    expect(result.warnings).toContainEqual({
      code: "connection_destroyed",
      message:
        "the host did not end the agent's channel within 0.05 s of the stop; the connection was destroyed",
    });
    expect(harness.channels[0]?.stdinClosed).toBe(true);
    expect(harness.channels[0]?.closedByController).toBe(true);
    expect(harness.sessionDestroyed).toBe(1);
    expect(harness.progress.at(-1)).toMatchObject({ step: "done", status: "failed" });
  });

  it("an abort ends the run even if the host never closes the channel", async () => {
    const abort = new AbortController();
    const { harness, run } = setup(deafAgent, {
      ctx: { signal: abort.signal, timing: fastStop },
      ignoresClose: true,
    });
    const running = run();
    await vi.waitFor(() => expect(harness.progress.some((p) => p.detail?.startsWith("agent "))).toBe(true));
    abort.abort();
    const result = await running;
    expect(result).toMatchObject({ status: "failed", error: { code: "interrupted" } });
    expect(harness.sessionDestroyed).toBe(1);
  });

  it("with the default timing, a stopped run ends 60 s + 30 s after the stop at the latest", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const abort = new AbortController();
    const { harness, run } = setup(deafAgent, { ctx: { signal: abort.signal }, ignoresClose: true });
    let result: Awaited<ReturnType<typeof run>> | null = null;
    const running = run().then((r) => (result = r));
    await vi.waitFor(() => expect(harness.channels[0]?.gotPayload()).toBe(true));
    abort.abort();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(harness.channels[0]?.closedByController).toBe(true);
    await vi.advanceTimersByTimeAsync(29_000);
    expect(result).toBeNull();
    await vi.advanceTimersByTimeAsync(1_000);
    await running;
    expect(result).toMatchObject({ status: "failed", error: { code: "interrupted" } });
    expect(harness.sessionDestroyed).toBe(1);
  });

  it("an exec the host never answers ends at run_timeout too", async () => {
    const { harness, run } = setup(() => {}, {
      host: { run_timeout_s: 0.05 },
      ctx: { timing: fastStop },
      execGate: new Promise(() => {}),
    });
    const result = await run();
    expect(result).toMatchObject({ status: "failed", error: { code: "timeout" } });
    expect(harness.sessionDestroyed).toBe(1);
  });

  it("an abort while the exec is on its way stops the agent as soon as the channel opens", async () => {
    const abort = new AbortController();
    let open: () => void = () => {};
    const { harness, run } = setup(
      async (channel) => {
        await channel.until(() => channel.stdinClosed);
        channel.stderr("rlvm-fleet: stdin ended before the agent\n");
        channel.exit({ code: 99, signal: null });
      },
      { ctx: { signal: abort.signal }, execGate: new Promise((resolve) => (open = resolve)) },
    );
    const running = run();
    await vi.waitFor(() => expect(harness.commands).toHaveLength(1));
    abort.abort();
    open();
    const result = await running;
    expect(result).toMatchObject({ status: "failed", error: { code: "interrupted" } });
    expect(harness.channels[0]?.written).toEqual([]);
  });

  it("an abort while connecting skips the host: nothing runs", async () => {
    const abort = new AbortController();
    const { harness, run } = setup(agentPrints(agentStart, resultOk), {
      ctx: {
        signal: abort.signal,
        connect: async () => {
          abort.abort();
          return {
            hostKeyNote: null,
            exec: () => Promise.reject(new Error("must not exec")),
            close: () => void harness.sessionClosed++,
            destroy: () => void harness.sessionDestroyed++,
            closed: new Promise(() => {}),
          };
        },
      },
    });
    const result = await run();
    expect(result).toMatchObject({ status: "skipped", error: null });
    expect(harness.sessionClosed).toBe(1);
  });
});

describe("runHost: a host's stderr costs bounded memory", () => {
  it("50 MB of stderr without a newline: the line is cut, the run ends normally", async () => {
    const chunk = "x".repeat(64 * 1024);
    const { harness, run } = setup(async (channel) => {
      channel.stdout(ready);
      await channel.until(() => channel.gotPayload());
      channel.stdout(agentStart);
      for (let sent = 0; sent < 50 * 1024 * 1024; sent += chunk.length) channel.stderr(chunk);
      channel.stderr("\nrlvm-agent: after the flood\n");
      channel.stdout(resultOk);
      await channel.until(() => channel.stdinClosed);
      channel.exit({ code: 0, signal: null });
    });
    const started = Date.now();
    const result = await run();
    expect(result).toMatchObject({ status: "ok", error: null });
    const logs = harness.progress.filter((p) => p.step === "log").map((p) => p.detail ?? "");
    expect(logs).toEqual([
      `${"x".repeat(STDERR_LINE_MAX)} … (line cut at ${STDERR_LINE_MAX} characters)`,
      "rlvm-agent: after the flood",
    ]);
    // Linear, not quadratic: re-splitting a growing buffer on every chunk took minutes here.
    expect(Date.now() - started).toBeLessThan(5_000);
  }, 30_000);

  it("a cut line is masked before it is cut: a secret across the cut leaks no piece", async () => {
    const { harness, run } = setup(
      async (channel) => {
        channel.stdout(ready);
        await channel.until(() => channel.gotPayload());
        channel.stdout(agentStart);
        // The password across the cut; then masked early in a line (which shortens it) and again
        // where the kept part ends, so that its first characters would fall before the cut.
        channel.stderr(`${"y".repeat(STDERR_LINE_MAX - 4)}${PASSWORD}${"z".repeat(10_000)}\n`);
        channel.stderr(`${PASSWORD}${"y".repeat(STDERR_LINE_MAX - 4)}${PASSWORD}${"z".repeat(10_000)}\n`);
        channel.stdout(resultOk);
        await channel.until(() => channel.stdinClosed);
        channel.exit({ code: 0, signal: null });
      },
      { host: withPassword },
    );
    const result = await run();
    expect(result.status).toBe("ok");
    const logs = harness.progress.filter((p) => p.step === "log").map((p) => p.detail ?? "");
    expect(logs).toHaveLength(2);
    for (const log of logs) {
      expect(log.length).toBeLessThanOrEqual(STDERR_LINE_MAX + 40);
      expect(log).toMatch(/ … \(line cut at \d+ characters\)$/);
      expect(log).not.toContain(PASSWORD.slice(0, 3));
    }
    const cut = ` … (line cut at ${STDERR_LINE_MAX} characters)`;
    expect(logs).toEqual([
      `${"y".repeat(STDERR_LINE_MAX - 4)}***z${cut}`,
      `***${"y".repeat(STDERR_LINE_MAX - 4)}${cut}`,
    ]);
  });

  it("the stderr tail in an error is masked before it is cut: a secret across its start leaks no piece", async () => {
    const { run } = setup(
      async (channel) => {
        channel.stdout(ready);
        await channel.until(() => channel.gotPayload());
        channel.stdout(agentStart);
        channel.stderr(stderr);
        channel.exit({ code: 3, signal: null });
      },
      { host: withPassword },
    );
    // 4 characters more than the 4096 of the tail: a cut before masking would leave "et-pw".
    let stderr = `${PASSWORD}${"x".repeat(4096 - 6)}\n`;
    let result = await run();
    expect(result.error?.code).toBe("agent_failed");
    expect(result.error?.message).toMatch(/^the agent ended without a result \(exit 3\): \*\*\*x+$/);
    expect(result.error?.message).not.toContain(PASSWORD.slice(-5));
    // The secret begins before even the masking margin, and masking shortens what follows: its end
    // is dropped, not shown.
    stderr = `${PASSWORD.repeat(4)}${"y".repeat(4096 - 5 - 3 * PASSWORD.length + PASSWORD.length - 1)}\n`;
    result = await run();
    expect(result.error?.message).toMatch(/^the agent ended without a result \(exit 3\): \*{9}y+$/);
    expect(result.error?.message).not.toContain(PASSWORD.slice(-3));
  });
});

describe('runHost with agent = "installed"', () => {
  /** What installedCheckArgv's script prints on a host where the shipped agent is installed. */
  const installedOutput = (sha = AGENT.sha256, agentLine = "0 755 regular file") =>
    `${[agentLine, ...Array(5).fill("0 755 directory")].join("\n")}\n${sha}  ${INSTALLED_AGENT}\n`;
  const installedHost =
    (output: string, then: HostScript): HostScript =>
    async (channel) => {
      if (!channel.command.includes("rlvm-fleet-check")) return then(channel);
      channel.stdout(output);
      await channel.until(() => channel.stdinClosed);
      channel.exit({ code: 0, signal: null });
    };

  it("checks the installed file as the login user, then runs it through sudo -n; nothing is uploaded", async () => {
    const { harness, run } = setup(installedHost(installedOutput(), agentPrints(agentStart, resultOk)), {
      host: { agent: "installed" },
    });
    const result = await run();
    expect(result).toMatchObject({ status: "ok", error: null });
    expect(harness.commands).toEqual([
      expect.stringMatching(/^bash -c [^]*rlvm-fleet-check \/usr\/local\/libexec\/rlvm-fleet\/rlvm-agent-/),
      `sudo -n -- ${INSTALLED_AGENT} installed run1 vault1`,
    ]);
    expect(harness.commands[0]).not.toMatch(/sudo/);
    const agentChannel = harness.channels[1];
    expect(agentChannel?.input()).toMatch(/^RLVM-FLEET-AGENT run1\nplan 2\n/);
    expect(agentChannel?.input()).not.toContain("echo agent");
  });

  it.each([
    [
      "a tampered file",
      installedOutput("f".repeat(64)),
      /is not this controller's \(sha256 f{64}, expected 0{64}\); it was not run/,
    ],
    [
      "a missing file",
      `missing\n${Array(5).fill("0 755 directory").join("\n")}\nunreadable\n`,
      /rlvm-agent-\S+ is missing/,
    ],
    [
      "a file others may write to",
      installedOutput(AGENT.sha256, "0 775 regular file"),
      /has mode 775: group or others may write to it/,
    ],
    [
      "a file the login user owns",
      installedOutput(AGENT.sha256, "1000 755 regular file"),
      /is owned by uid 1000, not root/,
    ],
    [
      "a symlink",
      installedOutput(AGENT.sha256, "0 777 symbolic link"),
      /is a symbolic link, not a regular file/,
    ],
  ])("refuses %s before anything runs as root", async (_, output, message) => {
    const { harness, run } = setup(installedHost(output, agentPrints(agentStart, resultOk)), {
      host: { agent: "installed" },
    });
    const result = await run();
    expect(result.status).toBe("failed");
    expect(result.error?.code).toBe("agent_not_installed");
    expect(result.error?.message).toMatch(message);
    expect(result.error?.hint).toMatch(/install-agent/);
    expect(harness.commands).toHaveLength(1);
  });

  it('install-agent uploads through the bootstrap even where agent = "installed"', async () => {
    const { harness, run } = setup(agentPrints(agentStart, resultOk), {
      host: { agent: "installed" },
      ctx: {
        command: "install",
        install: () => ({ user: "backup", sudo: "nopasswd", anyRepository: false }),
      },
    });
    const result = await run();
    expect(result.status).toBe("ok");
    expect(harness.commands).toEqual([expect.stringMatching(/^sudo -n -- bash -c /)]);
    expect(harness.channels[0]?.input()).toContain("echo agent\n");
    expect(harness.channels[0]?.input()).toMatch(/\ninstall backup nopasswd\nallow_repository [0-9a-f]{64} /);
  });
});
