// The demo's tools (sshd, ssh-keygen, restic). As root on Debian the demo installs the missing
// packages itself, saying so, so that `npm ci && npm run demo` works on a fresh machine; anywhere
// else it names the one command to run.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { UsageError } from "../errors.js";
import { findDemoTools, findExecutable, type DemoTools } from "./local-fleet.js";

export interface DemoToolsContext {
  env: Record<string, string | undefined>;
  /** Running as root (the demo may then install packages). */
  root: boolean;
  say: (text: string) => void;
}

const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export function ensureDemoTools(context: DemoToolsContext): DemoTools {
  const path = context.env["PATH"];
  const found = findDemoTools(path);
  if (found.missing === null) return found.tools;
  const { names, packages } = found.missing;
  const needs = `the demo needs ${names.join(", ")}, which ${names.length === 1 ? "is" : "are"} not installed`;
  const aptGet = findExecutable("apt-get", path);
  if (aptGet === null || !existsSync("/etc/debian_version")) {
    throw new UsageError(needs, {
      hint: "install OpenSSH's server and client (sshd, ssh-keygen) and restic with your system's package manager",
    });
  }
  const list = packages.join(" ");
  if (!context.root) {
    throw new UsageError(needs, {
      hint: `install ${packages.length === 1 ? "it" : "them"} with: sudo apt-get install ${list}   (or run the demo as root: it installs them itself)`,
    });
  }
  context.say(
    `The ${needs.slice(4)}.\nInstalling the Debian packages ${list} (apt-get update; apt-get install ${list}) ...\n`,
  );
  for (const args of [
    ["update", "-q"],
    ["install", "-y", "-q", "--no-install-recommends", ...packages],
  ]) {
    const result = spawnSync(aptGet, args, {
      encoding: "utf8",
      // dpkg's maintainer scripts need the sbin directories, which a login PATH may lack.
      env: { ...context.env, PATH: SYSTEM_PATH, DEBIAN_FRONTEND: "noninteractive" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    if (result.status !== 0) {
      const output = `${result.stderr ?? ""}\n${result.stdout ?? ""}`.trim().split("\n");
      const reason = result.error?.message ?? output.find((l) => /^E: /.test(l)) ?? output.at(-1) ?? "";
      throw new UsageError(`apt-get ${args[0]} failed (exit ${result.status ?? "none"}): ${reason}`, {
        hint: `install the packages by hand: apt-get install ${list}; then run the demo again`,
      });
    }
  }
  const after = findDemoTools(path);
  if (after.missing !== null) {
    throw new UsageError(
      `after apt-get install ${list}, ${after.missing.names.join(", ")} still cannot be found`,
      {
        hint: "check PATH and the packages' files (dpkg -L openssh-server restic)",
      },
    );
  }
  context.say(`Installed ${list}.\n`);
  // Debian's postinst enables and starts the system's own sshd where systemd runs; the demo starts its
  // own sshd processes on loopback and never uses that one.
  if (packages.includes("openssh-server") && existsSync("/run/systemd/system")) {
    context.say(
      "Note: Debian starts its ssh service (port 22) when it installs openssh-server; the demo does not use it. Stop it with: systemctl disable --now ssh\n",
    );
  }
  return after.tools;
}
