// `prune`: forgets previewed on each host, then run with one restic prune per repository, on one host;
// `--dry-run` deletes nothing.
import type { CliIo } from "../io.js";
import { fleetReportOptions, type FleetOptions, type JobFilterOptions } from "../options.js";
import { runFleetCommand, type FleetStyles } from "../run-fleet-command.js";

export interface PruneOptions extends FleetOptions, JobFilterOptions {
  dryRun?: boolean;
}

export function pruneCommand(options: PruneOptions, io: CliIo, style: FleetStyles): Promise<number> {
  const reportOptions = { ...fleetReportOptions(options), dry_run: options.dryRun === true };
  return runFleetCommand("prune", reportOptions, options, io, style);
}
