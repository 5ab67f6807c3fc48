// The agent's side of masking (finding 2 of issue 13): restic's error lines are masked first and cut
// to 400 characters after, so that no cut ever leaves a piece of a secret that the masking no longer
// recognises. The modules are sourced by bash, as in agent-build.test.ts.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { maskRepository } from "../../../src/config/rules.js";

const SRC = fileURLToPath(new URL("../../../agents/src/", import.meta.url));
const MODULES = ["prelude.sh", "helpers.sh", "exec.sh", "restic-version.sh"];

let dir = "";
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "rlvm-masking-"));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function bash(script: string, args: string[]): string {
  const sources = MODULES.map((m) => `source ${JSON.stringify(join(SRC, m))}`).join("\n");
  const r = spawnSync("bash", ["--noprofile", "--norc", "-c", `${sources}\n${script}`, "test", ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, TMPDIR: dir, LC_ALL: "C" },
    encoding: "utf8",
    timeout: 60_000,
  });
  if (r.error) throw r.error;
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  return r.stdout;
}

/** error_line on a file of restic stderr, for every pad from `from` to `to`: one result per line. */
function errorLines(line: (pad: string) => string, from: number, to: number, pairs: string[]): string[] {
  const lines: string[] = [];
  for (let n = from; n <= to; n++) lines.push(line("x".repeat(n)));
  const file = join(dir, "restic.err");
  writeFileSync(file, lines.join("\n") + "\n");
  const out = bash(
    `ENV_VALS=()
     while IFS= read -r text; do
       printf '%s\\n' "$text" >"$1.one"
       error_line "$1.one" "\${@:2}"
       printf '%s\\n' "$REPLY"
     done <"$1"`,
    [file, ...pairs],
  );
  return out.split("\n").slice(0, -1);
}

/** Every piece of `secret` of 3 characters or more that `text` contains. */
function piecesOf(secret: string, text: string): string[] {
  const found: string[] = [];
  for (let i = 0; i < secret.length; i++) {
    for (let j = i + 3; j <= secret.length; j++) {
      if (text.includes(secret.slice(i, j))) found.push(secret.slice(i, j));
    }
  }
  return found;
}

const PASSWORD = "Zq7Xkr@Wk9Pqt:Xy5Tjl";
const REPO_URL = `rest:https://fleet:${PASSWORD}@vault.example:8000/db1`;
const RCLONE = "rclone::s3,access_key_id=AKIQ5J3N8R,secret_access_key=Vq8Kx2Lm9Pz4Wt7:bucket/db1";

describe("error_line masks first and cuts after", () => {
  it("no cut inside a repository URL leaves a piece of its password", () => {
    const results = errorLines(
      (pad) => `Fatal: unable to open config file: Stat: ${pad} Get "${REPO_URL}/config": dial tcp: refused`,
      300,
      420,
      [REPO_URL, maskRepository(REPO_URL)],
    );
    expect(results).toHaveLength(121);
    for (const result of results) {
      expect(result.length).toBeLessThanOrEqual(403);
      expect(piecesOf(PASSWORD, result)).toEqual([]);
    }
    expect(results.some((r) => r.endsWith("..."))).toBe(true);
    // A line that fits whole names the repository by its label.
    const [short] = errorLines((pad) => `Fatal: ${pad} Get "${REPO_URL}/config": refused`, 1, 1, [
      REPO_URL,
      maskRepository(REPO_URL),
    ]);
    // (the generic user-info rule then masks the label's user too)
    expect(short).toBe(`Fatal: x Get "rest:https://***@vault.example:8000/db1/config": refused`);
  });

  it("nor of a URL written otherwise than in the plan, a password echoed alone, or percent-encoded", () => {
    const encoded = `rest:https://fleet:${encodeURIComponent(PASSWORD)}@vault.example:8000/db1`;
    const results = errorLines(
      (pad) => `Fatal: ${pad} https://fleet:${PASSWORD}@vault.example:8000 said no to ${PASSWORD}`,
      330,
      420,
      [encoded, maskRepository(encoded)],
    );
    for (const result of results) expect(piecesOf(PASSWORD, result)).toEqual([]);
  });

  it("masks rclone's inline credentials, in the URL and alone", () => {
    const results = errorLines(
      (pad) => `Fatal: ${pad} ${RCLONE} failed: bad key Vq8Kx2Lm9Pz4Wt7 for AKIQ5J3N8R`,
      340,
      420,
      [RCLONE, maskRepository(RCLONE)],
    );
    for (const result of results) {
      expect(piecesOf("Vq8Kx2Lm9Pz4Wt7", result)).toEqual([]);
      expect(piecesOf("AKIQ5J3N8R", result)).toEqual([]);
    }
  });

  it("masks both repositories of a copy before the cut", () => {
    const from = `rest:https://src:${PASSWORD}@a.example/r`;
    const results = errorLines((pad) => `Fatal: ${pad} copy ${from} -> ${RCLONE}`, 300, 420, [
      RCLONE,
      maskRepository(RCLONE),
      from,
      maskRepository(from),
    ]);
    for (const result of results) {
      expect(piecesOf(PASSWORD, result)).toEqual([]);
      expect(piecesOf("Vq8Kx2Lm9Pz4Wt7", result)).toEqual([]);
    }
  });
});
