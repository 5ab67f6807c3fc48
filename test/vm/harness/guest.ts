// The running guest: booted once for the tier on a qcow2 overlay of the cached LVM disk, reached over
// the system ssh client with StrictHostKeyChecking=yes and the known_hosts written from the host key the
// image build generated. Everything of a run lives in one directory, removed by stop(); a run killed
// before it could stop leaves its directory behind, and the next run removes it (its pid is gone).
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { isProcessAlive } from "../../integration/harness/process-tree.js";
import { requireExecutable } from "../../integration/harness/prerequisites.js";
import { runCommand, runCommandOrThrow, type CommandResult } from "../../integration/harness/run-command.js";
import { cacheRoot, ensureImage, GUEST_LOGIN, type GuestImage, type Suite } from "./image.js";
import { recordTiming, vmLog } from "./log.js";
import { fastKey } from "../../helpers/fast-restic-key.js";
import { freePort } from "../../../src/demo/free-port.js";
import { startQemu, type Qemu } from "./qemu.js";

export type { CommandResult } from "../../integration/harness/run-command.js";

const BOOT_TIMEOUT_MS = 10 * 60_000;
const PASSWORD_FILE = "/etc/rlvm-test/restic-password";

export interface GuestState {
  /** LVs tagged rlvm_fleet, as VG/LV. */
  readonly snapshots: string[];
  /** device-mapper devices whose name mentions rlvm (a snapshot's -cow and -real devices). */
  readonly dmDevices: string[];
  /** Mount points under /run/rlvm-fleet in any process's mount namespace. */
  readonly mounts: string[];
  /** Entries of /run/rlvm-fleet. */
  readonly runDirs: string[];
  /** Temp directories of the login user's side (become = none runs), /tmp/rlvm-fleet.*. */
  readonly tempDirs: string[];
  /** pids of agents (rlvm-agent.sh) and of restic processes. */
  readonly agents: string[];
  readonly restic: string[];
  /** Lock files of rlvm-fleet that someone holds. */
  readonly heldLocks: string[];
}

export interface ExecOptions {
  readonly timeoutMs?: number;
}

export interface Guest {
  readonly address: string;
  readonly port: number;
  readonly user: string;
  readonly knownHostsFile: string;
  /** A private copy (0600) of the client key. */
  readonly identityFile: string;
  /** Local scratch directory for inventories, configs and reports; removed with the guest. */
  readonly workDir: string;
  readonly consoleLog: string;
  readonly passwordFile: string;
  readonly image: GuestImage;
  /** Runs a bash script as root on the guest (ssh + sudo -n; the script goes in on stdin). */
  exec(script: string, options?: ExecOptions): Promise<CommandResult>;
  /** exec, throwing with the output when the script fails; resolves to its stdout. */
  run(script: string, options?: ExecOptions): Promise<string>;
  /** Starts a script as root in the background on the guest (its output in /run/rlvm-test/NAME.log). */
  spawn(name: string, script: string): Promise<void>;
  /** What rlvm-fleet may have left on the guest. */
  state(): Promise<GuestState>;
  /**
   * Back to a clean slate between tests: stops leftover agents and restic, removes rlvm snapshots,
   * mounts, run directories, locks, every repository and restic's cache, then creates the repositories
   * named (under /srv/backup/) again.
   */
  reset(repositories?: readonly string[]): Promise<void>;
  /** Powers the guest off (killing qemu if it does not stop) and removes the run directory. */
  stop(): Promise<void>;
}

function sweepStaleRuns(runs: string): void {
  if (!existsSync(runs)) return;
  for (const entry of readdirSync(runs)) {
    const pid = Number(entry.split(".")[0]);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !isProcessAlive(pid)) {
      rmSync(join(runs, entry), { recursive: true, force: true });
    }
  }
}

