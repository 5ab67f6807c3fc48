// `rlvm-fleet demo` end to end, as a new user runs it: the real binary, real sshd and restic.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import type { Report } from "../../src/report/report-schema.js";
import { describeIntegration } from "./harness/describe-integration.js";

const BIN = join(import.meta.dirname, "../../bin/rlvm-fleet.js");
const base = mkdtempSync(join(tmpdir(), "rlvm-fleet-demo-test-"));

function runDemo(dir: string, onStdout?: (text: string, child: ReturnType<typeof spawn>) => void) {
  const child = spawn(process.execPath, [BIN, "demo", "--dir", dir], {
    cwd: base,
    env: { ...process.env, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
    onStdout?.(stdout, child);
  });
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on("close", (code) => resolve({ code, stdout, stderr })),
  );
}

function demoSshds(dir: string): string[] {
  return execFileSync("ps", ["-eo", "args="], { encoding: "utf8" })
    .split("\n")
    .filter((line) => line.includes("sshd") && line.includes(dir));
}

describeIntegration("rlvm-fleet demo", () => {
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it("runs validate, check, two backups, status, prune --dry-run and prune on 3 hosts, and stops its sshds", async () => {
    const dir = join(base, "demo");
    const run = await runDemo(dir);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    for (const command of ["check", "backup", "status", "prune"]) {
      expect(run.stdout).toMatch(new RegExp(`RECAP ${command} 3 hosts: ok=3 partial=0 failed=0`));
    }
    expect(run.stdout).toMatch(/\$ rlvm-fleet validate --inventory demo\/inventory.toml/);
    // The second backup is incremental: nothing new.
    const second = JSON.parse(readFileSync(join(dir, "reports", "backup-2.json"), "utf8")) as Report;
    expect(second.summary).toMatchObject({ hosts: 3, ok: 3 });
    const repos = second.hosts.flatMap((h) => h.jobs.flatMap((j) => j.repos));
    expect(repos).toHaveLength(3);
    for (const repo of repos) {
      expect(repo.files_new).toBe(0);
      expect(repo.files_unmodified).toBeGreaterThan(0);
    }
    expect(run.stdout).toContain("JSON report:          demo/reports/backup-2.json");
    // The real prune: every host forgot in both shared repositories, and each was pruned once.
    const prune = JSON.parse(readFileSync(join(dir, "reports", "prune.json"), "utf8")) as Report;
    expect(prune.repositories).toHaveLength(2);
    for (const repository of prune.repositories) {
      expect(repository.hosts.map((h) => h.host).sort()).toEqual(["db1", "web1", "web2"]);
      expect(repository.actions.filter((a) => a.action === "prune").map((a) => a.status)).toEqual(["ok"]);
      expect(repository.missing_forgets).toEqual([]);
    }
    expect(run.stdout).toMatch(/pruned, once per repository, after every host's forgets:/);
    expect(demoSshds(dir)).toEqual([]);
  }, 300_000);

  it("stops every sshd it started on Ctrl-C, exit 130", async () => {
    const dir = join(base, "interrupted");
    let sent = false;
    const run = await runDemo(dir, (stdout, child) => {
      if (!sent && stdout.includes("$ rlvm-fleet check")) {
        sent = true;
        child.kill("SIGINT");
      }
    });
    expect(run.code, run.stdout + run.stderr).toBe(130);
    expect(demoSshds(dir)).toEqual([]);
  }, 300_000);

  it("refuses a directory that is not a demo's, and changes nothing in it", async () => {
    const run = await runDemo(join(import.meta.dirname));
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/exists and is not a demo directory/);
  });
});
