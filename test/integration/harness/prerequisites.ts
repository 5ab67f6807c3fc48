import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

export interface MissingPrerequisite {
  /** Program (or platform feature) that was not found. */
  readonly tool: string;
  /** Debian/Ubuntu package that provides it, for `apt-get install`. */
  readonly debianPackage: string;
}

interface Prerequisite {
  readonly tool: string;
  readonly debianPackage: string;
  readonly rootModeOnly?: boolean;
}

const PREREQUISITES: readonly Prerequisite[] = [
  { tool: "sshd", debianPackage: "openssh-server" },
  { tool: "ssh", debianPackage: "openssh-client" },
  { tool: "ssh-keygen", debianPackage: "openssh-client" },
  { tool: "sudo", debianPackage: "sudo" },
  { tool: "restic", debianPackage: "restic" },
  { tool: "visudo", debianPackage: "sudo", rootModeOnly: true },
  { tool: "useradd", debianPackage: "passwd", rootModeOnly: true },
  { tool: "usermod", debianPackage: "passwd", rootModeOnly: true },
  { tool: "chpasswd", debianPackage: "passwd", rootModeOnly: true },
];

// Debian does not put the sbin directories on an unprivileged user's PATH, but sshd lives there.
const SBIN_DIRECTORIES = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

/** Absolute path of an executable on PATH or in the sbin directories, or undefined. */
export function findExecutable(name: string): string | undefined {
  const searchPath = [...(process.env["PATH"] ?? "").split(delimiter), ...SBIN_DIRECTORIES];
  for (const directory of searchPath) {
    if (!directory.startsWith("/")) continue;
    const candidate = join(directory, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here; keep looking.
    }
  }
  return undefined;
}

export function requireExecutable(name: string): string {
  const path = findExecutable(name);
  if (path === undefined) throw new Error(`${name} not found on PATH or in ${SBIN_DIRECTORIES.join(", ")}`);
  return path;
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** Why the cases that need the test users (sudo, a sudo password) cannot run here, or undefined as root. */
export function needsRoot(): string | undefined {
  return isRoot() ? undefined : "creating the sudo test users needs root: run this tier as root";
}

/** What the integration tests need and this machine lacks; empty when everything is there. */
export function checkPrerequisites(): MissingPrerequisite[] {
  const missing: MissingPrerequisite[] = [];
  if (process.platform !== "linux") {
    // The fleet binds 127.0.0.2, 127.0.0.3, ...: only Linux routes all of 127/8 to lo out of the box.
    missing.push({ tool: `Linux (this is ${process.platform})`, debianPackage: "-" });
    return missing;
  }
  const root = isRoot();
  for (const prerequisite of PREREQUISITES) {
    if (prerequisite.rootModeOnly && !root) continue;
    if (findExecutable(prerequisite.tool) === undefined) {
      missing.push({ tool: prerequisite.tool, debianPackage: prerequisite.debianPackage });
    }
  }
  return missing;
}

export function describeMissingPrerequisites(missing: readonly MissingPrerequisite[]): string {
  const tools = missing.map((item) => item.tool).join(", ");
  const packages = [...new Set(missing.map((item) => item.debianPackage).filter((name) => name !== "-"))];
  const install = packages.length > 0 ? `; install with: apt-get install ${packages.join(" ")}` : "";
  return `integration test prerequisites missing: ${tools}${install}`;
}

/** Throws with an install hint if anything is missing. */
export function requirePrerequisites(): void {
  const missing = checkPrerequisites();
  if (missing.length > 0) throw new Error(describeMissingPrerequisites(missing));
}
