// `install-agent`: the least-privilege mode's rollout. Installs the agent, a sudo rule for exactly it
// and the repository allow-list on every selected host, through the bootstrap (the broad rule that is
// still in place, or a root login for this one command).
import { SUDO_USER } from "../../agent/installed-agent.js";
import { UsageError } from "../../errors.js";
import type { FleetPlan } from "../../plan/build-plan.js";
import type { CliIo } from "../io.js";
import { fleetReportOptions, type FleetOptions } from "../options.js";
import { runFleetCommand, type FleetStyles } from "../run-fleet-command.js";

export interface InstallAgentOptions extends FleetOptions {
  dryRun?: boolean;
  rootLogin?: boolean;
  anyRepository?: boolean;
}

export function installAgentCommand(
  options: InstallAgentOptions,
  io: CliIo,
  style: FleetStyles,
): Promise<number> {
  const reportOptions = { ...fleetReportOptions(options), dry_run: options.dryRun === true };
  return runFleetCommand("install-agent", reportOptions, options, io, style, {
    install: { rootLogin: options.rootLogin === true, anyRepository: options.anyRepository === true },
    refuse: refuseRootLogins,
  });
}

/** The rule is for the inventory's login user: one a sudoers rule can name, and never root. */
function refuseRootLogins(plan: FleetPlan): void {
  const unfit = plan.hosts.filter(({ host }) => !SUDO_USER.test(host.user) || host.user === "root");
  if (unfit.length === 0) return;
  throw new UsageError(
    `install-agent: ${unfit.map(({ host }) => `host ${host.name} logs in as "${host.user}"`).join(", ")}; the sudo rule it writes is for a login user other than root, named with letters, digits, _ and -`,
    {
      hint: "set user in the inventory to the login user the agent is for; --root-login logs in as root for the install itself",
    },
  );
}
