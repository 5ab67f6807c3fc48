// --shard K/N: shards of a selection are disjoint, cover it, and do not depend on the inventory's
// order; an empty shard is a clean run with a warning; a bad K/N is a usage error (exit 2).
import { execSync } from "node:child_process";
import { createHash, randomInt } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../../src/demo/free-port.js";
import { UsageError } from "../../../src/errors.js";
import { buildPlan } from "../../../src/plan/build-plan.js";
import { parseShard, selectShard, shardOf } from "../../../src/plan/shard.js";
import { reportSchema } from "../../../src/report/report-schema.js";
import { runCli, writeTree } from "../../helpers/run-cli.js";

const CONFIG = `
[logical_volume_nonroot.data]
vg_name = "vg0"
lv_name = "lv_data"
snapshot_size = "2G"
backup_source_path = "/data"

[[logical_volume_nonroot.data.repositories]]
repo_path = "/srv/backup/data"
password_file = "/etc/rlvm/pw"
`;

function inventory(names: readonly string[], port = 22): string {
  return [
    `[defaults]\nuser = "rlvm"\nconfig = "host.toml"\nknown_hosts = "known_hosts"\nconnect_timeout = 5\nconnect_retries = 0\n`,
    ...names.map((name) => `[hosts."${name}"]\naddress = "127.0.0.1"\nport = ${port}\n`),
  ].join("\n");
}

function randomName(): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-.";
  return `h${Array.from({ length: randomInt(1, 12) }, () => alphabet[randomInt(alphabet.length)]).join("")}`;
}

function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe("shardOf", () => {
  it("is sha256 of the name as a big-endian integer, mod N, plus 1 (what the README's one-liner computes)", () => {
    for (const name of ["web1", "db-2.example.com", "ünïcode", ""]) {
      const digest = createHash("sha256").update(name, "utf8").digest("hex");
      for (const n of [1, 2, 3, 7, 1000]) {
        expect(shardOf(name, n)).toBe(Number(BigInt(`0x${digest}`) % BigInt(n)) + 1);
      }
    }
    // Pinned, so that a change of the function (which would move hosts between machines) fails here.
    expect(["web1", "web2", "web3", "db1", "db2"].map((n) => shardOf(n, 3))).toEqual([1, 3, 3, 1, 1]);
  });

  it("agrees with the README's one-line check of a host's shard", () => {
    const readme = readFileSync(join(import.meta.dirname, "../../../README.md"), "utf8");
    const line = /^python3 -c .*hashlib.*$/m.exec(readme)?.[0] ?? "";
    expect(line).toContain('b"web1"');
    expect(line).toContain("% 3 + 1");
    expect(Number(execSync(line, { encoding: "utf8" }).trim())).toBe(shardOf("web1", 3));
  });

  it("spreads hosts over every shard", () => {
    const names = Array.from({ length: 3000 }, (_, i) => `host-${i}`);
    const sizes = [1, 2, 3, 4, 5].map((k) => selectShard(names, { k, n: 5 }, (n) => n).length);
    for (const size of sizes) expect(size).toBeGreaterThan(500);
  });
});

describe("parseShard", () => {
  it.each([
    ["1/1", { k: 1, n: 1 }],
    ["2/5", { k: 2, n: 5 }],
    ["5/5", { k: 5, n: 5 }],
  ])("reads %s", (text, shard) => expect(parseShard(text)).toEqual(shard));

  it.each([
    ["0/3", "K must be from 1 to 3"],
    ["4/3", "K must be from 1 to 3"],
    ["1/0", "N must be at least 1"],
    ["0/0", "N must be at least 1"],
    ["-1/3", "must be K/N"],
    ["2", "must be K/N"],
    ["1/3/4", "must be K/N"],
    ["a/b", "must be K/N"],
    ["1.5/3", "must be K/N"],
    ["", "must be K/N"],
    ["99999999999999999999/1", "must be K/N"],
  ])("refuses %j", (text, message) => {
    expect(() => parseShard(text)).toThrow(UsageError);
    expect(() => parseShard(text)).toThrow(message);
  });
});

