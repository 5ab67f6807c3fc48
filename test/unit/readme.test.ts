// Every code block of the README that is a config or a command is validated here or run by a test:
// TOML blocks are loaded with the real schemas, rlvm-fleet command lines are checked against each
// command's --help, and the ones that make no connection are run. The restore commands are run by
// test/integration/restore.test.ts against a real backup.
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { mkdirSync } from "node:fs";
import { describe, expect, it, vi } from "vitest";
import { loadResticConfig } from "../../src/config/load-config.js";
import { EXIT_CODES } from "../../src/errors.js";
import { loadInventory } from "../../src/inventory/load-inventory.js";
import { buildPlan } from "../../src/plan/build-plan.js";
import { renderReportMetrics } from "../../src/cli/render/metrics.js";
import { commandLineProblems, rlvmFleetArgv } from "../helpers/command-lines.js";
import type { Report } from "../../src/report/report-schema.js";
import { hostResult, report } from "../helpers/report-fixture.js";
import { runCli, writeTree } from "../helpers/run-cli.js";
import { skipOrFail } from "../helpers/skip-or-fail.js";

const ROOT = join(import.meta.dirname, "../..");
const README = readFileSync(join(ROOT, "README.md"), "utf8");

interface Block {
  lang: string;
  body: string;
  section: string;
}

function codeBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  let section = "";
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? "";
    if (line.startsWith("## ")) section = line.slice(3);
    const fence = /^```(\w*)$/.exec(line);
    if (fence === null) continue;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== "```"; i++) body.push(lines[i] ?? "");
    blocks.push({ lang: fence[1] ?? "", body: body.join("\n"), section });
  }
  return blocks;
}

// Lines that are neither rlvm-fleet nor restore commands, and who runs them.
const RUN_ELSEWHERE: Record<string, string> = {
  "git clone https://example.invalid/rlvm-fleet.git && cd rlvm-fleet": "how a user gets the checkout",
  "npm ci": ".ci/run runs it on a clean clone",
  "npm test": ".ci/run runs it",
  "npm run demo": "test/integration/demo.test.ts runs the demo",
  "python3 -c 'import hashlib; print(int(hashlib.sha256(b\"web1\").hexdigest(), 16) % 3 + 1)'":
    "test/unit/plan/shard.test.ts runs it against --shard",
};

const blocks = codeBlocks(README);
const INVENTORY_SECTION = "Using your existing SSH config and Ansible inventory";
const shellLines = blocks
  .filter((b) => b.lang === "sh")
  .flatMap((b) => b.body.split("\n").map((line) => ({ line: line.trim(), section: b.section })))
  .filter((l) => l.line !== "" && !l.line.startsWith("#"));

/**
 * Beside an inventory block that names `ssh_config = "ssh_config"`: the README's sshconfig block that
 * follows it, with HOME (where `~` points) in the tree and the key file it names there.
 */
function writeSshConfigExample(dir: string, block: Block): void {
  const example = blocks.slice(blocks.indexOf(block)).find((b) => b.lang === "sshconfig");
  if (example === undefined)
    throw new Error("an ssh_config inventory example needs an sshconfig block after it");
  writeFileSync(join(dir, "ssh_config"), `${example.body}\n`);
  vi.stubEnv("HOME", dir);
  mkdirSync(join(dir, ".ssh"));
  writeFileSync(join(dir, ".ssh/backup_ed25519"), "key\n");
}

