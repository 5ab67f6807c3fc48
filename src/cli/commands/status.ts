// `status`: the latest snapshot per host, job and repository, with its age; `--max-age` marks stale.
import { parseDuration } from "../../duration.js";
import { UsageError } from "../../errors.js";
import type { CliIo } from "../io.js";
import { fleetReportOptions, type FleetOptions, type JobFilterOptions } from "../options.js";
import { runFleetCommand, type FleetStyles } from "../run-fleet-command.js";

export interface StatusOptions extends FleetOptions, JobFilterOptions {
  maxAge?: string;
}

export function statusCommand(options: StatusOptions, io: CliIo, style: FleetStyles): Promise<number> {
  const common = fleetReportOptions(options);
  return runFleetCommand(
    "status",
    { ...common, max_age_s: maxAgeSeconds(options.maxAge) },
    options,
    io,
    style,
  );
}

function maxAgeSeconds(text: string | undefined): number | null {
  if (text === undefined) return null;
  const seconds = parseDuration(text);
  if (seconds === undefined)
    throw new UsageError(`--max-age must be a duration such as 26h, 7d or 90m, got "${text}"`);
  return seconds;
}
