// The commander program. Commands are loaded when they run, so `--version` and `--help` stay fast.
import { resolve } from "node:path";
import { Command, CommanderError, Option } from "commander";
import { exitCodeTable, EXIT_CODES, UsageError } from "../errors.js";
import type { CliIo } from "./io.js";
import type { FleetCommandOptions } from "./run-fleet-command.js";
import { renderProblems } from "./render/problems.js";
import { makeStyle } from "./render/style.js";
import { VERSION } from "../version.js";

export interface CommonOptions {
  inventory: string;
  limit?: string;
  format: string;
  color: boolean;
}

export async function main(argv: string[], io: CliIo): Promise<number> {
  let exitCode: number = EXIT_CODES.ok.code;
  const colorWanted = (options: { color?: boolean }) =>
    options.color !== false && io.env["NO_COLOR"] === undefined && io.stderrIsTty;
  const program = new Command("rlvm-fleet")
    .description("Run ResticLVM backups (LVM snapshot + restic) across a fleet of Linux servers over SSH.")
    .version(VERSION, "-V, --version")
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError("(run with --help for usage)")
    .addHelpText("after", `\nExit codes:\n${exitCodeTable()}\n`);

  const withCommon = (command: Command, formats: string[]) =>
    command
      .requiredOption("-i, --inventory <file>", "inventory TOML file")
      .option(
        "-l, --limit <pattern>",
        "hosts and groups, Ansible-style: web, db1,db2, 'web*', 'all:!db3', 'web:&eu'",
      )
      .addOption(new Option("--format <format>", "output format").choices(formats).default("table"))
      .option("--no-color", "no colours (NO_COLOR is honoured too)")
      .addHelpText("after", `\nExit codes:\n${exitCodeTable()}\n`);

  withCommon(
    program
      .command("validate")
      .description("parse and check the inventory and every selected host's ResticLVM config; no connection"),
    ["table", "json"],
  ).action(async (options: CommonOptions) => {
    const { validateCommand } = await import("./commands/validate.js");
    exitCode = validateCommand(options, io, makeStyle(colorWanted(options)));
  });

  withCommon(
    program
      .command("plan")
      .description(
        "show, per host, the jobs, snapshots, repositories and copies a backup would run; no connection",
      ),
    ["table", "json"],
  )
    .option(
      "--category <category...>",
      "only jobs of these categories (also lv_root, lv_nonroot); repeat or comma-separate",
    )
    .option("--name <job...>", "only jobs with these names; repeat or comma-separate")
    .action(async (options: CommonOptions & { category?: string[]; name?: string[] }) => {
      const { planCommand } = await import("./commands/plan.js");
      exitCode = planCommand(options, io, makeStyle(colorWanted(options) && io.stdoutIsTty));
    });

  const fleetCommand = (name: "ping" | "check" | "backup" | "prune" | "status", description: string) =>
    withCommon(program.command(name).description(description), ["table", "json", "markdown"])
      .option("--forks <n>", "hosts in parallel", "10")
      .option("--report <file>", "also write the JSON report to FILE")
      .option("-q, --quiet", "no progress lines on stderr")
      .addOption(
        new Option("-v, --verbose", "also every line the agent logs on the host (its stderr)").conflicts(
          "quiet",
        ),
      )
      .action(async (options: FleetCommandOptions) => {
        const { runFleetCommand } = await import("./run-fleet-command.js");
        const color = colorWanted(options);
        exitCode = await runFleetCommand(name, options, io, {
          out: makeStyle(color && io.stdoutIsTty),
          err: makeStyle(color),
        });
      });
  fleetCommand(
    "ping",
    "connect, verify the host key, deliver the agent, run it as root and report its facts (a no-op)",
  );
  fleetCommand("check", "connect and run the preflight of every selected host; changes nothing")
    .option("--category <category...>", "only check jobs of these categories")
    .option("--name <job...>", "only check jobs with these names");
  fleetCommand(
    "backup",
    "snapshot every LV, back up into every repository, remove the snapshots, then copy_to; per host",
  )
    .option("--category <category...>", "only jobs of these categories (also lv_root, lv_nonroot)")
    .option("--name <job...>", "only jobs with these names")
    .option(
      "--dry-run",
      "connect and run the preflight, then list what would run; no snapshot, no repository changed",
    );
  fleetCommand(
    "prune",
    "restic forget (each repository's and copy destination's retention, --keep-tag protected), then prune",
  )
    .option("--category <category...>", "only jobs of these categories (also lv_root, lv_nonroot)")
    .option("--name <job...>", "only jobs with these names")
    .option("--dry-run", "run forget --dry-run only and list what it would remove; nothing is deleted");
  fleetCommand(
    "status",
    "the latest snapshot per host, job and repository, read from the repositories, with its age",
  )
    .option("--category <category...>", "only jobs of these categories (also lv_root, lv_nonroot)")
    .option("--name <job...>", "only jobs with these names")
    .option(
      "--max-age <duration>",
      "a job with no snapshot newer than this (26h, 7d, ...) is stale: its host fails (exit 1)",
    );

  program
    .command("demo")
    .description(
      "start 3 loopback hosts (one sshd each, as you) with restic repositories, and run validate, check, backup twice, status and prune --dry-run against them",
    )
    .option("--dir <dir>", "the demo directory (replaced if it holds an earlier demo)", "rlvm-fleet-demo")
    .option("--no-color", "no colours (NO_COLOR is honoured too)")
    .addHelpText("after", `\nExit codes:\n${exitCodeTable()}\n`)
    .action(async (options: { dir: string; color: boolean }) => {
      const { runDemo } = await import("../demo/run-demo.js");
      exitCode = await runDemo({
        dir: resolve(io.cwd, options.dir),
        cwd: io.cwd,
        path: io.env["PATH"],
        run: (args) => main(options.color ? args : [...args, "--no-color"], io),
        say: io.stdout,
        onInterrupt: io.onInterrupt,
      });
    });

  try {
    await program.parseAsync(argv, { from: "user" });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? EXIT_CODES.ok.code : EXIT_CODES.usage.code;
    }
    if (error instanceof UsageError) {
      const style = makeStyle(
        io.env["NO_COLOR"] === undefined && io.stderrIsTty && !argv.includes("--no-color"),
      );
      io.stderr(renderProblems(error.message, error.problems, error.hint, style, io.cwd));
      return EXIT_CODES.usage.code;
    }
    const message = error instanceof Error ? error.message : String(error);
    io.stderr(
      `rlvm-fleet: internal error: ${message}\nThis is a bug in rlvm-fleet; please report it with the command you ran.\n`,
    );
    if (io.env["RLVM_FLEET_DEBUG"] !== undefined && error instanceof Error) io.stderr(`${error.stack}\n`);
    return EXIT_CODES.failed.code;
  }
}

/** `--name a,b --name c` → ["a", "b", "c"]. */
export function splitList(values: string[] | undefined): string[] {
  return (values ?? [])
    .flatMap((v) => v.split(","))
    .map((v) => v.trim())
    .filter((v) => v !== "");
}
