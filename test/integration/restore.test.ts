// The README's restore section, followed word for word against a backup made by the tool.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { runCli } from "../helpers/run-cli.js";
import { describeIntegration } from "./harness/describe-integration.js";
import { startFleet, type Fleet } from "./harness/fleet.js";
import { resticInit, writeInventory, writePasswordFile } from "./helpers/test-fleet.js";

const README = readFileSync(join(import.meta.dirname, "../../README.md"), "utf8");

/** The first sh block of the README's "Restoring" section. */
function restoreBlock(): string {
  const section = README.slice(README.indexOf("## Restoring"));
  const match = /```sh\n([\s\S]*?)\n```/.exec(section);
  if (match?.[1] === undefined) throw new Error("README has no restore block");
  return match[1];
}

describeIntegration("README: restoring", () => {
  let fleet: Fleet;
  let dir: string;
  let source: string;
  let repo: string;
  let password: string;

  beforeAll(async () => {
    fleet = await startFleet({ hosts: ["rs1"] });
    dir = mkdtempSync(join(fleet.dir, "restore-"));
    chmodSync(dir, 0o755);
    password = writePasswordFile(join(dir, "restic-password"), "restore test password");
    repo = resticInit(join(dir, "repo"), password);
    source = join(dir, "live", "data");
    mkdirSync(join(source, "etc"), { recursive: true });
    mkdirSync(join(source, "www"), { recursive: true });
    writeFileSync(join(source, "etc", "app.conf"), "listen = 0.0.0.0\n");
    writeFileSync(join(source, "www", "index.html"), "<h1>hello</h1>\n");
    writeFileSync(join(source, "www", "big.bin"), Buffer.alloc(300_000, 7));
    writeFileSync(
      join(dir, "rs1.toml"),
      `[standard_path.data]\nbackup_source_path = ${JSON.stringify(source)}\n\n[[standard_path.data.repositories]]\nrepo_path = ${JSON.stringify(repo)}\npassword_file = ${JSON.stringify(password)}\nprune_keep_last = 3\n`,
    );
    const inventory = writeInventory(fleet, join(dir, "inventory.toml"), {
      defaults: { config: join(dir, "rs1.toml") },
    });
    const backup = await runCli(["backup", "--inventory", inventory, "--quiet", "--format", "json"]);
    expect(backup.code, backup.stdout).toBe(0);
  }, 120_000);

  afterAll(async () => {
    await fleet?.stop();
  });

  it("restores the latest snapshot of a host's job, and the restore matches the originals", () => {
    const target = join(dir, "scratch");
    // The README's literal values, mapped onto this backup; longest first so none clobbers another.
    const script = restoreBlock()
      .replaceAll("/srv/backup/data", repo)
      .replaceAll("/etc/rlvm-fleet/restic-password", password)
      .replaceAll("/var/tmp", target)
      .replaceAll("/data", source)
      .replaceAll("db1", "rs1");
    mkdirSync(target);
    const output = execFileSync("bash", ["-euo", "pipefail", "-c", script], {
      encoding: "utf8",
      env: { ...process.env },
    });
    expect(output).toContain("restore matches");
    const restored = join(target, "restore", source);
    for (const file of ["etc/app.conf", "www/index.html", "www/big.bin"]) {
      expect(readFileSync(join(restored, file)).equals(readFileSync(join(source, file))), file).toBe(true);
    }
    // --include restored only the part it names.
    expect(readFileSync(join(target, "restore-etc", source, "etc", "app.conf"), "utf8")).toBe(
      "listen = 0.0.0.0\n",
    );
    expect(() => readFileSync(join(target, "restore-etc", source, "www", "index.html"))).toThrow();
  });
});
