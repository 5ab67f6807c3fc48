// --limit against Ansible itself: random inventories, written as our TOML and as Ansible YAML, and
// hundreds of random patterns. Ansible 2.14 (Debian's ansible-core) is the oracle, through its own
// InventoryManager (test/fixtures/ansible-limit-oracle.py does what `--limit` does: subset, then the
// hosts of `all`). Selections must agree exactly; we may refuse only where Ansible ignored a part that
// matches nothing, raised an error, or selected nothing. A failure prints the seed to replay it
// (RLVM_LIMIT_SEED=N).
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { UsageError } from "../../../src/errors.js";
import { loadInventory } from "../../../src/inventory/load-inventory.js";
import { selectHosts } from "../../../src/inventory/select-hosts.js";
import { skipOrFail } from "../../helpers/skip-or-fail.js";

const ORACLE = join(import.meta.dirname, "../../fixtures/ansible-limit-oracle.py");
/** The Python that runs ansible (its shebang), not whichever python3 is first in PATH. */
function ansiblePython(): string | null {
  const which = spawnSync("sh", ["-c", "command -v ansible"], { encoding: "utf8" });
  const path = which.stdout.trim();
  if (which.status !== 0 || path === "") return null;
  const shebang = /^#!\s*(\S+)/.exec(readFileSync(path, "utf8"))?.[1];
  return shebang !== undefined && existsSync(shebang) ? shebang : null;
}

const INVENTORIES = 24;
const PATTERNS_PER_INVENTORY = 25;
const seed = Number(process.env["RLVM_LIMIT_SEED"] ?? Date.now() % 1_000_000);

/** mulberry32: small, seedable, good enough to pick test cases. */
function rng(start: number): () => number {
  let a = start >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Fleet {
  hosts: string[];
  /** name → direct hosts and children (children only among later groups: no cycle). */
  groups: { name: string; hosts: string[]; children: string[] }[];
}

const HOST_NAMES = [
  "web1",
  "web2",
  "web3",
  "web10",
  "db1",
  "db2",
  "db-3",
  "app.eu",
  "app.us",
  "x",
  "xy",
  "a_1",
];
const GROUP_NAMES = ["web", "db", "eu", "us", "prod", "staging", "dbs", "w"];

function randomFleet(random: () => number): Fleet {
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)] as T;
  const hosts = HOST_NAMES.filter(() => random() < 0.7);
  if (hosts.length === 0) hosts.push("web1");
  const names = GROUP_NAMES.filter(() => random() < 0.6);
  const groups = names.map((name, i) => ({
    name,
    hosts: hosts.filter(() => random() < 0.35),
    children: names.slice(i + 1).filter(() => random() < 0.2),
  }));
  void pick;
  return { hosts, groups };
}

/**
 * `limitFile` writes lines to a new file and gives its absolute path: `@FILE` parts read one whole
 * pattern per line (blank lines skipped), so a line may hold what would otherwise be separators.
 */
function randomPattern(fleet: Fleet, random: () => number, limitFile: (lines: string[]) => string): string {
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)] as T;
  const leafGroups = fleet.groups.filter((g) => g.children.length === 0).map((g) => g.name);
  const term = (): string => {
    const r = random();
    if (r < 0.25) return pick([...fleet.hosts, "nohost"]);
    if (r < 0.45) return pick([...fleet.groups.map((g) => g.name), "all", "ungrouped", "nogroup"]);
    if (r < 0.65) {
      const base = pick(["web", "db", "app", "x", "w", "e", "d", "pro", "a"]);
      return pick([
        `${base}*`,
        `*${base}*`,
        `${base}?`,
        `${base}[12]*`,
        `[!w]*`,
        `[^w]*`,
        `${base}[0-9]`,
        `*[.]*`,
        `${base}[a-z]*`,
        "*",
      ]);
    }
    if (r < 0.75) return pick(["~web[12]", "~db.*", "~(web|db)1", "~x", "~.*\\.eu", "~a_?1$", "~w"]);
    const target = pick([...leafGroups, "ungrouped", ...fleet.hosts]);
    return `${target}${pick(["[0]", "[1]", "[-1]", "[0:1]", "[1:]", "[0-1]", "[2:0]", "[5]", "[1:1]"])}`;
  };
  const count = 1 + Math.floor(random() * 3);
  const prefixed = () => `${pick(["", "", "", "!", "&"])}${term()}`;
  const parts = Array.from({ length: count }, () => {
    if (random() >= 0.08) return prefixed();
    const lines = Array.from({ length: 1 + Math.floor(random() * 3) }, () =>
      random() < 0.15 ? `${prefixed()}:${prefixed()}` : prefixed(),
    );
    return `@${limitFile(random() < 0.3 ? ["", ...lines, "  "] : lines)}`;
  });
  const separator = pick([",", ",", ":", ", ", " "]);
  return parts.join(separator);
}