/** Builds (or finds) the suite's image, boots it and waits for its sshd. */
export async function bootGuest(suite: Suite): Promise<Guest> {
  const image = await ensureImage(suite);
  const runs = join(cacheRoot(), "runs");
  sweepStaleRuns(runs);
  mkdirSync(runs, { recursive: true });
  const dir = mkdtempSync(join(runs, `${process.pid}.`));
  chmodSync(dir, 0o755);
  const workDir = join(dir, "work");
  mkdirSync(workDir);
  const identityFile = join(dir, "id_ed25519");
  copyFileSync(image.clientKey, identityFile);
  chmodSync(identityFile, 0o600);
  const overlay = join(dir, "disk.qcow2");
  await runCommandOrThrow(requireExecutable("qemu-img"), [
    "create",
    "-q",
    "-f",
    "qcow2",
    "-F",
    "raw",
    "-b",
    image.disk,
    overlay,
  ]);
  const consoleLog = join(dir, "console.log");
  const knownHostsFile = join(dir, "known_hosts");

  let qemu: Qemu | undefined;
  let port = 0;
  const started = Date.now();
  for (let attempt = 0; attempt < 3 && qemu === undefined; attempt++) {
    port = await freePort();
    const candidate = startQemu({
      kernel: image.kernel,
      initrd: image.initrd,
      append: "root=/dev/mapper/vg0-lv_root ro console=ttyS0 net.ifnames=0",
      drives: [{ file: overlay, format: "qcow2" }],
      consoleLog,
      sshPort: port,
    });
    // A port lost to another process between freePort and qemu's bind makes qemu exit at once.
    const early = await Promise.race([
      candidate.exited.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 1500)),
    ]);
    if (!early) qemu = candidate;
    else vmLog(`qemu exited at once (${candidate.stderr().trim()}); retrying with another port`);
  }
  if (qemu === undefined) throw new Error("qemu did not start (see the messages above)");
  writeFileSync(knownHostsFile, `[127.0.0.1]:${port} ${image.hostKeyPub}\n`);
  vmLog(`${suite} guest booting (qemu pid ${qemu.pid}, ssh on 127.0.0.1:${port}, console ${consoleLog})`);

  const sshArgs = (extra: string[] = []) => [
    "-F",
    "/dev/null",
    "-i",
    identityFile,
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    `UserKnownHostsFile=${knownHostsFile}`,
    "-o",
    "GlobalKnownHostsFile=/dev/null",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    "ServerAliveInterval=15",
    // One connection for every guest command: a handshake costs a second under TCG. A short fixed name
    // (one guest per run directory; %C would add 40 characters toward a socket path's 108-byte limit).
    "-o",
    "ControlMaster=auto",
    "-o",
    `ControlPath=${join(dir, "ssh")}`,
    "-o",
    "ControlPersist=60",
    ...extra,
    "-p",
    String(port),
    `${GUEST_LOGIN}@127.0.0.1`,
  ];
  const ssh = requireExecutable("ssh");
  const exec = (script: string, options: ExecOptions = {}) =>
    runCommand(ssh, [...sshArgs(["-o", "ConnectTimeout=30"]), "sudo -n bash -s"], {
      input: `set -euo pipefail\n${script}\n`,
      timeoutMs: options.timeoutMs ?? 180_000,
    });
  const run = async (script: string, options: ExecOptions = {}) => {
    const result = await exec(script, options);
    if (result.code !== 0) {
      throw new Error(
        `guest script failed (${result.timedOut ? "timed out" : (result.code ?? result.signal)}):\n${script}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`,
      );
    }
    return result.stdout;
  };

  const running = qemu;
  const stop = async () => {
    if (running.running) {
      const stopping = Date.now();
      await exec("systemctl poweroff --no-block", { timeoutMs: 30_000 }).catch(() => undefined);
      const off = await Promise.race([
        running.exited.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), 90_000)),
      ]);
      if (!off) vmLog("the guest did not power off within 90 s; killing qemu");
      running.kill();
      await running.exited;
      recordTiming(`${suite} poweroff`, Date.now() - stopping);
    }
    await runCommand(ssh, [...sshArgs(), "-O", "exit"], { timeoutMs: 10_000 }).catch(() => undefined);
    if (process.env["RLVM_VM_KEEP"] === "1") vmLog(`kept ${dir} (RLVM_VM_KEEP=1)`);
    else rmSync(dir, { recursive: true, force: true });
  };

  try {
    const deadline = Date.now() + BOOT_TIMEOUT_MS;
    for (;;) {
      if (!running.running) {
        throw new Error(`qemu exited during boot: ${running.stderr().trim()}\n${running.consoleTail(60)}`);
      }
      const probe = await runCommand(ssh, [...sshArgs(["-o", "ConnectTimeout=5"]), "true"], {
        timeoutMs: 30_000,
      });
      if (probe.code === 0) break;
      if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/.test(probe.stderr)) {
        throw new Error(`the guest's host key is not the one the image was built with:\n${probe.stderr}`);
      }
      // The ControlPath lives in the run directory: a long RLVM_VM_CACHE makes it exceed a socket's
      // 108 bytes, and every probe would fail the same way until the boot timeout.
      if (/too long for Unix domain socket/.test(probe.stderr)) {
        throw new Error(
          `ssh cannot create its control socket (use a shorter RLVM_VM_CACHE): ${probe.stderr.trim()}`,
        );
      }
      if (Date.now() > deadline) {
        throw new Error(
          `the guest's sshd did not answer within ${BOOT_TIMEOUT_MS / 60_000} min; last ssh error: ${probe.stderr.trim()}\n${running.consoleTail(60)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
    recordTiming(`${suite} boot: qemu start to sshd answering`, Date.now() - started);
    const root = (await run("findmnt -n -o SOURCE /")).trim();
    if (root !== "/dev/mapper/vg0-lv_root") throw new Error(`the guest's root is ${root}, not vg0/lv_root`);
  } catch (error) {
    await stop();
    throw error;
  }

  const guest: Guest = {
    address: "127.0.0.1",
    port,
    user: GUEST_LOGIN,
    knownHostsFile,
    identityFile,
    workDir,
    consoleLog,
    passwordFile: PASSWORD_FILE,
    image,
    exec,
    run,
    spawn: async (name, script) => {
      await run(
        `mkdir -p /run/rlvm-test
cat >/run/rlvm-test/${name}.sh <<'RLVM_TEST_SCRIPT'
set -euo pipefail
${script}
RLVM_TEST_SCRIPT
setsid -f bash /run/rlvm-test/${name}.sh </dev/null >/run/rlvm-test/${name}.log 2>&1`,
      );
    },
    state: async () => parseState(await run(STATE_SCRIPT)),
    reset: async (repositories = []) => {
      // restic init derives its key with scrypt, slow under TCG: each repository is made once per
      // boot in /srv/backup/.pristine (all at once), and copied from there: a copy keeps its own ID.
      // Its key is then re-sealed cheap here (test/helpers/fast-restic-key.ts), once: restic pays the
      // key's scrypt, calibrated to half a second of the guest's time, on every command.
      const names = repositories.map((name) => `'${name}'`).join(" ");
      const keys = await run(
        `${RESET_SCRIPT}
mkdir -p /srv/backup/.pristine
for name in ${names}; do
  [ -e "/srv/backup/.pristine/$name/config" ] ||
    restic init --repo "/srv/backup/.pristine/$name" --password-file ${PASSWORD_FILE} >/dev/null &
done
for job in $(jobs -p); do wait "$job"; done
for name in ${names}; do
  [ -e "/srv/backup/.pristine/.fast-key-$name" ] && continue
  for key in "/srv/backup/.pristine/$name"/keys/*; do
    echo "$name \${key##*/} $(base64 -w0 "$key") $(base64 -w0 ${PASSWORD_FILE})"
  done
done`,
        { timeoutMs: 300_000 },
      );
      const rewrites = keys
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => {
          const [name, file, key, password] = line.split(" ") as [string, string, string, string];
          const decode = (text: string) => Buffer.from(text, "base64").toString("utf8");
          const fresh = fastKey(decode(key), decode(password).replace(/\r?\n$/, ""));
          const dir = `/srv/backup/.pristine/${name}/keys`;
          return `printf %s '${Buffer.from(fresh.content).toString("base64")}' | base64 -d >'${dir}/${fresh.name}'
chmod 0400 '${dir}/${fresh.name}' && rm '${dir}/${file}' && touch '/srv/backup/.pristine/.fast-key-${name}'`;
        });
      await run(
        `${rewrites.join("\n")}
for name in ${names}; do cp -a "/srv/backup/.pristine/$name" "/srv/backup/$name"; done`,
      );
    },
    stop,
  };
  return guest;
}

