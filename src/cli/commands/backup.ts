// `backup`: snapshot, back up into every repository, remove the snapshots, copy_to; `--dry-run` runs
// the preflight and lists what would run.
import type { CliIo } from "../io.js";
import {
  fleetReportOptions,
  parseSampleFiles,
  type FleetOptions,
  type JobFilterOptions,
} from "../options.js";
import { runFleetCommand, type FleetStyles } from "../run-fleet-command.js";

export interface BackupOptions extends FleetOptions, JobFilterOptions {
  dryRun?: boolean;
  verifySample?: string;
}

export function backupCommand(options: BackupOptions, io: CliIo, style: FleetStyles): Promise<number> {
  const reportOptions = { ...fleetReportOptions(options), dry_run: options.dryRun === true };
  const verifySample =
    options.verifySample === undefined
      ? undefined
      : parseSampleFiles("--verify-sample", options.verifySample);
  return runFleetCommand("backup", reportOptions, options, io, style, {
    ...(verifySample === undefined ? {} : { verifySample }),
  });
}
