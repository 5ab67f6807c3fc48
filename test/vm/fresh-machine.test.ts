// `npm ci && npm run demo` on a fresh Debian machine (issue 16, point 7): a minimal bookworm tree
// (mmdebstrap minbase: no sshd, no ssh-keygen, no restic) entered with chroot, in a private mount and
// PID namespace. This machine's node and npm are bound in (Debian 12 has no Node.js 20), and so is its
// CA bundle for npm's registry, as a machine on this network would have it. Nothing else is prepared:
// the demo installs its packages itself. In the VM tier: it needs what that tier's image build needs
// (root, mmdebstrap, Debian's archive).
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { describeOrSkip } from "../helpers/skip-or-fail.js";
import { findExecutable, isRoot } from "../integration/harness/prerequisites.js";
import { runCommand } from "../integration/harness/run-command.js";

const ROOT = join(import.meta.dirname, "../..");
const NODE = process.execPath;
const NPM_DIR = join(NODE, "../../lib/node_modules/npm");
const CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

function missing(): string | undefined {
  if (!isRoot()) return "the fresh-machine demo test needs root (mmdebstrap, chroot)";
  if (findExecutable("mmdebstrap") === undefined)
    return "mmdebstrap is not installed (apt-get install mmdebstrap)";
  if (!existsSync(join(NPM_DIR, "bin/npm-cli.js")))
    return `npm is not where node's prefix puts it (${NPM_DIR})`;
  return undefined;
}

/** Binds node, npm and the CA bundle into the tree, mounts /proc, /dev, /run and /tmp, then runs SCRIPT. */
const ENTER = `set -euo pipefail
root=$1 script=$2
mount --bind "$NODE" "$root/usr/bin/node"
mount --bind -o ro "$NPM_DIR" "$root/usr/lib/node_modules/npm"
mount --bind -o ro "$CA_BUNDLE" "$root/etc/host-ca.crt"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount -t tmpfs tmpfs "$root/run"
mount -t tmpfs tmpfs "$root/tmp"
exec chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
  HOME=/root NODE_EXTRA_CA_CERTS=/etc/host-ca.crt NO_COLOR=1 /bin/bash -c "$script"
`;

describeOrSkip("vm", "a fresh Debian machine", missing(), () => {
  const base = mkdtempSync(join(tmpdir(), "rlvm-fleet-fresh-"));
  const tree = join(base, "root");
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  const enter = (script: string) =>
    runCommand(
      "unshare",
      ["--mount", "--pid", "--fork", "--propagation", "private", "bash", "-c", ENTER, "enter", tree, script],
      {
        env: { ...process.env, NODE, NPM_DIR, CA_BUNDLE },
        timeoutMs: 600_000,
      },
    );

  it("npm ci && npm run demo: the demo installs openssh-server and restic itself, as root, and runs", async () => {
    execFileSync(
      "mmdebstrap",
      ["--variant=minbase", "--quiet", "bookworm", tree, "http://deb.debian.org/debian"],
      {
        stdio: "inherit",
      },
    );
    for (const tool of ["usr/sbin/sshd", "usr/bin/ssh-keygen", "usr/bin/restic", "usr/bin/node"]) {
      expect(existsSync(join(tree, tool)), `a fresh tree has no ${tool}`).toBe(false);
    }
    // The checkout as git tracks it (no node_modules, no dist), and the mount points for node and npm.
    execFileSync(
      "bash",
      ["-c", 'mkdir "$1/src" && git ls-files -z | tar --null -T - -cf - | tar -x -C "$1/src"', "copy", tree],
      {
        cwd: ROOT,
        stdio: "inherit",
      },
    );
    execFileSync("bash", [
      "-c",
      'mkdir -p "$1/usr/lib/node_modules/npm" && touch "$1/usr/bin/node" "$1/etc/host-ca.crt" && ln -s ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/bin/npm"',
      "prepare",
      tree,
    ]);

    // Not root: the demo installs nothing and names the one command.
    const user = await enter(
      "cd /src && npm ci --no-audit --no-fund >/tmp/npm-ci.log 2>&1 || { tail -30 /tmp/npm-ci.log; exit 99; }; " +
        "setpriv --reuid 65534 --regid 65534 --clear-groups node bin/rlvm-fleet.js demo --dir /tmp/demo-user",
    );
    expect(user.code, user.stdout + user.stderr).toBe(2);
    expect(user.stderr).toContain("the demo needs sshd, ssh-keygen, restic, which are not installed");
    expect(user.stderr).toContain("sudo apt-get install openssh-server openssh-client restic");
    expect(existsSync(join(tree, "usr/sbin/sshd"))).toBe(false);

    // Root: it installs them, says so, and the whole demo runs.
    const root = await enter("cd /src && npm run demo -- --dir /tmp/demo");
    expect(root.code, root.stdout + root.stderr).toBe(0);
    expect(root.stdout).toContain(
      "Installing the Debian packages openssh-server openssh-client restic (apt-get update; apt-get install openssh-server openssh-client restic)",
    );
    expect(root.stdout).toContain("Installed openssh-server openssh-client restic.");
    for (const command of ["check", "backup", "status", "prune"]) {
      expect(root.stdout).toMatch(new RegExp(`RECAP ${command} 3 hosts: ok=3 partial=0 failed=0`));
    }
    for (const tool of ["usr/sbin/sshd", "usr/bin/ssh-keygen", "usr/bin/restic"]) {
      expect(existsSync(join(tree, tool)), tool).toBe(true);
    }
  }, 900_000);
});
