// The options several commands share: their commander definitions, their parsed types, and how
// their values are read. Commands and main.ts import this module; it imports neither.
import { Command, Option } from "commander";
import { PLAN_LIMITS } from "../agent/protocol.js";
import { parseDuration } from "../duration.js";
import { exitCodeTable, UsageError } from "../errors.js";
import { INVENTORY_FORMATS, type InventoryFormat } from "../inventory/inventory-source.js";
import { parseShard } from "../plan/shard.js";
import type { ReportOptions } from "../report/report-options.js";

export interface CommonOptions {
  inventory: string;
  inventoryFormat?: InventoryFormat;
  limit?: string;
  format: string;
  color: boolean;
}

export interface JobFilterOptions {
  category?: string[];
  name?: string[];
}

/** `--shard K/N`: every command that connects, and `plan`. */
export interface ShardOption {
  shard?: string;
}

/** What every command that connects takes. */
export interface FleetOptions extends CommonOptions, ShardOption {
  forks: string;
  report?: string;
  junit?: string;
  metrics?: string;
  pingUrl?: string;
  retryFile?: string;
  serial?: string;
  maxFailPercent?: string;
  splay?: string;
  quiet?: boolean;
  verbose?: boolean;
}

export const exitCodesHelp = () => `\nExit codes:\n${exitCodeTable()}\n`;

export function withCommonOptions(command: Command, formats: string[]): Command {
  return command
    .requiredOption(
      "-i, --inventory <source>",
      "inventory: our TOML file, an Ansible inventory (YAML or INI file, directory or plugin config, read with ansible-inventory) or an executable inventory script",
    )
    .addOption(
      new Option(
        "--inventory-format <format>",
        "how to read --inventory (default: detected from its extension and content)",
      ).choices([...INVENTORY_FORMATS]),
    )
    .option(
      "-l, --limit <pattern>",
      "hosts and groups, Ansible-style: web, db1,db2, 'web*', 'all:!db3', 'web:&eu'",
    )
    .addOption(new Option("--format <format>", "output format").choices(formats).default("table"))
    .option("--no-color", "no colours (NO_COLOR is honoured too)")
    .addHelpText("after", exitCodesHelp());
}

export function withShardOption(command: Command): Command {
  return command.option(
    "--shard <k/n>",
    "after --limit, only shard K of N of the hosts (K from 1 to N), by a hash of each host's name: the same on every machine and run, whatever the inventory's order",
  );
}

export function withFleetOptions(command: Command): Command {
  return withShardOption(withCommonOptions(command, ["table", "json", "markdown"]))
    .option(
      "--forks <n>",
      "hosts in parallel (fewer, with a warning, if the open-files limit has no room)",
      "10",
    )
    .option("--report <file>", "also write the JSON report to FILE")
    .option("--junit <file>", "also write JUnit XML to FILE: a test case per host and job, for CI")
    .option(
      "--metrics <file>",
      "also write Prometheus metrics to FILE (text format, for node_exporter's textfile collector)",
    )
    .option(
      "--ping-url <url>",
      "healthchecks.io-style monitoring: POST URL/start, then URL (exit 0 or 3) or URL/fail with the summary; 10 s timeout per ping, a failed ping only warns",
    )
    .option(
      "--retry-file <file>",
      "also write the names of the hosts that did not end ok or partial to FILE, one per line (empty when none), for --limit @FILE",
    )
    .option(
      "--serial <n|n%>",
      "run the hosts in batches of N (or N% of them); a batch starts when the last has ended",
    )
    .option(
      "--max-fail-percent <p>",
      "start no more hosts once more than P% have failed or were unreachable (per batch with --serial, else of those finished); the rest are skipped (max_fail), exit 5",
    )
    .option("--splay <duration>", "delay each host's start by a random time up to DURATION (30s, 5m)")
    .option("-q, --quiet", "no progress on stderr (neither the live view on a terminal nor progress lines)")
    .addOption(
      new Option("-v, --verbose", "also every line the agent logs on the host (its stderr)").conflicts(
        "quiet",
      ),
    );
}

/** `--category` and `--name`, with the wording of the command that takes them. */
export function withJobFilterOptions(command: Command, help: { category: string; name: string }): Command {
  return command.option("--category <category...>", help.category).option("--name <job...>", help.name);
}

/** `--name a,b --name c` → ["a", "b", "c"]. */
export function splitList(values: string[] | undefined): string[] {
  return (values ?? [])
    .flatMap((v) => v.split(","))
    .map((v) => v.trim())
    .filter((v) => v !== "");
}

export function parseForks(text: string): number {
  if (!/^[1-9]\d*$/.test(text)) {
    throw new UsageError(`--forks must be a whole number of at least 1, got "${text}"`);
  }
  return Number(text);
}

/** --restore-sample and --verify-sample: files per job, 0 (none) to PLAN_LIMITS.maxRestoreSample. */
export function parseSampleFiles(option: string, text: string): number {
  if (!/^\d{1,4}$/.test(text) || Number(text) > PLAN_LIMITS.maxRestoreSample)
    throw new UsageError(
      `${option} must be a number of files from 0 to ${PLAN_LIMITS.maxRestoreSample} (0: none), got "${text}"`,
    );
  return Number(text);
}

/** A connecting command's options as its report records them; commands override what they take. */
export function fleetReportOptions(options: FleetOptions & JobFilterOptions): ReportOptions {
  return {
    inventory: options.inventory,
    limit: options.limit ?? null,
    forks: parseForks(options.forks),
    category: splitList(options.category),
    name: splitList(options.name),
    dry_run: false,
    max_age_s: null,
    serial: options.serial === undefined ? null : parseSerial(options.serial),
    max_fail_percent:
      options.maxFailPercent === undefined ? null : parseMaxFailPercent(options.maxFailPercent),
    splay_s: options.splay === undefined ? null : parseSplay(options.splay),
    shard: options.shard === undefined ? null : parseShard(options.shard),
  };
}

/** Ansible's serial: a number of hosts, or a percentage of them. */
function parseSerial(text: string): string {
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(text);
  if (/^[1-9]\d*$/.test(text) || (percent !== null && Number(percent[1]) > 0 && Number(percent[1]) <= 100))
    return text;
  throw new UsageError(`--serial must be a number of hosts (2) or a percentage of them (25%), got "${text}"`);
}

function parseMaxFailPercent(text: string): number {
  const value = Number(text);
  if (!/^\d+(?:\.\d+)?$/.test(text) || value > 100)
    throw new UsageError(`--max-fail-percent must be a percentage from 0 to 100, got "${text}"`);
  return value;
}

function parseSplay(text: string): number {
  const seconds = parseDuration(text);
  if (seconds === undefined)
    throw new UsageError(
      `--splay must be a duration such as "30s", "5m" or a number of seconds, got "${text}"`,
    );
  return seconds;
}
