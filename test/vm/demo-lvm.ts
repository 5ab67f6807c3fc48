// `npm run demo -- --lvm`: the product's point on real LVM. It boots the VM tier's Debian guest
// (qemu under TCG; the image is built once with mmdebstrap and cached) and runs a real lv_nonroot
// and lv_root backup on it: the LVM snapshot, its lifetime and peak COW, then the cleanup, shown on
// the guest. It lives beside the VM tier because it is that tier's guest; the tier runs
// runLvmDemo against its own booted guest, so the demo is tested.
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Report } from "../../src/report/report-schema.js";
import { bootGuest, type Guest } from "./harness/guest.js";
import { missingVmPrerequisites } from "./harness/prerequisites.js";

const BIN = join(import.meta.dirname, "../../bin/rlvm-fleet.js");
const REPOSITORIES = ["data", "root"];

/** The demo's ResticLVM config: /data from its LV, and the running root from its own snapshot. */
function demoConfig(passwordFile: string): string {
  return `# lv_nonroot: /data is the ext4 LV vg0/lv_data; restic reads it from a snapshot, under /data.
[logical_volume_nonroot.data]
vg_name = "vg0"
lv_name = "lv_data"
snapshot_size = "128M"
backup_source_path = "/data"
exclude_paths = []

[[logical_volume_nonroot.data.repositories]]
repo_path = "/srv/backup/data"
password_file = "${passwordFile}"

# lv_root: the running root, from a snapshot of vg0/lv_root (bulk left out to keep TCG quick).
[logical_volume_root.root]
vg_name = "vg0"
lv_name = "lv_root"
snapshot_size = "256M"
backup_source_path = "/"
exclude_paths = ["/usr", "/var/lib", "/var/cache", "/var/log"]

[[logical_volume_root.root.repositories]]
repo_path = "/srv/backup/root"
password_file = "${passwordFile}"
`;
}

function demoInventory(guest: Guest, config: string): string {
  return `[defaults]
user = "${guest.user}"
port = ${guest.port}
identity_file = "${guest.identityFile}"
known_hosts = "${guest.knownHostsFile}"
host_key_policy = "strict"
become = "sudo"

[hosts.lvm-demo]
address = "127.0.0.1"
config = "${config}"
`;
}

/** One CLI command, shown as it runs; its output goes to `say` as it comes. */
function runCli(argv: readonly string[], say: (text: string) => void): Promise<number> {
  say(`\n$ rlvm-fleet ${argv.join(" ")}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...argv], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.on("data", (chunk: Buffer) => say(chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => say(chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve(code ?? 1));
  });
}

/** The demo on a booted guest: check, backup, what the snapshots did, and that they are gone. */
export async function runLvmDemo(guest: Guest, say: (text: string) => void): Promise<number> {
  await guest.reset(REPOSITORIES);
  await guest.run(
    'mkdir -p /data/docs && seq 1 20000 >/data/docs/numbers.txt && echo "hello from lv_data" >/data/docs/a.txt',
  );
  const dir = join(guest.workDir, `lvm-demo-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  const config = join(dir, "lvm-demo.toml");
  const inventory = join(dir, "inventory.toml");
  const report = join(dir, "backup.json");
  writeFileSync(config, demoConfig(guest.passwordFile));
  writeFileSync(inventory, demoInventory(guest, config));
  say(`\nThe guest's ResticLVM config (${config}):\n\n${demoConfig(guest.passwordFile)}`);

  const checked = await runCli(["check", "--inventory", inventory, "--no-color"], say);
  if (checked !== 0) return checked;
  const code = await runCli(["backup", "--inventory", inventory, "--report", report, "--no-color"], say);
  if (code !== 0) return code;

  say("\nWhat the snapshots did (from the JSON report):\n");
  const host = (JSON.parse(readFileSync(report, "utf8")) as Report).hosts[0];
  for (const job of host?.jobs ?? []) {
    const s = job.snapshot;
    if (s === null) continue;
    say(
      `  ${job.name}: snapshot ${s.name} lived ${(s.lifetime_ms / 1000).toFixed(1)} s, peak COW ${s.cow_peak_percent ?? "?"}%\n`,
    );
  }
  say("\nAnd on the guest afterwards (lvs; mounts of snapshots; restic snapshots):\n");
  say(
    await guest.run(String.raw`
lvs --noheadings -o lv_name,lv_size vg0 | sed 's/^ */  lvs: /'
left=$(lvs --noheadings -o lv_name @rlvm_fleet 2>/dev/null | tr -d ' ')
if [ -z "$left" ]; then left=none; fi
echo "  snapshots left: $left"
mounts=$(findmnt -rn -o TARGET,SOURCE | grep -c _rlvm_ || true)
echo "  snapshot mounts left: $mounts"
for repo in ${REPOSITORIES.map((r) => `/srv/backup/${r}`).join(" ")}; do
  echo "  restic snapshots of $repo:"
  restic -r "$repo" --password-file ${guest.passwordFile} snapshots --no-lock | sed 's/^/    /'
done
`),
  );
  return 0;
}

async function main(): Promise<number> {
  const missing = missingVmPrerequisites(["bookworm"]);
  if (missing !== undefined) {
    process.stderr.write(`npm run demo -- --lvm: ${missing}\n`);
    return 2;
  }
  const say = (text: string) => void process.stdout.write(text);
  say(
    "Booting the VM tier's Debian guest under qemu (TCG). The first run builds its image with mmdebstrap (a few minutes, cached in ~/.cache/rlvm-fleet/vm) ...\n",
  );
  const guest = await bootGuest("bookworm");
  const stop = () => void guest.stop().finally(() => process.exit(130));
  process.once("SIGINT", stop);
  try {
    const code = await runLvmDemo(guest, say);
    say(
      code === 0 ? "\nThe guest is powered off now.\n" : `\nThe demo stopped: that command exited ${code}.\n`,
    );
    return code;
  } finally {
    process.off("SIGINT", stop);
    await guest.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  process.exitCode = await main();
}