const STATE_SCRIPT = String.raw`
list() { paste -sd, -; }
echo "snapshots=$(lvs --noheadings -o vg_name,lv_name @rlvm_fleet 2>/dev/null | awk '{print $1 "/" $2}' | list)"
echo "dm=$(dmsetup ls 2>/dev/null | awk '/rlvm/ {print $1}' | list)"
echo "mounts=$(cat /proc/[0-9]*/mountinfo 2>/dev/null | awk '$5 ~ /^\/run\/rlvm-fleet/ {print $5}' | sort -u | list)"
echo "rundirs=$(ls -A /run/rlvm-fleet 2>/dev/null | grep -vx locks | list)"
echo "tempdirs=$(ls -d /tmp/rlvm-fleet.* /var/tmp/rlvm-fleet.* 2>/dev/null | list)"
echo "agents=$(pgrep -f 'rlvm-agent(-[0-9.]+)?[.]sh' | list)"
echo "restic=$(pgrep -x restic | list)"
held=""
for f in /run/rlvm-fleet/locks/rlvm-fleet.*.lock /tmp/rlvm-fleet-locks.*/rlvm-fleet.*.lock; do
  [ -e "$f" ] || continue
  flock -n "$f" true || held="$held,$f"
done
echo "locks=$(printf '%s' "$held" | sed 's/^,//')"
`;

