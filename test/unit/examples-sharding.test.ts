// The sharding examples (GitHub Actions matrix + merge job, Kubernetes Indexed Job + merge) must
// parse, use only real commands and options, cover every shard once, and merge when they say.
import { execFileSync } from "node:child_process";
import { chmodSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { z } from "zod";
import { commandLineProblems, rlvmFleetArgv } from "../helpers/command-lines.js";
import { runCli, writeTree } from "../helpers/run-cli.js";

const ROOT = join(import.meta.dirname, "../..");
const read = (file: string): unknown => parse(readFileSync(join(ROOT, "examples", file), "utf8"));

/** The host names `plan` shows for these arguments (the CLI's own selection, no connection). */
async function planned(args: string[]): Promise<string[]> {
  const result = await runCli(["plan", ...args, "--format", "json"], { cwd: ROOT });
  expect(result.code, result.stderr).toBe(0);
  return z
    .object({ hosts: z.array(z.object({ name: z.string() })) })
    .parse(JSON.parse(result.stdout))
    .hosts.map((h) => h.name);
}

/** `plan` with the --inventory, --limit and --shard of a backup line: its shard's hosts. */
async function shardHosts(argv: string[]): Promise<string[]> {
  const keep: string[] = [];
  for (const option of ["--inventory", "--limit", "--shard"]) {
    const i = argv.indexOf(option);
    if (i >= 0) keep.push(option, argv[i + 1]!.replace(/^"(.*)"$/, "$1"));
  }
  return planned(keep);
}

const step = z.object({
  name: z.string().optional(),
  run: z.string().optional(),
  uses: z.string().optional(),
  with: z.record(z.string(), z.unknown()).optional(),
  if: z.string().optional(),
});
const workflow = z.object({
  env: z.object({ SHARDS: z.number().int() }),
  jobs: z.object({
    shard: z.object({
      strategy: z.object({ "fail-fast": z.boolean(), matrix: z.object({ shard: z.array(z.number()) }) }),
      steps: z.array(step),
    }),
    merge: z.object({ needs: z.string(), if: z.string(), steps: z.array(step) }),
  }),
});

describe("examples/github-actions/sharded-backup.yml", () => {
  const wf = workflow.parse(read("github-actions/sharded-backup.yml"));
  const n = wf.env.SHARDS;
  const backup = wf.jobs.shard.steps.find((s) => s.run?.includes("rlvm-fleet backup"))?.run ?? "";
  const lineFor = (k: number) =>
    backup.replaceAll("${{ matrix.shard }}", String(k)).replaceAll("${{ env.SHARDS }}", String(n));

  it("has a matrix of shards 1..SHARDS, none cancelling the others", () => {
    expect(wf.jobs.shard.strategy.matrix.shard).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(wf.jobs.shard.strategy["fail-fast"]).toBe(false);
  });

  it("runs --shard K/N lines of real options whose shards cover the inventory once", async () => {
    const all = await planned(["--inventory", "examples/fleet-groups/inventory.toml"]);
    const shards: string[][] = [];
    for (const k of wf.jobs.shard.strategy.matrix.shard) {
      const argv = rlvmFleetArgv(lineFor(k));
      expect(argv).not.toBeNull();
      expect(await commandLineProblems(argv!)).toEqual([]);
      expect(argv).toEqual(expect.arrayContaining(["--shard", `${k}/${n}`, "--report", `shard-${k}.json`]));
      shards.push(await shardHosts(argv!));
    }
    expect(shards.flat().sort()).toEqual([...all].sort());
    // Shard 2/3 of these 5 hosts is empty: that machine's run is clean, with a warning.
    expect(shards.map((s) => s.length)).toEqual([3, 0, 2]);
  });

  it("uploads each report, also after a failed backup, and merges them all in a job after", async () => {
    const upload = wf.jobs.shard.steps.find((s) => s.uses?.startsWith("actions/upload-artifact"));
    expect(upload?.if).toBe("always()");
    expect(upload?.with?.["path"]).toBe("shard-${{ matrix.shard }}.json");
    expect(wf.jobs.merge.needs).toBe("shard");
    expect(wf.jobs.merge.if).toBe("always()");
    const download = wf.jobs.merge.steps.find((s) => s.uses?.startsWith("actions/download-artifact"));
    expect(download?.with).toMatchObject({
      pattern: "rlvm-fleet-report-*",
      path: "reports",
      "merge-multiple": true,
    });
    expect(String(upload?.with?.["name"]).replace("${{ matrix.shard }}", "1")).toMatch(
      /^rlvm-fleet-report-1$/,
    );
    const merge = wf.jobs.merge.steps.find((s) => s.run?.includes("report merge"))?.run ?? "";
    expect(merge).toContain('>> "$GITHUB_STEP_SUMMARY"');
    const argv = rlvmFleetArgv(merge.trim());
    expect(argv?.slice(0, 3)).toEqual(["report", "merge", "reports/shard-*.json"]);
    expect(argv).toEqual(expect.arrayContaining(["--format", "markdown"]));
    expect(await commandLineProblems(argv!)).toEqual([]);
  });
});

const cronJob = z.object({
  kind: z.literal("CronJob"),
  spec: z.object({
    jobTemplate: z.object({
      spec: z.object({
        completionMode: z.literal("Indexed"),
        completions: z.number().int(),
        parallelism: z.number().int(),
        template: z.object({
          spec: z.object({
            containers: z.array(
              z.object({
                env: z.array(z.object({ name: z.string(), value: z.string().optional() })),
                command: z.array(z.string()),
                args: z.array(z.string()),
              }),
            ),
          }),
        }),
      }),
    }),
  }),
});

describe("examples/kubernetes/sharded-backup.yaml", () => {
  const job = cronJob.parse(read("kubernetes/sharded-backup.yaml")).spec.jobTemplate.spec;
  const container = job.template.spec.containers[0]!;
  const shards = Number(container.env.find((e) => e.name === "SHARDS")?.value);
  const script = container.args[0] ?? "";

  it("is an Indexed Job of SHARDS pods, all at once", () => {
    expect(shards).toBeGreaterThan(1);
    expect(job.completions).toBe(shards);
    expect(job.parallelism).toBe(shards);
    expect(container.command).toEqual(["/bin/bash", "-c"]);
    execFileSync("bash", ["-n"], { input: script });
  });

  it("turns JOB_COMPLETION_INDEX 0..N-1 into --shard 1/N..N/N", () => {
    const line = /^shard=.*$/m.exec(script)?.[0] ?? "";
    expect(line).toContain("JOB_COMPLETION_INDEX + 1");
    const shardsSeen = Array.from({ length: shards }, (_, index) =>
      execFileSync("bash", ["-c", `${line}; printf %s "$shard"`], {
        env: { JOB_COMPLETION_INDEX: String(index), SHARDS: String(shards) },
        encoding: "utf8",
      }),
    );
    expect(shardsSeen).toEqual(Array.from({ length: shards }, (_, i) => `${i + 1}/${shards}`));
  });

  it("uses only real commands and options", async () => {
    const argvs = script
      .split("\n")
      .map((l) => rlvmFleetArgv(l.trim()))
      .filter((a): a is string[] => a !== null);
    expect(argvs.map((a) => a.slice(0, a[0] === "report" ? 2 : 1).join(" "))).toEqual([
      "backup",
      "report merge",
    ]);
    for (const argv of argvs) expect(await commandLineProblems(argv)).toEqual([]);
  });

  it("merges once every shard's report is there, in the pod that wrote the last, with its exit code", () => {
    // The script as a pod runs it, with rlvm-fleet replaced by a stub that writes the report it is
    // asked for (exit 1: a failed host) and logs a merge (exit 4), and /reports by a temp directory.
    const tree = writeTree({
      "bin/rlvm-fleet": `#!/bin/bash
if [ "$1" = backup ]; then
  while [ $# -gt 0 ]; do [ "$1" = --report ] && echo '{}' > "$2"; shift; done
  exit 1
fi
echo "$*" >> "$LOG"; exit 4
`,
    });
    try {
      chmodSync(join(tree.dir, "bin/rlvm-fleet"), 0o755);
      const body = script.replaceAll("/reports/", `${tree.dir}/reports/`);
      const codes = Array.from({ length: shards }, (_, index) => {
        try {
          execFileSync("bash", ["-c", body], {
            env: {
              PATH: `${tree.dir}/bin:${process.env["PATH"] ?? ""}`,
              JOB_COMPLETION_INDEX: String(index),
              SHARDS: String(shards),
              JOB_NAME: "rlvm-fleet-backup-29400000",
              LOG: join(tree.dir, "merges.log"),
            },
          });
          return 0;
        } catch (error) {
          return (error as { status: number }).status;
        }
      });
      expect(codes).toEqual([...Array<number>(shards - 1).fill(0), 4]);
      const dir = join(tree.dir, "reports/rlvm-fleet-backup-29400000");
      const merges = readFileSync(join(tree.dir, "merges.log"), "utf8").trim().split("\n");
      expect(merges).toHaveLength(1);
      expect(merges[0]).toBe(
        `report merge ${Array.from({ length: shards }, (_, i) => `${dir}/shard-${i + 1}.json`).join(" ")} --report ${dir}/merged.json --metrics ${dir}/rlvm-fleet-backup.prom`,
      );
      expect(readdirSync(dir).sort()).toEqual(
        Array.from({ length: shards }, (_, i) => `shard-${i + 1}.json`),
      );
    } finally {
      tree.cleanup();
    }
  });
});
