// `ping`: connect, deliver the agent, run it as root and report its facts.
import type { CliIo } from "../io.js";
import { fleetReportOptions, type FleetOptions } from "../options.js";
import { runFleetCommand, type FleetStyles } from "../run-fleet-command.js";

export type PingOptions = FleetOptions;

export function pingCommand(options: PingOptions, io: CliIo, style: FleetStyles): Promise<number> {
  return runFleetCommand("ping", fleetReportOptions(options), options, io, style);
}
