// The commander program. Commands are loaded when they run, so `--version` and `--help` stay fast.
import { Command, CommanderError, Option } from "commander";
import { EXIT_CODES, UsageError } from "../errors.js";
import type { BackupOptions } from "./commands/backup.js";
import type { CheckOptions } from "./commands/check.js";
import type { DemoOptions } from "./commands/demo.js";
import type { InstallAgentOptions } from "./commands/install-agent.js";
import type { PingOptions } from "./commands/ping.js";
import type { PlanOptions } from "./commands/plan.js";
import type { PruneOptions } from "./commands/prune.js";
import type { VerifyOptions } from "./commands/verify.js";
import type { ReportMergeOptions } from "./commands/report-merge.js";
import type { StatusOptions } from "./commands/status.js";
import type { ValidateOptions } from "./commands/validate.js";
import type { CliIo } from "./io.js";
import {
  exitCodesHelp,
  withCommonOptions,
  withFleetOptions,
  withJobFilterOptions,
  withShardOption,
} from "./options.js";
import type { FleetStyles } from "./run-fleet-command.js";
import { renderProblems } from "./render/problems.js";
import { makeStyle } from "./render/style.js";
import { VERSION } from "../version.js";

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
    .addHelpText("after", exitCodesHelp());

  const fleetStyles = (options: { color: boolean }): FleetStyles => {
    const color = colorWanted(options);
    return { out: makeStyle(color && io.stdoutIsTty), err: makeStyle(color) };
  };

  withCommonOptions(
    program
      .command("validate")
      .description("parse and check the inventory and every selected host's ResticLVM config; no connection"),
    ["table", "json"],
  )
    .option(
      "-v, --verbose",
      "also each host's connection settings and where each came from (inventory, ssh_config FILE, default)",
    )
    .action(async (options: ValidateOptions) => {
      const { validateCommand } = await import("./commands/validate.js");
      exitCode = validateCommand(options, io, makeStyle(colorWanted(options)));
    });

  withJobFilterOptions(
    withShardOption(
      withCommonOptions(
        program
          .command("plan")
          .description(
            "show, per host, the jobs, snapshots, repositories and copies a backup would run; no connection",
          ),
        ["table", "json"],
      ),
    ),
    {
      category: "only jobs of these categories (also lv_root, lv_nonroot); repeat or comma-separate",
      name: "only jobs with these names; repeat or comma-separate",
    },
  ).action(async (options: PlanOptions) => {
    const { planCommand } = await import("./commands/plan.js");
    exitCode = planCommand(options, io, makeStyle(colorWanted(options) && io.stdoutIsTty));
  });

  const fleetCommand = (name: string, description: string) =>
    withFleetOptions(program.command(name).description(description));
  const jobFilter = {
    category: "only jobs of these categories (also lv_root, lv_nonroot)",
    name: "only jobs with these names",
  };

  fleetCommand(
    "ping",
    "connect, verify the host key, deliver the agent, run it as root and report its facts (a no-op)",
  ).action(async (options: PingOptions) => {
    const { pingCommand } = await import("./commands/ping.js");
    exitCode = await pingCommand(options, io, fleetStyles(options));
  });

  withJobFilterOptions(
    fleetCommand("check", "connect and run the preflight of every selected host; changes nothing"),
    { category: "only check jobs of these categories", name: "only check jobs with these names" },
  ).action(async (options: CheckOptions) => {
    const { checkCommand } = await import("./commands/check.js");
    exitCode = await checkCommand(options, io, fleetStyles(options));
  });

  withJobFilterOptions(
    fleetCommand(
      "backup",
      "snapshot every LV, back up into every repository, remove the snapshots, then copy_to; per host",
    ),
    jobFilter,
  )
    .option(
      "--dry-run",
      "connect and run the preflight, then list what would run; no snapshot, no repository changed",
    )
    .option(
      "--verify-sample <n>",
      "per job, restore n sampled files of the snapshot just written (its first repository that took it) and compare them byte for byte with what restic read, while the LVM snapshot is still mounted; a mismatch fails the job (the backup stays written); default: each host's verify_sample (0: off)",
    )
    .action(async (options: BackupOptions) => {
      const { backupCommand } = await import("./commands/backup.js");
      exitCode = await backupCommand(options, io, fleetStyles(options));
    });

  withJobFilterOptions(
    fleetCommand(
      "prune",
      "each host's retention (restic forget --keep-tag protected, scoped to the host and job), previewed on every host, then applied per repository by one host, which runs every host's forgets there and one restic prune; a repository the inventory declares with a maintenance_host has its forgets and prune run there",
    ),
    jobFilter,
  )
    .option(
      "--dry-run",
      "run forget --dry-run only and list what it would remove and which host would prune each repository; nothing is deleted",
    )
    .action(async (options: PruneOptions) => {
      const { pruneCommand } = await import("./commands/prune.js");
      exitCode = await pruneCommand(options, io, fleetStyles(options));
    });

  withJobFilterOptions(
    fleetCommand(
      "status",
      "the latest snapshot per host, job and repository, read from the repositories, with its age",
    ),
    jobFilter,
  )
    .option(
      "--max-age <duration>",
      "a job with no snapshot newer than this (26h, 7d, ...) is stale: its host fails (exit 1)",
    )
    .action(async (options: StatusOptions) => {
      const { statusCommand } = await import("./commands/status.js");
      exitCode = await statusCommand(options, io, fleetStyles(options));
    });

  withJobFilterOptions(
    fleetCommand(
      "verify",
      "prove the backups intact and restorable: one restic check --read-data-subset per repository for the whole fleet, and per host and job a restore drill of sampled files compared with the live ones",
    ),
    jobFilter,
  )
    .option(
      "--read-data-subset <subset>",
      "what restic check reads of each repository's data: n/t (3/7), P% (10%) or a size (500M); default n/7 by the UTC day (day number mod 7, +1), so a week reads everything",
    )
    .option(
      "--restore-sample <n>",
      "files per host and job restored from the job's latest snapshot (in its first repository) and compared with the live files; 0: no restore drill",
      "5",
    )
    .option(
      "--dry-run",
      "read each repository's id only, and say which host would check which repository and what each job would sample; nothing is read from the data",
    )
    .addHelpText(
      "after",
      "\nThe sample is deterministic: evenly spaced through the snapshot's regular files, the start moved by\n" +
        "the UTC day. A file whose size or mtime changed since the snapshot is reported as\n" +
        "changed_since_backup (the job stays ok); same size and mtime with other bytes is a mismatch (failed).\n",
    )
    .action(async (options: VerifyOptions) => {
      const { verifyCommand } = await import("./commands/verify.js");
      exitCode = await verifyCommand(options, io, fleetStyles(options));
    });

  fleetCommand(
    "install-agent",
    'least-privilege mode: install the agent as root\'s file, a sudo rule for exactly it, and the repository allow-list (then set agent = "installed")',
  )
    .option("--dry-run", "check each host and say what would be written; nothing changes")
    .option(
      "--root-login",
      "log in as root for this one command (no sudo), when the login user has no broad sudo rule",
    )
    .option(
      "--any-repository",
      "let the installed agent use any repository the plan names (no allow-list of the config's repositories)",
    )
    .action(async (options: InstallAgentOptions) => {
      const { installAgentCommand } = await import("./commands/install-agent.js");
      exitCode = await installAgentCommand(options, io, fleetStyles(options));
    });

  const reportGroup = program
    .command("report")
    .description("work with JSON reports that --report FILE wrote; no connection");
  reportGroup
    .command("merge")
    .description(
      "combine the reports of a run's shards (--shard K/N on several machines) into one report: its table, JSON or markdown, files and exit code",
    )
    .argument("<file...>", "JSON reports (--report FILE) of one command, one per shard")
    .addOption(
      new Option("--format <format>", "output format")
        .choices(["table", "json", "markdown"])
        .default("table"),
    )
    .option("--report <file>", "also write the merged JSON report to FILE")
    .option("--junit <file>", "also write JUnit XML to FILE: a test case per host and job, for CI")
    .option("--metrics <file>", "also write Prometheus metrics to FILE (text format)")
    .option("--no-color", "no colours (NO_COLOR is honoured too)")
    .addHelpText("after", exitCodesHelp())
    .action(async (files: string[], options: ReportMergeOptions) => {
      const { reportMergeCommand } = await import("./commands/report-merge.js");
      exitCode = reportMergeCommand(files, options, io, fleetStyles(options));
    });

  program
    .command("demo")
    .description(
      "start 3 loopback hosts (one sshd each, as you) with restic repositories, and run validate, check, backup twice, status, prune --dry-run and prune against them",
    )
    .option("--dir <dir>", "the demo directory (replaced if it holds an earlier demo)", "rlvm-fleet-demo")
    .option("--no-color", "no colours (NO_COLOR is honoured too)")
    .addHelpText(
      "after",
      "\nIt needs sshd, ssh-keygen and restic: run as root on Debian, it installs the missing packages\n" +
        "itself (apt-get), saying so; otherwise it prints the command to run. In a checkout,\n" +
        "`npm run demo -- --lvm` backs up real LVM volumes in the VM tier's qemu guest.\n" +
        exitCodesHelp(),
    )
    .action(async (options: DemoOptions) => {
      const { demoCommand } = await import("./commands/demo.js");
      exitCode = await demoCommand(options, io, (args) => main(args, io));
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