function asToml(fleet: Fleet): string {
  const lines = ["[defaults]", 'config = "c.toml"'];
  for (const g of fleet.groups)
    lines.push(
      `[groups.${g.name}]`,
      `hosts = ${JSON.stringify(g.hosts)}`,
      `children = ${JSON.stringify(g.children)}`,
    );
  for (const h of fleet.hosts) lines.push(`[hosts.${JSON.stringify(h)}]`);
  return `${lines.join("\n")}\n`;
}

/** Ansible YAML; host order in `all` is the TOML's: every host is listed under all first. */
function asYaml(fleet: Fleet): string {
  const lines = [
    "all:",
    "  hosts:",
    ...fleet.hosts.map((h) => `    ${JSON.stringify(h)}: {}`),
    "  children:",
  ];
  for (const g of fleet.groups) {
    lines.push(`    ${g.name}:`);
    if (g.hosts.length > 0)
      lines.push("      hosts:", ...g.hosts.map((h) => `        ${JSON.stringify(h)}: {}`));
    if (g.children.length > 0) lines.push("      children:", ...g.children.map((c) => `        ${c}: {}`));
  }
  return `${lines.join("\n")}\n`;
}

type Oracle = { hosts: string[]; unmatched: string[] } | { error: string };

const dir = mkdtempSync(join(tmpdir(), "rlvm-limit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("--limit agrees with Ansible", () => {
  it(
    `on ${INVENTORIES * PATTERNS_PER_INVENTORY} random patterns (seed ${seed})`,
    { timeout: 120_000 },
    (ctx) => {
      const python = ansiblePython();
      skipOrFail(
        ctx,
        "unit",
        python === null ? "ansible is not installed (apt-get install ansible-core)" : undefined,
      );
      const random = rng(seed);
      let compared = 0;
      let selections = 0;
      let fileSelections = 0;
      for (let n = 0; n < INVENTORIES; n++) {
        const fleet = randomFleet(random);
        const toml = join(dir, `inv${n}.toml`);
        const yaml = join(dir, `inv${n}.yml`);
        writeFileSync(toml, asToml(fleet));
        writeFileSync(yaml, asYaml(fleet));
        const loaded = loadInventory(toml);
        if (!loaded.ok) throw new Error(`seed ${seed}: ${JSON.stringify(loaded.problems)}\n${asToml(fleet)}`);
        let files = 0;
        const limitFile = (lines: string[]) => {
          const file = join(dir, `limit${n}-${files++}.txt`);
          writeFileSync(file, `${lines.join("\n")}\n`);
          return file;
        };
        const patterns = Array.from({ length: PATTERNS_PER_INVENTORY }, () =>
          randomPattern(fleet, random, limitFile),
        );
        const run = spawnSync(python as string, [ORACLE], {
          input: JSON.stringify({ inventory: yaml, patterns }),
          encoding: "utf8",
          env: { ...process.env, ANSIBLE_LOCAL_TEMP: dir, ANSIBLE_HOME: dir },
        });
        expect(run.status, run.stderr).toBe(0);
        const answers = JSON.parse(run.stdout) as Oracle[];
        patterns.forEach((pattern, i) => {
          const answer = answers[i] as Oracle;
          const where = `seed ${seed}, pattern ${JSON.stringify(pattern)}, Ansible: ${JSON.stringify(answer)}\n${asToml(fleet)}`;
          let ours: string[] | UsageError;
          try {
            ours = selectHosts(loaded.inventory, pattern).map((h) => h.name);
          } catch (error) {
            if (!(error instanceof UsageError)) throw error;
            ours = error;
          }
          compared++;
          if ("error" in answer) {
            expect(ours, where).toBeInstanceOf(UsageError);
            return;
          }
          if (ours instanceof UsageError) {
            // A refusal only where Ansible ignored a part, or selected nothing; naming only such parts.
            expect(answer.unmatched.length > 0 || answer.hosts.length === 0, where).toBe(true);
            for (const problem of ours.problems) {
              const name = /"([^"]*)" matches no host or group/.exec(problem.message)?.[1];
              expect(answer.unmatched, where).toContain(name);
            }
            return;
          }
          // We never ignore a part silently: when Ansible warned, we refused.
          expect(answer.unmatched, where).toEqual([]);
          expect([...ours].sort(), where).toEqual([...new Set(answer.hosts)].sort());
          selections++;
          if (pattern.includes("@")) fileSelections++;
        });
      }
      expect(compared).toBe(INVENTORIES * PATTERNS_PER_INVENTORY);
      // The generator must exercise real selections, not only refusals.
      expect(selections).toBeGreaterThan(compared / 3);
      // ... among them selections through @FILE parts.
      expect(fileSelections).toBeGreaterThan(10);
    },
  );
});
