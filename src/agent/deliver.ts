// Agent delivery: the bootstrap that root runs, and what the controller writes to its stdin.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { HostError } from "../errors.js";

const AGENT_PATH = fileURLToPath(new URL("../../agents/rlvm-agent.sh", import.meta.url));

export interface AgentFile {
  bytes: Buffer;
  sha256: string;
}

let cached: AgentFile | undefined;

/** The agent shipped with this controller, read once per run. */
export function loadAgent(): AgentFile {
  if (cached === undefined) {
    const bytes = readFileSync(AGENT_PATH);
    cached = { bytes, sha256: createHash("sha256").update(bytes).digest("hex") };
  }
  return cached;
}

export const BOOTSTRAP_EXIT = { unsafeRunDir: 97, checksum: 98, noAgent: 99 } as const;

export const READY_LINE = "rlvm-fleet-bootstrap-ready";

/**
 * Runs as root (or the login user under become = none), with its data as positional arguments only.
 * It makes a private run directory (per run and inventory host: test fleets share one kernel), skips stdin up to the start marker (so a sudo password that sudo
 * did not consume is discarded), writes exactly the agent's length of bytes there, checks the sha256
 * it was given, runs it, and removes the directory however the agent ends.
 *
 * Every host of a run pays for each program started here (a fork and an exec, as root, on a machine
 * that may run the agent for many hosts at once): builtins wherever they do the job ($EUID, not
 * `id -u`; a here-string, not a pipe from printf), and /run/rlvm-fleet is created only when missing.
 *
 * Its own programs (mkdir, chmod, mktemp, head, sha256sum, rm) come from PATH=/usr/sbin:/usr/bin:/sbin:/bin,
 * never from the login user's PATH. The agent runs with the bash running this script, and gets the
 * PATH this script was started with (sudo's secure_path): it checks each tool's owner and mode itself.
 */
const BOOTSTRAP = `set -eu
umask 077
agent_path=\${PATH-}
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
run_id=$1 sha=$2 length=$3 host=$4
trap 'exit 130' INT
trap 'exit 143' TERM HUP
if [ "$EUID" = 0 ]; then
  [ -d /run/rlvm-fleet ] || mkdir -p /run/rlvm-fleet
  if [ -L /run/rlvm-fleet ] || [ ! -O /run/rlvm-fleet ]; then
    echo "rlvm-fleet: /run/rlvm-fleet is not a directory owned by root" >&2; exit ${BOOTSTRAP_EXIT.unsafeRunDir}
  fi
  chmod 0755 /run/rlvm-fleet
  dir=/run/rlvm-fleet/$run_id.$host
  mkdir -m 0700 "$dir"
else
  dir=$(mktemp -d "\${TMPDIR:-/tmp}/rlvm-fleet.$run_id.$host.XXXXXX")
fi
trap 'rm -rf -- "$dir"' EXIT
printf '%s\\n' "$host" > "$dir/host"
echo "${READY_LINE} $run_id"
while IFS= read -r line; do
  if [ "$line" = "RLVM-FLEET-AGENT $run_id" ]; then break; fi
done
[ "\${line-}" = "RLVM-FLEET-AGENT $run_id" ] || { echo "rlvm-fleet: stdin ended before the agent" >&2; exit ${BOOTSTRAP_EXIT.noAgent}; }
head -c "$length" > "$dir/rlvm-agent.sh"
if ! sha256sum -c --status <<< "$sha  $dir/rlvm-agent.sh"; then
  echo "rlvm-fleet: the agent's sha256 does not match; refusing to run it" >&2; exit ${BOOTSTRAP_EXIT.checksum}
fi
PATH=$agent_path "$BASH" "$dir/rlvm-agent.sh" "$dir"
`;

/** argv of the bootstrap: every piece of data is a separate argument, never part of the script. */
export function bootstrapArgv(runId: string, host: string, agent: AgentFile): string[] {
  return [
    "bash",
    "-c",
    BOOTSTRAP,
    "rlvm-fleet-bootstrap",
    runId,
    agent.sha256,
    String(agent.bytes.length),
    host,
  ];
}

/**
 * What follows the (optional) password on stdin: the start marker, the agent (none for the installed
 * agent, which is on the host already), then the plan, as pieces to write one after the other. The
 * agent's bytes are the one buffer every host shares: a copy per host would hold some 80 KB per
 * running host for the whole run.
 */
export function agentPayload(runId: string, agent: AgentFile | null, planLines: readonly string[]): Buffer[] {
  const plan = Buffer.from(`${planLines.join("\n")}\n`);
  const marker = Buffer.from(`RLVM-FLEET-AGENT ${runId}\n`);
  return agent === null ? [marker, plan] : [marker, agent.bytes, plan];
}

/** Why the bootstrap ended without running the agent, from its exit status; null when it did not say. */
export function diagnoseBootstrapExit(exitCode: number | null, stderr: string): HostError | null {
  const tail = stderr.trim().split("\n").slice(-5).join(" | ");
  switch (exitCode) {
    case BOOTSTRAP_EXIT.checksum:
      return new HostError(
        "agent_checksum",
        "the agent's sha256 did not match on the host; it was not run",
        "the upload was corrupted or tampered with; run again, and check the path between controller and host",
      );
    case BOOTSTRAP_EXIT.unsafeRunDir:
      return new HostError(
        "agent_failed",
        `the run directory is not safe: ${tail}`,
        "/run/rlvm-fleet must be a directory owned by root",
      );
    case BOOTSTRAP_EXIT.noAgent:
      return new HostError(
        "agent_failed",
        "the bootstrap's stdin ended before the agent arrived; nothing ran",
        "the controller stopped or the connection broke before the agent was sent; run again",
      );
    case 127:
      if (/command not found|No such file/.test(stderr))
        return new HostError(
          "agent_failed",
          `a required program is missing: ${tail}`,
          "the host needs bash, sudo and coreutils",
        );
  }
  return null;
}
