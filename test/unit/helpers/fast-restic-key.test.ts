// The tests' cheap repository keys: real restic opens the re-sealed key with the password, and only
// with it, its data intact; the key costs scrypt N=1024 instead of restic's calibrated parameters.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { useFastKeys } from "../../helpers/fast-restic-key.js";
import { skipOrFail } from "../../helpers/skip-or-fail.js";

const HAS_RESTIC = spawnSync("restic", ["version"]).status === 0;
const base = mkdtempSync(join(tmpdir(), "rlvm-fast-key-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));

function restic(repo: string, passwordFile: string, ...args: string[]) {
  return spawnSync("restic", ["--repo", repo, "--password-file", passwordFile, "--no-cache", ...args], {
    encoding: "utf8",
    env: { PATH: process.env.PATH, HOME: base },
  });
}

it("re-seals the key: restic opens the repository with the password only, its id and snapshots unchanged", (ctx) => {
  skipOrFail(ctx, "unit", HAS_RESTIC ? undefined : "restic is not installed");
  const repo = join(base, "repo");
  const password = join(base, "pw");
  const wrong = join(base, "wrong");
  writeFileSync(password, "fast key test\n", { mode: 0o600 });
  writeFileSync(wrong, "not it\n", { mode: 0o600 });
  writeFileSync(join(base, "file.txt"), "kept across the re-seal\n");
  expect(restic(repo, password, "init").status).toBe(0);
  expect(restic(repo, password, "backup", join(base, "file.txt")).status).toBe(0);
  const id = (JSON.parse(restic(repo, password, "cat", "config").stdout) as { id: string }).id;
  const keyBefore = readdirSync(join(repo, "keys"));

  useFastKeys(repo, password);

  const keys = readdirSync(join(repo, "keys"));
  expect(keys).toHaveLength(1);
  expect(keys).not.toEqual(keyBefore);
  const key = JSON.parse(readFileSync(join(repo, "keys", keys[0] as string), "utf8")) as Record<
    string,
    unknown
  >;
  expect(key).toMatchObject({ kdf: "scrypt", N: 1024, r: 8, p: 1 });
  expect((JSON.parse(restic(repo, password, "cat", "config").stdout) as { id: string }).id).toBe(id);
  const dump = restic(repo, password, "dump", "latest", join(base, "file.txt"));
  expect(dump.stdout).toBe("kept across the re-seal\n");
  expect(restic(repo, password, "check").status).toBe(0);
  const refused = restic(repo, wrong, "cat", "config");
  expect(refused.status).not.toBe(0);
  expect(refused.stderr).toMatch(/wrong password|no key found/);
  expect(() => useFastKeys(repo, wrong)).toThrow(/does not open this key/);
}, 60_000); // restic init and the commands before the re-seal pay the calibrated key
