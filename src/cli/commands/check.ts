// `check`: the preflight of every selected host; changes nothing.
import type { CliIo } from "../io.js";
import { fleetReportOptions, type FleetOptions, type JobFilterOptions } from "../options.js";
import { runFleetCommand, type FleetStyles } from "../run-fleet-command.js";

export interface CheckOptions extends FleetOptions, JobFilterOptions {}

export function checkCommand(options: CheckOptions, io: CliIo, style: FleetStyles): Promise<number> {
  return runFleetCommand("check", fleetReportOptions(options), options, io, style);
}
