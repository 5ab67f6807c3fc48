// The least-privilege mode: the agent installed on the host (rlvm-fleet install-agent), and the check
// that the installed file is the agent this controller ships before sudo runs it.
import { HostError } from "../errors.js";
import { VERSION } from "../version.js";
import type { AgentFile } from "./deliver.js";

/** The directory and file agents/src/prelude.sh installs to (INSTALL_DIR, INSTALLED_AGENT). */
export const INSTALL_DIR = "/usr/local/libexec/rlvm-fleet";
export const INSTALLED_AGENT = `${INSTALL_DIR}/rlvm-agent-${VERSION}.sh`;
/** The repositories the installed agent may use for an inventory host (agents/src/installed.sh). */
export function allowListPath(host: string): string {
  return `/etc/rlvm-fleet/${host}.repositories`;
}

/** A login user a sudoers rule can name, and a drop-in can be named after (agents/src/prelude.sh). */
export const SUDO_USER = /^[A-Za-z_][A-Za-z0-9_-]{0,31}$/;

/** The drop-in install-agent writes for a login user (a name without a dot: sudo skips those). */
export function sudoersDropIn(user: string): string {
  return `/etc/sudoers.d/rlvm-fleet-${user}`;
}

/** The one command the drop-in allows, as sudo runs it: `sudo -n` + this argv. */
export function installedAgentArgv(runId: string, host: string): string[] {
  return [INSTALLED_AGENT, "installed", runId, host];
}

/** The installed file, and every directory above it: each must be root's and not group/other-writable. */
const CHAIN = [INSTALLED_AGENT, INSTALL_DIR, "/usr/local/libexec", "/usr/local", "/usr", "/"];

/**
 * Run as the login user, before sudo: the owner, mode and type of the installed agent and of each
 * directory above it, then its sha256. Anyone who could replace the file or a directory on its path
 * between this check and sudo's exec would fail the owner check; only root can.
 */
const CHECK = `PATH=/usr/sbin:/usr/bin:/sbin:/bin
for p in "$@"; do stat -c '%u %a %F' -- "$p" 2>/dev/null || echo "missing"; done
sha256sum -- "$1" 2>/dev/null || echo "unreadable"
`;

export function installedCheckArgv(): string[] {
  return ["bash", "-c", CHECK, "rlvm-fleet-check", ...CHAIN];
}

const runInstall = (host: string) =>
  `run 'rlvm-fleet install-agent --inventory … --limit ${host}' (with the broad sudo rule or --root-login)`;

/** Why the installed agent must not run, from the check's output; null when it is this controller's. */
export function installedAgentProblem(output: string, agent: AgentFile, host: string): HostError | null {
  const lines = output.split("\n");
  const problem = (message: string, hint = runInstall(host)) =>
    new HostError("agent_not_installed", message, hint);
  for (const [i, path] of CHAIN.entries()) {
    const line = lines[i] ?? "";
    if (line === "missing") {
      return i === 0
        ? problem(`the installed agent ${INSTALLED_AGENT} is missing (agent = "installed")`)
        : problem(`${path} is missing, so the installed agent ${INSTALLED_AGENT} is too`);
    }
    const match = /^(\d+) ([0-7]+) (.+)$/.exec(line);
    if (match === null) return problem(`cannot check ${path}: ${JSON.stringify(line)}`);
    const [, uid, mode, type] = match;
    const want = i === 0 ? "regular file" : "directory";
    const refused =
      type !== want
        ? `is a ${type}, not a ${want}`
        : uid !== "0"
          ? `is owned by uid ${uid}, not root`
          : (Number.parseInt(mode ?? "", 8) & 0o022) !== 0
            ? `has mode ${mode}: group or others may write to it`
            : null;
    if (refused !== null)
      return problem(
        `${path} ${refused}; the installed agent is not run`,
        `make it root's and not writable by group or others, then ${runInstall(host)}`,
      );
  }
  const sha = /^([0-9a-f]{64}) /.exec(lines[CHAIN.length] ?? "")?.[1];
  if (sha === undefined) return problem(`cannot read the installed agent ${INSTALLED_AGENT}`);
  if (sha !== agent.sha256)
    return problem(
      `the installed agent ${INSTALLED_AGENT} is not this controller's (sha256 ${sha}, expected ${agent.sha256}); it was not run`,
      `if you did not change it, someone did: find out who, then ${runInstall(host)}`,
    );
  return null;
}
