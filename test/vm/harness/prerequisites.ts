// What the VM tier needs on this machine, and the skip-or-fail rule of DESIGN §9.
import { describeOrSkip } from "../../helpers/skip-or-fail.js";
import { findExecutable, isRoot } from "../../integration/harness/prerequisites.js";
import { cachedImageReady, SUITES, type Suite } from "./image.js";

interface Tool {
  readonly tool: string;
  readonly debianPackage: string;
  /** Only needed to build the image, not to boot a cached one. */
  readonly buildOnly?: boolean;
}

const TOOLS: readonly Tool[] = [
  { tool: "qemu-system-x86_64", debianPackage: "qemu-system-x86" },
  { tool: "qemu-img", debianPackage: "qemu-utils" },
  { tool: "ssh", debianPackage: "openssh-client" },
  { tool: "ssh-keygen", debianPackage: "openssh-client" },
  { tool: "setpriv", debianPackage: "util-linux" },
  { tool: "mmdebstrap", debianPackage: "mmdebstrap", buildOnly: true },
  { tool: "mkfs.ext4", debianPackage: "e2fsprogs", buildOnly: true },
  { tool: "chroot", debianPackage: "coreutils", buildOnly: true },
];

/** Why the VM tier cannot run the guests of these suites here, or undefined when it can. */
export function missingVmPrerequisites(suites: readonly Suite[] = SUITES): string | undefined {
  if (process.platform !== "linux") return `the VM tier needs Linux (this is ${process.platform})`;
  const cached = cachedImageReady(suites);
  const missing = TOOLS.filter((t) => !(cached && t.buildOnly) && findExecutable(t.tool) === undefined);
  const problems: string[] = [];
  if (missing.length > 0) {
    const packages = [...new Set(missing.map((t) => t.debianPackage))];
    problems.push(`missing ${missing.map((t) => t.tool).join(", ")} (apt-get install ${packages.join(" ")})`);
  }
  if (!cached && !isRoot()) {
    problems.push("building the guest image (mmdebstrap, chroot) needs root, and no cached image exists");
  }
  return problems.length > 0 ? `VM tier prerequisites: ${problems.join("; ")}` : undefined;
}

/**
 * `describe` for the VM tier: skipped with a printed reason when the machine cannot run it, a failure
 * instead where RLVM_REQUIRE_VM=1 (CI).
 */
export function describeVm(name: string, suites: readonly Suite[], body: () => void): void {
  describeOrSkip("vm", name, missingVmPrerequisites(suites), body);
}
