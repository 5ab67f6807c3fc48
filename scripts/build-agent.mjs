#!/usr/bin/env node
// Build agents/rlvm-agent.sh from the modules in agents/src/ (npm run build). The agent goes to a host
// as one file, so that a truncated upload cannot run half of it (its last line is `main "$@"`).
//
//   node scripts/build-agent.mjs           write agents/rlvm-agent.sh
//   node scripts/build-agent.mjs --check   exit 1 if the committed file differs from the build
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The modules, in the order they are concatenated: what others use comes first, main last. */
export const MODULES = [
  "prelude.sh",
  "json.sh",
  "helpers.sh",
  "exec.sh",
  "plan.sh",
  "facts.sh",
  "restic-version.sh",
  "lvm.sh",
  "checks.sh",
  "lifecycle.sh",
  "cmd-ping.sh",
  "cmd-preflight.sh",
  "cmd-backup.sh",
  "cmd-prune.sh",
  "cmd-status.sh",
  "cmd-verify.sh",
  "installed.sh",
  "cmd-install.sh",
  "main.sh",
];

export const SRC_DIR = fileURLToPath(new URL("../agents/src/", import.meta.url));
export const AGENT_PATH = fileURLToPath(new URL("../agents/rlvm-agent.sh", import.meta.url));
/**
 * The agent is one compound command: bash parses a `{ ... }` group to its closing brace before it runs
 * any of it, so a file cut anywhere runs nothing, not even a top-level `readonly` or `declare` that a
 * cut turned into one that prints every variable.
 */
export const GROUP_LINES = [
  "# One compound command, parsed to its closing brace before any of it runs: a truncated file runs nothing.",
  "{",
];
export const GENERATED_LINE =
  "# This file is generated from agents/src/ by scripts/build-agent.mjs: edit those, then npm run build.";

/** The agent's text: the modules joined by a blank line, the generated mark after the shebang. */
export function buildAgent(srcDir = SRC_DIR) {
  const texts = MODULES.map((name) => {
    const text = readFileSync(`${srcDir}${name}`, "utf8");
    if (!text.endsWith("\n") || text.endsWith("\n\n")) {
      throw new Error(`agents/src/${name} must end with exactly one newline`);
    }
    return text;
  });
  const [prelude, ...rest] = texts;
  const newline = prelude.indexOf("\n");
  if (!prelude.startsWith("#!")) throw new Error("agents/src/prelude.sh must start with its shebang");
  const agent = [
    `${prelude.slice(0, newline + 1)}${GENERATED_LINE}\n${GROUP_LINES.join("\n")}\n${prelude.slice(newline + 1)}`,
    ...rest,
  ].join("\n");
  if (!agent.endsWith('\nmain "$@"\n')) throw new Error('agents/src/main.sh must end with main "$@"');
  return `${agent}}\n`;
}

function main(argv) {
  const agent = buildAgent();
  if (argv.includes("--check")) {
    let committed = "";
    try {
      committed = readFileSync(AGENT_PATH, "utf8");
    } catch {
      // missing: stale like any other difference
    }
    if (committed !== agent) {
      console.error(
        "agents/rlvm-agent.sh is not the build of agents/src/: run `npm run build` (or node scripts/build-agent.mjs) and commit it",
      );
      return 1;
    }
    return 0;
  }
  writeFileSync(AGENT_PATH, agent);
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = main(process.argv.slice(2));
}
