import { randomBytes } from "node:crypto";
import { chmod, link, mkdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { requireExecutable } from "./prerequisites.js";
import { runCommand, runCommandOrThrow } from "./run-command.js";

// Root mode only. Everything here is idempotent and left in place between runs, because creating users is
// slow and several test files may provision concurrently. Debian already has a system user "backup".

/** Login user with passwordless sudo (`become = "sudo"`). */
export const PASSWORDLESS_SUDO_USER = "rlvmtest";
/** Login user whose sudo asks for a password. */
export const PASSWORD_SUDO_USER = "rlvmpw";
/**
 * Login user without any sudo rule of the harness's: the least-privilege mode's (install-agent gives it
 * its one rule, /etc/sudoers.d/rlvm-fleet-rlvmlp).
 */
export const RESTRICTED_USER = "rlvmlp";

const SUDOERS_DIRECTORY = "/etc/sudoers.d";
// Root-only: the password of PASSWORD_SUDO_USER must survive between runs (parallel test files share the
// user), but must not be a constant in the repository while the user exists on a machine with a real sshd.
const STATE_DIRECTORY = "/var/lib/rlvm-fleet-test";
const PASSWORD_STATE_FILE = join(STATE_DIRECTORY, `${PASSWORD_SUDO_USER}.json`);
// sshd's privilege separation directory: sshd running as root refuses to start without it, and on systems
// without systemd nothing else creates it.
const SSHD_PRIVSEP_DIRECTORY = "/run/sshd";

export interface TestUsers {
  readonly loginUser: string;
  readonly passwordUser: string;
  readonly sudoPassword: string;
}

interface PasswordState {
  readonly password: string;
  /** The shadow hash chpasswd produced; if /etc/shadow no longer has it, the password is set again. */
  readonly shadowHash: string;
}

let provisioning: Promise<TestUsers> | undefined;

/** Creates (once per process) the test users, their sudoers drop-ins and /run/sshd. Requires root. */
export function provisionTestUsers(): Promise<TestUsers> {
  provisioning ??= provision().catch((error: unknown) => {
    provisioning = undefined;
    throw error;
  });
  return provisioning;
}

async function provision(): Promise<TestUsers> {
  await mkdir(SSHD_PRIVSEP_DIRECTORY, { recursive: true, mode: 0o755 });
  await ensureUser(PASSWORDLESS_SUDO_USER);
  await ensureUser(PASSWORD_SUDO_USER);
  await ensurePubkeyLoginAllowed(PASSWORDLESS_SUDO_USER);
  await ensureUser(RESTRICTED_USER);
  await ensurePubkeyLoginAllowed(RESTRICTED_USER);
  const sudoPassword = await ensurePassword(PASSWORD_SUDO_USER);
  await installSudoersDropIn(PASSWORDLESS_SUDO_USER, `${PASSWORDLESS_SUDO_USER} ALL=(root) NOPASSWD: ALL\n`);
  await installSudoersDropIn(PASSWORD_SUDO_USER, `${PASSWORD_SUDO_USER} ALL=(root) ALL\n`);
  return { loginUser: PASSWORDLESS_SUDO_USER, passwordUser: PASSWORD_SUDO_USER, sudoPassword };
}

async function userExists(name: string): Promise<boolean> {
  const result = await runCommand("getent", ["passwd", name]);
  return result.code === 0;
}

async function ensureUser(name: string): Promise<void> {
  if (await userExists(name)) return;
  const result = await runCommand(requireExecutable("useradd"), ["-m", "-s", "/bin/bash", name]);
  // Exit status 9: another test process created it in the meantime.
  if (result.code !== 0 && !(result.code === 9 && (await userExists(name)))) {
    throw new Error(`useradd ${name} failed: ${result.stderr.trim()}`);
  }
}

async function readShadowHash(name: string): Promise<string> {
  const result = await runCommandOrThrow("getent", ["shadow", name]);
  return result.stdout.split(":")[1] ?? "";
}

async function retryWhileShadowLocked(run: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await run();
      return;
    } catch (error) {
      // usermod/chpasswd fail instead of waiting when another process holds the /etc/shadow lock.
      if (attempt >= 10 || !/lock/i.test(String(error))) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
    }
  }
}

/**
 * useradd leaves the password field as "!", which sshd treats as a locked account when UsePAM is off and
 * then refuses even public key logins. "*" means "no password" without meaning "locked".
 */
async function ensurePubkeyLoginAllowed(name: string): Promise<void> {
  const hash = await readShadowHash(name);
  if (hash !== "" && !hash.startsWith("!")) return;
  await retryWhileShadowLocked(async () => {
    await runCommandOrThrow(requireExecutable("usermod"), ["-p", "*", name]);
  });
}

async function readPasswordState(): Promise<PasswordState | undefined> {
  try {
    return JSON.parse(await readFile(PASSWORD_STATE_FILE, "utf8")) as PasswordState;
  } catch {
    return undefined;
  }
}

async function writePasswordState(state: PasswordState, options: { replace: boolean }): Promise<void> {
  await mkdir(STATE_DIRECTORY, { recursive: true, mode: 0o700 });
  // Not named by PID alone: passes side by side have PID namespaces of their own.
  const temporary = `${PASSWORD_STATE_FILE}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  await writeFile(temporary, JSON.stringify(state), { mode: 0o600 });
  if (options.replace) {
    await rename(temporary, PASSWORD_STATE_FILE);
    return;
  }
  // link() fails if the file exists, so concurrent first runs agree on one password.
  try {
    await link(temporary, PASSWORD_STATE_FILE);
  } finally {
    await unlink(temporary);
  }
}

async function ensurePassword(name: string): Promise<string> {
  let state = await readPasswordState();
  if (state === undefined) {
    try {
      await writePasswordState(
        { password: randomBytes(18).toString("base64url"), shadowHash: "" },
        { replace: false },
      );
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    state = await readPasswordState();
    if (state === undefined) throw new Error(`cannot read ${PASSWORD_STATE_FILE}`);
  }
  const currentHash = await readShadowHash(name);
  if (state.shadowHash !== "" && currentHash === state.shadowHash) return state.password;
  const password = state.password;
  await retryWhileShadowLocked(async () => {
    await runCommandOrThrow(requireExecutable("chpasswd"), [], { input: `${name}:${password}\n` });
  });
  await writePasswordState({ password, shadowHash: await readShadowHash(name) }, { replace: true });
  return password;
}

async function installSudoersDropIn(name: string, content: string): Promise<void> {
  const target = join(SUDOERS_DIRECTORY, name);
  const existing = await readFile(target, "utf8").catch(() => undefined);
  if (existing === content) return;
  // sudo ignores files in sudoers.d whose name contains a dot, so a half-written one is never live.
  const temporary = join(SUDOERS_DIRECTORY, `.${name}.${process.pid}.tmp`);
  try {
    await writeFile(temporary, content, { mode: 0o440 });
    await chmod(temporary, 0o440);
    await runCommandOrThrow(requireExecutable("visudo"), ["-cf", temporary]);
    await rename(temporary, target);
  } catch (error) {
    await unlink(temporary).catch(() => {});
    throw error;
  }
}