describe("buildPlan with a shard, over random inventories", () => {
  it("gives disjoint shards whose union is the selection, whatever the inventory's order", () => {
    for (let round = 0; round < 20; round++) {
      const names = [...new Set(Array.from({ length: randomInt(1, 40) }, randomName))];
      const n = randomInt(1, 8);
      const orders = [names, shuffled(names), shuffled(names)];
      const shardsByOrder = orders.map((order) => {
        const tree = writeTree({ "host.toml": CONFIG, "inventory.toml": inventory(order) });
        try {
          const file = join(tree.dir, "inventory.toml");
          return Array.from({ length: n }, (_, i) =>
            buildPlan(file, { shard: { k: i + 1, n } }).hosts.map((h) => h.host.name),
          );
        } finally {
          tree.cleanup();
        }
      });
      const [first, ...others] = shardsByOrder.map((shards) => shards.map((s) => [...s].sort()));
      for (const other of others) expect(other).toEqual(first);
      const all = first!.flat();
      expect(new Set(all).size).toBe(all.length); // disjoint
      expect([...all].sort()).toEqual([...names].sort()); // union = selection
    }
  });

  it("shards what --limit selected, after it", () => {
    const names = Array.from({ length: 12 }, (_, i) => `web${i}`);
    const tree = writeTree({ "host.toml": CONFIG, "inventory.toml": inventory(names) });
    try {
      const file = join(tree.dir, "inventory.toml");
      const limit = "web1*";
      const selected = buildPlan(file, { limit }).hosts.map((h) => h.host.name);
      const union = [1, 2].flatMap((k) =>
        buildPlan(file, { limit, shard: { k, n: 2 } }).hosts.map((h) => h.host.name),
      );
      expect(union.sort()).toEqual(selected.sort());
      expect(selected).toEqual(["web1", "web10", "web11"]);
    } finally {
      tree.cleanup();
    }
  });

  it("warns, and is no error, when a shard holds none of the selected hosts", () => {
    const tree = writeTree({ "host.toml": CONFIG, "inventory.toml": inventory(["web1", "db1"]) });
    try {
      const file = join(tree.dir, "inventory.toml");
      // web1 and db1 are both in shard 1 of 3 (pinned above).
      expect(buildPlan(file, { shard: { k: 1, n: 3 } }).warnings).toEqual([]);
      const empty = buildPlan(file, { shard: { k: 2, n: 3 } });
      expect(empty.hosts).toEqual([]);
      expect(empty.warnings).toEqual([
        {
          code: "empty_shard",
          message: "shard 2/3 holds none of the 2 selected hosts: nothing to run here",
        },
      ]);
    } finally {
      tree.cleanup();
    }
  });
});

describe("--shard through the CLI", () => {
  let tree: ReturnType<typeof writeTree>;
  beforeAll(async () => {
    // Nothing listens on this port: a host that runs is unreachable (no sshd needed).
    tree = writeTree({ "host.toml": CONFIG, "inventory.toml": inventory(["web1", "db1"], await freePort()) });
  });
  afterAll(() => tree.cleanup());

  it.each(["ping", "check", "backup", "prune", "status", "install-agent", "plan"])(
    "%s refuses a bad K/N with exit 2 and one message, before anything connects",
    async (command) => {
      for (const [shard, message] of [
        ["4/3", "--shard 4/3: K must be from 1 to 3"],
        ["0/3", "--shard 0/3: K must be from 1 to 3"],
        ["1/0", "--shard 1/0: N must be at least 1"],
        ["two/three", '--shard must be K/N, such as 2/5, got "two/three"'],
      ] as const) {
        const result = await runCli([command, "--inventory", "inventory.toml", "--shard", shard], {
          cwd: tree.dir,
        });
        expect(result.code).toBe(2);
        expect(result.stdout).toBe("");
        expect(result.stderr).toContain(message);
        expect(result.stderr).not.toMatch(/unreachable|at \w+ \(/); // nothing ran, no stack trace
      }
    },
  );

  it("runs an empty shard cleanly: exit 0, a warning, and the report says why no host ran", async () => {
    const result = await runCli(
      ["ping", "--inventory", "inventory.toml", "--shard", "3/3", "--format", "json", "--quiet"],
      { cwd: tree.dir },
    );
    expect(result.code).toBe(0);
    expect(result.stderr).toBe(
      "rlvm-fleet: warning: shard 3/3 holds none of the 2 selected hosts: nothing to run here\n",
    );
    const report = reportSchema.parse(JSON.parse(result.stdout));
    expect(report.exit_code).toBe(0);
    expect(report.hosts).toEqual([]);
    expect(report.options.shard).toEqual({ k: 3, n: 3 });
    expect(report.warnings).toEqual([
      { code: "empty_shard", message: "shard 3/3 holds none of the 2 selected hosts: nothing to run here" },
    ]);
    const table = await runCli(["ping", "--inventory", "inventory.toml", "--shard", "3/3", "--quiet"], {
      cwd: tree.dir,
    });
    expect(table.code).toBe(0);
    expect(table.stdout).toContain("warning: shard 3/3 holds none of the 2 selected hosts");
    expect(table.stdout).toMatch(/RECAP ping 0 hosts: .* exit 0/);
  });

  it("runs only the shard's hosts, and records the shard in the report's options", async () => {
    const result = await runCli(
      ["ping", "--inventory", "inventory.toml", "--shard", "1/3", "--format", "json", "--quiet"],
      { cwd: tree.dir },
    );
    const report = reportSchema.parse(JSON.parse(result.stdout));
    expect(report.hosts.map((h) => [h.name, h.status])).toEqual([
      ["web1", "unreachable"],
      ["db1", "unreachable"],
    ]);
    expect(report.options.shard).toEqual({ k: 1, n: 3 });
    expect(report.warnings).toEqual([]);
    expect(result.code).toBe(4);
  });

  it("plan --shard shows the shard's hosts", async () => {
    const one = await runCli(
      ["plan", "--inventory", "inventory.toml", "--shard", "1/3", "--format", "json"],
      {
        cwd: tree.dir,
      },
    );
    expect(one.code).toBe(0);
    expect((JSON.parse(one.stdout) as { hosts: { name: string }[] }).hosts.map((h) => h.name)).toEqual([
      "web1",
      "db1",
    ]);
    const empty = await runCli(["plan", "--inventory", "inventory.toml", "--shard", "2/3"], {
      cwd: tree.dir,
    });
    expect(empty.code).toBe(0);
    expect(empty.stdout).toBe("no host selected\n");
    expect(empty.stderr).toContain("warning: shard 2/3 holds none of the 2 selected hosts");
  });
});