describe("README", () => {
  it("has its code blocks tagged, and only these kinds", () => {
    expect(blocks.length).toBeGreaterThan(8);
    for (const block of blocks) expect(["sh", "toml", "sshconfig", "text", "yaml", ""]).toContain(block.lang);
  });

  it("has Prometheus rule blocks (the only other YAML) that promtool accepts", (ctx) => {
    const yaml = blocks.filter((b) => b.lang === "yaml" && b.section !== INVENTORY_SECTION);
    expect(yaml.length).toBeGreaterThanOrEqual(1);
    const tree = writeTree({});
    try {
      for (const [i, block] of yaml.entries()) {
        const file = join(tree.dir, `rules-${i}.yml`);
        writeFileSync(file, `${block.body}\n`);
        const run = spawnSync("promtool", ["check", "rules", file], { encoding: "utf8" });
        const missing = (run.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT";
        skipOrFail(
          ctx,
          "unit",
          missing ? "promtool is not installed (Debian: apt-get install prometheus)" : undefined,
        );
        expect(run.status, `${run.stdout}${run.stderr}`).toBe(0);
      }
    } finally {
      tree.cleanup();
    }
  });

  it("names exactly the metrics --metrics writes", () => {
    const job = { name: "data", category: "lv_nonroot", status: "ok" as const, copies: [] };
    const latest = {
      repo: "/r",
      snapshot_id: "1a2b3c4d",
      time: "2025-01-01T00:00:00Z",
      age_s: 5,
      stale: false,
      error: null,
      error_code: null,
    };
    const withJob = (extra: object) =>
      hostResult("h", "failed", {
        error: { code: "stale", message: "m", hint: "h" },
        jobs: [{ ...job, snapshot: null, repos: [], prunes: [], latest: [], ...extra }],
      });
    const written = [
      report("backup", [
        withJob({
          snapshot: { name: "s", lifetime_ms: 1, cow_peak_percent: 1, overflowed: false },
          repos: [
            {
              repo: "/r",
              status: "ok",
              snapshot_id: "1a2b3c4d",
              files_new: 1,
              files_changed: 1,
              files_unmodified: 1,
              data_added: 1,
              data_added_packed: 1,
              duration_ms: 1,
              error: null,
              error_code: null,
            },
          ],
          copies: [{ from: "/r", to: "/c", status: "ok", duration_ms: 1, error: null, error_code: null }],
        }),
      ]),
      {
        ...report("prune", [
          withJob({
            prunes: [
              {
                repo: "/r",
                status: "ok",
                kept: 1,
                removed: 1,
                removed_ids: [],
                dry_run: false,
                error: null,
                error_code: null,
              },
            ],
          }),
        ]),
        repositories: [
          {
            id: "a".repeat(64),
            url: "/r",
            hosts: [{ host: "h", jobs: ["data"] }],
            actions: [
              { action: "prune", host: "h", for_host: null, status: "ok", duration_ms: 1, error: null },
            ],
            missing_forgets: [],
          },
        ],
      } satisfies Report,
      report("status", [withJob({ latest: [latest] })]),
      {
        ...report("verify", [
          withJob({
            restore: {
              repo: "/r",
              status: "ok",
              requested: 5,
              compared_with: "live",
              snapshot_id: "1a2b3c4d",
              candidates: 9,
              sampled: 5,
              matched: 5,
              changed_since_backup: 0,
              mismatched: 0,
              missing: 0,
              mismatch_paths: [],
              changed_paths: [],
              missing_paths: [],
              sampled_paths: [],
              duration_ms: 1,
              snapshot_held_ms: null,
              error: null,
            },
          }),
        ]),
        repositories: [
          {
            id: "a".repeat(64),
            url: "/r",
            hosts: [{ host: "h", jobs: ["data"] }],
            actions: [
              {
                action: "check",
                host: "h",
                for_host: null,
                status: "ok",
                duration_ms: 1,
                error: null,
                subset: "1/7",
              },
            ],
            missing_forgets: [],
          },
        ],
      } satisfies Report,
    ].flatMap((r) => [...renderReportMetrics(r).matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]));
    const named = [...README.matchAll(/\brlvm_fleet_[a-z_]+\b/g)].map((m) => m[0]);
    expect([...new Set(named)].sort()).toEqual([...new Set(written)].sort());
  });

  it("has an Ansible inventory example that loads (real ansible-inventory) as its table says", () => {
    const yaml = blocks.filter((b) => b.lang === "yaml" && b.section === INVENTORY_SECTION);
    expect(yaml).toHaveLength(1);
    const tree = writeTree({ "hosts.yml": `${yaml[0]?.body}\n` });
    try {
      const result = loadInventory(join(tree.dir, "hosts.yml"), { env: process.env });
      if (!result.ok) throw new Error(JSON.stringify(result.problems));
      const host = (name: string) => result.inventory.hosts.find((h) => h.name === name);
      expect(result.inventory.hosts.map((h) => h.name)).toEqual(["db1", "web1", "web2"]);
      expect(host("web2")).toMatchObject({
        address: "192.0.2.12",
        port: 2222,
        user: "backup",
        become: "sudo",
      });
      expect(host("db1")).toMatchObject({
        user: "root",
        become: "none",
        identity_file: join(tree.dir, "keys/db_ed25519"),
        run_timeout_s: 8 * 3600,
        host_key_policy: "accept-new",
        config: join(tree.dir, "configs/db1.toml"),
        groups: ["db"],
      });
    } finally {
      tree.cleanup();
    }
  });

  it.each(blocks.filter((b) => b.lang === "toml").map((b, i) => [i, b] as const))(
    "TOML block %i is valid",
    (_i, block) => {
      const tree = writeTree({ "block.toml": block.body });
      try {
        const file = join(tree.dir, "block.toml");
        if (/^ssh_config = "ssh_config"/m.test(block.body)) writeSshConfigExample(tree.dir, block);
        if (/^\[(defaults|hosts\.|groups\.)/m.test(block.body)) {
          const result = loadInventory(file);
          expect(result.ok ? [] : result.problems).toEqual([]);
        } else {
          const result = loadResticConfig(file);
          expect(result.ok ? [] : result.problems).toEqual([]);
        }
      } finally {
        vi.unstubAllEnvs();
        tree.cleanup();
      }
    },
  );

  it("plans the maintenance host example as its text says", () => {
    const block = blocks.find((b) => b.lang === "toml" && /^\[repositories\.offsite\]/m.test(b.body));
    if (block === undefined) throw new Error("no [repositories] example in the README");
    const url = /^url = "([^"]+)"/m.exec(block.body)?.[1] ?? "";
    const tree = writeTree({
      "inventory.toml": block.body,
      "configs/web.toml": `[standard_path.www]
backup_source_path = "/srv/www"

[[standard_path.www.repositories]]
repo_path = ${JSON.stringify(url)}
password_file = "/etc/restic/pw"
prune_keep_daily = 14
`,
    });
    try {
      const plan = buildPlan(join(tree.dir, "inventory.toml"));
      // vault backs up nothing; it maintains the repository both web hosts write to.
      expect(plan.hosts.map((h) => h.host.name)).toEqual(["web1", "web2"]);
      expect(plan.repositories?.map((r) => [r.declaration.name, r.maintainer.name, r.uses.length])).toEqual([
        ["offsite", "vault", 2],
      ]);
      expect(plan.repositories?.[0]?.declaration.maintenance_url).toBe("rest:http://127.0.0.1:8001/fleet/");
    } finally {
      tree.cleanup();
    }
  });

  it("resolves the ssh_config example as its text says", () => {
    const block = blocks.find((b) => b.lang === "toml" && /^ssh_config = "ssh_config"/m.test(b.body));
    if (block === undefined) throw new Error("no ssh_config example in the README");
    const tree = writeTree({ "inventory.toml": block.body });
    try {
      writeSshConfigExample(tree.dir, block);
      const result = loadInventory(join(tree.dir, "inventory.toml"));
      if (!result.ok) throw new Error(JSON.stringify(result.problems));
      const host = (name: string) => result.inventory.hosts.find((h) => h.name === name);
      expect(host("db-1")).toMatchObject({
        address: "db-1.db.example.com",
        user: "backup",
        port: 22,
        identity_file: join(tree.dir, ".ssh/backup_ed25519"),
        host_key_policy: "accept-new",
      });
      expect(host("db-2")).toMatchObject({ address: "db-2.db.example.com", port: 2222 });
      expect(host("web1")).toMatchObject({ address: "web1.example.com", user: "rlvm", identity_file: null });
      expect(host("web1")?.origins).toMatchObject({ user: "inventory", address: "inventory" });
    } finally {
      vi.unstubAllEnvs();
      tree.cleanup();
    }
  });

  it("names only real commands and options in every rlvm-fleet command line", async () => {
    const lines = shellLines
      .map((l) => rlvmFleetArgv(l.line))
      .filter((argv): argv is string[] => argv !== null);
    expect(lines.length).toBeGreaterThanOrEqual(7);
    for (const argv of lines) expect(await commandLineProblems(argv), argv.join(" ")).toEqual([]);
  });

  it("runs the command lines that make no connection", async () => {
    const offline = shellLines
      .map((l) => rlvmFleetArgv(l.line))
      .filter(
        (argv): argv is string[] => argv !== null && ["validate", "plan", "--help"].includes(argv[0] ?? ""),
      );
    expect(offline.length).toBeGreaterThanOrEqual(3);
    for (const argv of offline) {
      const result = await runCli(argv, { cwd: ROOT });
      expect(result.code, `${argv.join(" ")}\n${result.stderr}`).toBe(0);
    }
  });

  it("accounts for every other shell line: restore commands, or run elsewhere", () => {
    for (const { line, section } of shellLines) {
      if (rlvmFleetArgv(line) !== null) continue;
      if (section === "Restoring") continue; // run by test/integration/restore.test.ts
      expect(RUN_ELSEWHERE, `unaccounted README command: ${line}`).toHaveProperty([line]);
    }
  });

  it("has restore blocks that bash can parse", () => {
    for (const block of blocks.filter((b) => b.lang === "sh" && b.section === "Restoring")) {
      execFileSync("bash", ["-n"], { input: block.body });
    }
  });

  it("quotes the exit-code table that --help prints", async () => {
    const help = (await runCli(["--help"])).stdout;
    const rows = [...help.matchAll(/^\s+(\d+)\s{2}(.+)$/gm)];
    expect(rows).toHaveLength(Object.keys(EXIT_CODES).length);
    for (const [, code, meaning] of rows) expect(README).toContain(`| ${code?.padEnd(4)} | ${meaning}`);
  });
});
