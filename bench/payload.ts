// The work every runner other than rlvm-fleet executes on each host, as root: one self-contained bash
// script that does what rlvm-fleet's bootstrap and agent do for `ping` (a private directory, the agent
// written into it, the ping plan on its stdin, the agent run, the directory removed), and fails unless
// the agent's events came out with an ok result.
//
// The agent's bytes ride at the end of the script, after the line that runs it, and are copied out
// with one `head -c` (script fed on stdin: `bash -s`) or `tail -c` (script run from a file: Ansible's
// `script` module). Not with a heredoc: bash reads a script that arrives on a pipe one byte per
// read(2) (so that commands it starts can read the rest of stdin), which for an 82 KB agent costs every
// host some 80,000 system calls that rlvm-fleet's bootstrap (`head -c`) does not pay either. With the
// agent in a heredoc the stdin runners would be slower for a reason that has nothing to do with them.
import { readFileSync } from "node:fs";
import { agentPlan } from "../src/agent/plan-lines.js";
import type { HostPlan } from "../src/plan/build-plan.js";

export const AGENT_PATH = new URL("../agents/rlvm-agent.sh", import.meta.url);

/**
 * The `ping` plan, written by the controller's own src/agent/plan-lines.ts (so it never drifts from
 * the plan format the agent reads): ping reads only the host's name of its plan.
 */
export function pingPlanLines(runId: string, host: string): string[] {
  const hostPlan = { host: { name: host, restic_env_file: null }, jobs: [] } as unknown as HostPlan;
  return agentPlan(hostPlan, "ping", runId).lines;
}

const PLAN_DELIMITER = "RLVM_BENCH_PLAN";

export function buildPayload(runId: string, agentPath: URL | string = AGENT_PATH): Buffer {
  const agent = readFileSync(agentPath);
  // One payload for every host, so the plan's host name is the same everywhere (the agent only echoes it).
  const plan = pingPlanLines(runId, "bench");
  if (plan.includes(PLAN_DELIMITER)) throw new Error("the plan contains the heredoc delimiter");
  const script = `#!/bin/bash
# rlvm-fleet bench payload: the agent's ping, run as root. The agent's ${agent.length} bytes follow the
# last line of this script.
set -euo pipefail
src=\${BASH_SOURCE[0]-}
main() {
  umask 077
  local out
  dir=$(mktemp -d /tmp/rlvm-bench.XXXXXX)
  trap 'rm -rf -- "$dir"' EXIT
  if [ -n "$src" ]; then tail -c ${agent.length} -- "$src"; else head -c ${agent.length}; fi > "$dir/rlvm-agent.sh"
  out=$(bash "$dir/rlvm-agent.sh" "$dir" 2>"$dir/stderr" <<'${PLAN_DELIMITER}'
${plan.join("\n")}
${PLAN_DELIMITER}
  ) || true
  printf '%s\\n' "$out"
  case $out in
    *'"event":"agent_start"'*'"event":"result","code":null'*) ;;
    *) echo "rlvm-bench: the agent's events did not come out:" >&2; cat "$dir/stderr" >&2; exit 1 ;;
  esac
}
main; exit
`;
  return Buffer.concat([Buffer.from(script), agent]);
}