function parseState(text: string): GuestState {
  const values = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq < 0) continue;
    const value = line.slice(eq + 1).trim();
    values.set(line.slice(0, eq), value === "" ? [] : value.split(","));
  }
  const get = (key: string) => values.get(key) ?? [];
  return {
    snapshots: get("snapshots"),
    dmDevices: get("dm"),
    mounts: get("mounts"),
    runDirs: get("rundirs"),
    tempDirs: get("tempdirs"),
    agents: get("agents"),
    restic: get("restic"),
    heldLocks: get("locks"),
  };
}

const RESET_SCRIPT = String.raw`
# Whatever a test left running: agents, restic, fault injectors.
for pid in $(pgrep -f 'rlvm-agent(-[0-9.]+)?[.]sh|/run/rlvm-test/.*[.]sh' || true); do kill -KILL "$pid" 2>/dev/null || true; done
for pid in $(pgrep -x restic || true); do kill -KILL "$pid" 2>/dev/null || true; done
sleep 0.5
for m in $(awk '$2 ~ /^\/run\/rlvm-fleet/ {print $2}' /proc/mounts | sort -r); do umount -l "$m" || true; done
if lvs --noheadings -o lv_name @rlvm_fleet 2>/dev/null | grep -q .; then lvremove -f @rlvm_fleet >/dev/null; fi
rm -rf /run/rlvm-fleet /run/rlvm-test /tmp/rlvm-fleet.* /tmp/rlvm-fleet-locks.*
rm -rf /srv/backup/* /root/.cache/restic
mountpoint -q /data && mountpoint -q /srv/xfs && mountpoint -q /srv/backup
`;
