// `verify`: one `restic check --read-data-subset` per repository of the fleet, and a restore drill of
// sampled files per host and job, compared with the live files; `--dry-run` reads only the ids.
import { UsageError } from "../../errors.js";
import type { CliIo } from "../io.js";
import {
  fleetReportOptions,
  parseSampleFiles,
  type FleetOptions,
  type JobFilterOptions,
} from "../options.js";
import { runFleetCommand, type FleetStyles } from "../run-fleet-command.js";

export interface VerifyOptions extends FleetOptions, JobFilterOptions {
  dryRun?: boolean;
  readDataSubset?: string;
  restoreSample: string;
}

export function verifyCommand(options: VerifyOptions, io: CliIo, style: FleetStyles): Promise<number> {
  const reportOptions = { ...fleetReportOptions(options), dry_run: options.dryRun === true };
  const verify = {
    subset:
      options.readDataSubset === undefined ? rotatingSubset(new Date()) : parseSubset(options.readDataSubset),
    restoreSample: parseSampleFiles("--restore-sample", options.restoreSample),
  };
  return runFleetCommand("verify", reportOptions, options, io, style, { verify });
}

/**
 * The default subset: `n/7` with n the UTC day number mod 7, plus 1. Successive days read successive
 * sevenths, so every pack is read once a week, and no state is kept anywhere.
 */
export function rotatingSubset(now: Date): string {
  const day = Math.floor(now.getTime() / 86_400_000);
  return `${(day % 7) + 1}/7`;
}

/**
 * What restic check --read-data-subset takes, as the agent validates it again (plan.sh
 * read_data_subset_valid): n/t with 1 <= n <= t, a percentage above 0 and at most 100, or a size with a
 * k/m/g/t suffix. Anything else is a usage error here, before any host is contacted.
 */
export function parseSubset(text: string): string {
  const part = /^([1-9]\d{0,5})\/([1-9]\d{0,5})$/.exec(text);
  if (part !== null && Number(part[1]) <= Number(part[2])) return text;
  const percent = /^(\d{1,3}(?:\.\d{1,3})?)%$/.exec(text);
  if (percent !== null && Number(percent[1]) > 0 && Number(percent[1]) <= 100) return text;
  if (/^[1-9]\d{0,12}[kKmMgGtT]$/.test(text)) return text;
  throw new UsageError(
    `--read-data-subset must be n/t (3/7, n from 1 to t), a percentage (10%, 2.5%, up to 100%) or a size (500M, 2G), got "${text}"`,
  );
}
