// The jump pool with a fake connect: one connection per bastion shared by every host, chains, and
// how a bastion's failures become the hosts' codes.
import { PassThrough, type Duplex } from "node:stream";
import { describe, expect, it } from "vitest";
import { HostError } from "../../../src/errors.js";
import type { JumpHop } from "../../../src/inventory/jump-hosts.js";
import type { LocalFiles } from "../../../src/run/local-files.js";
import { createJumpPool } from "../../../src/transport/jump-pool.js";
import type { ConnectTarget, SshSession } from "../../../src/transport/ssh-connection.js";

const files: LocalFiles = { privateKey: () => null, secret: () => null, knownHosts: () => [] };

const hop = (name: string, address: string): JumpHop => ({
  name,
  address,
  user: "jump",
  port: 22,
  identity_file: null,
  identity_passphrase_file: null,
  known_hosts: "/kh",
  host_key_policy: "strict",
  legacy_host_key_algorithms: false,
  connect_timeout_s: 5,
  connect_retries: 0,
  keepalive_interval_s: 0,
});

interface Fake {
  targets: ConnectTarget[];
  forwards: string[];
  end: (address: string) => void;
  connect: (target: ConnectTarget) => Promise<SshSession>;
}

/** A connect that records every connection and forward; `fail` decides per address. */
function fakeConnect(
  fail: (target: ConnectTarget) => Error | null = () => null,
  refuse = new Set<string>(),
): Fake {
  const targets: ConnectTarget[] = [];
  const forwards: string[] = [];
  const enders = new Map<string, () => void>();
  return {
    targets,
    forwards,
    end: (address) => enders.get(address)?.(),
    connect: async (target) => {
      targets.push(target);
      if (target.openSock !== undefined) await target.openSock();
      const error = fail(target);
      if (error !== null) throw error;
      let ended = () => {};
      const closed = new Promise<void>((resolve) => (ended = resolve));
      enders.set(target.address, ended);
      return {
        hostKeyNote: null,
        exec: () => Promise.reject(new Error("no exec")),
        close: ended,
        destroy: ended,
        closed,
        forwardOut: (address: string, port: number): Promise<Duplex> => {
          forwards.push(`${target.address}>${address}:${port}`);
          return refuse.has(address)
            ? Promise.reject(new Error("(SSH) Channel open failure: Connection refused"))
            : Promise.resolve(new PassThrough());
        },
      };
    },
  };
}

describe("createJumpPool", () => {
  it("opens ONE connection per bastion for every host behind it, and chains through the next hop", async () => {
    const fake = fakeConnect();
    const pool = createJumpPool(files, null, fake.connect);
    const chain = [hop("outer", "10.0.0.1"), hop("inner", "10.0.0.2")];
    await Promise.all(Array.from({ length: 20 }, (_, i) => pool.open(chain, `10.1.0.${i + 1}`, 22)));
    // inner's connect opens its stream through outer, so inner's is called first.
    expect(fake.targets.map((t) => t.address)).toEqual(["10.0.0.2", "10.0.0.1"]);
    expect(pool.opened).toBe(2);
    expect(fake.forwards[0]).toBe("10.0.0.1>10.0.0.2:22");
    expect(fake.forwards.filter((f) => f.startsWith("10.0.0.2>"))).toHaveLength(20);
    // Each hop connects with its own user and known_hosts, like a target.
    expect(fake.targets[1]).toMatchObject({ user: "jump", knownHostsFile: "/kh", hostKeyPolicy: "strict" });
    pool.close();
  });

  it("a bastion it cannot reach or whose key is refused: bastion_unreachable (unreachable), naming it", async () => {
    const changed = new HostError(
      "host_key_changed",
      "HOST KEY CHANGED: the host offered ssh-ed25519 SHA256:x",
      "verify",
    );
    const fake = fakeConnect(() => changed);
    const pool = createJumpPool(files, null, fake.connect);
    const chain = [hop("bastion", "10.0.0.1")];
    const error = (await pool.open(chain, "10.1.0.1", 22).catch((e: unknown) => e)) as HostError;
    expect(error).toMatchObject({ code: "bastion_unreachable", status: "unreachable", retryable: false });
    expect(error.message).toBe(
      'bastion "bastion" (jump@10.0.0.1:22): HOST KEY CHANGED: the host offered ssh-ed25519 SHA256:x',
    );
    // A key problem is not retried by the next host.
    await pool.open(chain, "10.1.0.2", 22).catch(() => {});
    expect(fake.targets).toHaveLength(1);
  });

  it("after a network error a later host connects again", async () => {
    let down = true;
    const fake = fakeConnect(() => (down ? new HostError("refused", "connection refused", "h", true) : null));
    const pool = createJumpPool(files, null, fake.connect);
    const chain = [hop("bastion", "10.0.0.1")];
    await expect(pool.open(chain, "10.1.0.1", 22)).rejects.toMatchObject({ code: "bastion_unreachable" });
    down = false;
    await pool.open(chain, "10.1.0.2", 22);
    expect(fake.targets).toHaveLength(2);
  });

  it("a host the bastion cannot reach is refused (unreachable, retryable); a dropped bastion is bastion_lost", async () => {
    const fake = fakeConnect(() => null, new Set(["10.1.0.9"]));
    const pool = createJumpPool(files, null, fake.connect);
    const chain = [hop("bastion", "10.0.0.1")];
    await expect(pool.open(chain, "10.1.0.9", 22)).rejects.toMatchObject({
      code: "refused",
      status: "unreachable",
      retryable: true,
    });
    const opened = await pool.open(chain, "10.1.0.1", 22);
    expect(opened.lost()).toBeNull();
    fake.end("10.0.0.1");
    await new Promise((resolve) => setImmediate(resolve));
    expect(opened.lost()).toMatchObject({ code: "bastion_lost", status: "failed" });
    // The next host reconnects.
    await pool.open(chain, "10.1.0.2", 22);
    expect(fake.targets).toHaveLength(2);
  });
});
