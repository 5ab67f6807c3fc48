// The guest image and its prepared LVM disk, built once and cached under
// ~/.cache/rlvm-fleet/vm/<hash of the recipe>/ (RLVM_VM_CACHE overrides the parent directory).
//
//   1. image:   mmdebstrap a Debian tree (bookworm or trixie: SUITES), customise it (guest/customize.sh), `mkfs.ext4 -d` it into
//               root.img; keep its kernel and initrd, the test's client key and the guest's host key.
//   2. prepare: boot root.img once with a blank disk (guest/prepare.sh): vg0 with lv_root (a copy of the
//               root), lv_data, lv_xfs and lv_backup; the result is disk.img, the only disk later boots
//               use (root=/dev/mapper/vg0-lv_root).
//
// Each stage is built in a temporary place and renamed into the cache when complete, so an interrupted
// build never leaves a cache entry that looks usable. Boots never write to the cache: they run on a
// qcow2 overlay of disk.img.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { copyFile, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { requireExecutable } from "../../integration/harness/prerequisites.js";
import { runCommand, runCommandOrThrow } from "../../integration/harness/run-command.js";
import { generateEd25519Key } from "../../integration/harness/ssh-keys.js";
import { startQemu } from "./qemu.js";
import { vmLog, recordTiming } from "./log.js";

/** Bump to rebuild every cached image (anything the recipe's text does not already cover). */
export const RECIPE_VERSION = 1;
/** The guests' Debian releases: 12 and 13, each with its own restic (0.14 and 0.18). */
export const SUITES = ["bookworm", "trixie"] as const;
export type Suite = (typeof SUITES)[number];
export const MIRROR = process.env["RLVM_VM_MIRROR"] ?? "http://deb.debian.org/debian";
export const PACKAGES = [
  "linux-image-amd64",
  "systemd-sysv",
  "udev",
  "lvm2",
  "restic",
  "openssh-server",
  "sudo",
  "e2fsprogs",
  "xfsprogs",
  "util-linux",
  "iproute2",
  "procps",
  "kmod",
  "initramfs-tools",
] as const;
/** Size of root.img, the ext4 image of the tree (only the prepare boot uses it). */
const ROOT_IMAGE_SIZE = "1200M";
/** The LVM disk: vg0's only physical volume (guest/prepare.sh lays it out). */
const DISK_SIZE_BYTES = 4 * 1024 ** 3;
const PREPARE_TIMEOUT_MS = 25 * 60_000;

const GUEST_DIR = join(import.meta.dirname, "guest");
const CUSTOMIZE = join(GUEST_DIR, "customize.sh");
const PREPARE = join(GUEST_DIR, "prepare.sh");

export const GUEST_LOGIN = "rlvmvm";
export const GUEST_HOSTNAME = "rlvm-vm";

export interface GuestImage {
  readonly suite: Suite;
  readonly dir: string;
  readonly kernel: string;
  readonly initrd: string;
  /** The prepared LVM disk (raw); never written by a test boot. */
  readonly disk: string;
  /** The test's client key, authorized for GUEST_LOGIN. Copy it before use: the cache is shared. */
  readonly clientKey: string;
  /** `ssh-ed25519 AAAA…` of the guest's sshd. */
  readonly hostKeyPub: string;
}

export function cacheRoot(): string {
  return process.env["RLVM_VM_CACHE"] ?? join(homedir(), ".cache", "rlvm-fleet", "vm");
}

/** The image's recipe: everything that decides its content. Its hash names the cache entry. */
export function imageRecipe(suite: Suite): string {
  return JSON.stringify(
    {
      version: RECIPE_VERSION,
      suite,
      mirror: MIRROR,
      variant: "apt",
      packages: PACKAGES,
      rootImageSize: ROOT_IMAGE_SIZE,
      customize: readFileSync(CUSTOMIZE, "utf8"),
    },
    null,
    2,
  );
}

/** The prepared disk's recipe: the image's, plus the script of the first boot and the disk's size. */
export function diskRecipe(suite: Suite): string {
  return JSON.stringify({
    image: hash(imageRecipe(suite)),
    diskSize: DISK_SIZE_BYTES,
    prepare: readFileSync(PREPARE, "utf8"),
  });
}

const hash = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 16);

export function imageDir(suite: Suite): string {
  return join(cacheRoot(), hash(imageRecipe(suite)));
}

function paths(suite: Suite) {
  const dir = imageDir(suite);
  const disk = `disk-${hash(diskRecipe(suite))}`;
  return {
    kernel: join(dir, "vmlinuz"),
    initrd: join(dir, "initrd.img"),
    rootImage: join(dir, "root.img"),
    disk: join(dir, `${disk}.img`),
    clientKey: join(dir, "id_ed25519"),
    hostKeyPub: join(dir, "ssh_host_ed25519_key.pub"),
    imageDone: join(dir, "image.done"),
    diskDone: join(dir, `${disk}.done`),
    diskRecipe: join(dir, `${disk}.json`),
  };
}

/** True when both stages are cached for every suite named: a run then needs only qemu. */
export function cachedImageReady(suites: readonly Suite[] = SUITES): boolean {
  return suites.every((suite) => {
    const p = paths(suite);
    return existsSync(p.imageDone) && existsSync(p.diskDone);
  });
}

/** Image builds under way in this process, so that a prebuild and the boot that needs it share one. */
const building = new Map<Suite, Promise<void>>();

function buildOnce(suite: Suite): Promise<void> {
  let build = building.get(suite);
  if (build === undefined) {
    build = buildImage(suite).finally(() => building.delete(suite));
    building.set(suite, build);
  }
  return build;
}

/**
 * Starts building a suite's image (stage 1 only: mmdebstrap, no qemu) in the background when it is
 * not cached, so that it overlaps another guest's boot instead of adding to the tier's time. The
 * prepare boot stays in ensureImage: two TCG guests at once would share 2 cores. A failure here
 * surfaces in the ensureImage that needs the image.
 */
export function prebuildImage(suite: Suite): void {
  if (!existsSync(paths(suite).imageDone)) buildOnce(suite).catch(() => undefined);
}

/** The cached image of a suite, built first if needed. */
export async function ensureImage(suite: Suite): Promise<GuestImage> {
  const dir = imageDir(suite);
  const p = paths(suite);
  if (!existsSync(p.imageDone)) await buildOnce(suite);
  else vmLog(`${suite} image cached: ${dir}`);
  if (!existsSync(p.diskDone)) await prepareDisk(suite);
  else vmLog(`${suite} prepared LVM disk cached`);
  return {
    suite,
    dir,
    kernel: p.kernel,
    initrd: p.initrd,
    disk: p.disk,
    clientKey: p.clientKey,
    hostKeyPub: (await readFile(p.hostKeyPub, "utf8")).trim().split(/\s+/).slice(0, 2).join(" "),
  };
}

async function buildImage(suite: Suite): Promise<void> {
  const dir = imageDir(suite);
  const started = Date.now();
  await mkdir(cacheRoot(), { recursive: true });
  const work = `${dir}.build-${process.pid}`;
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  try {
    const rootfs = join(work, "rootfs");
    vmLog(`building the guest image in ${work} (mmdebstrap ${suite}, about 2 minutes)`);
    const debootstrap = await runCommand(
      requireExecutable("mmdebstrap"),
      ["--variant=apt", `--include=${PACKAGES.join(",")}`, suite, rootfs, MIRROR],
      { timeoutMs: 20 * 60_000 },
    );
    if (debootstrap.code !== 0) {
      throw new Error(
        `mmdebstrap failed (${debootstrap.code ?? debootstrap.signal}):\n${debootstrap.stderr.slice(-4000)}`,
      );
    }
    recordTiming(`${suite} image: mmdebstrap`, Date.now() - started);
    const key = await generateEd25519Key(join(work, "id_ed25519"), { comment: "rlvm-fleet-vm-tier" });
    await runCommandOrThrow("bash", [CUSTOMIZE, rootfs, key.publicKeyPath, work], { timeoutMs: 10 * 60_000 });
    const boot = join(rootfs, "boot");
    const kernel = readdirSync(boot).find((f) => f.startsWith("vmlinuz-"));
    const initrd = readdirSync(boot).find((f) => f.startsWith("initrd.img-"));
    if (kernel === undefined || initrd === undefined) throw new Error(`no kernel or initrd in ${boot}`);
    await copyFile(join(boot, kernel), join(work, "vmlinuz"));
    await copyFile(join(boot, initrd), join(work, "initrd.img"));
    // They boot from outside; a copy on lv_root would only slow the copy down.
    await rm(join(boot, kernel));
    await rm(join(boot, initrd));
    const mkfsStarted = Date.now();
    await runCommandOrThrow(
      requireExecutable("mkfs.ext4"),
      ["-q", "-F", "-L", "root", "-d", rootfs, join(work, "root.img"), ROOT_IMAGE_SIZE],
      { timeoutMs: 10 * 60_000 },
    );
    recordTiming(`${suite} image: mkfs.ext4 -d`, Date.now() - mkfsStarted);
    await rm(rootfs, { recursive: true, force: true });
    await writeFile(join(work, "recipe.json"), imageRecipe(suite));
    await writeFile(join(work, "image.done"), `${new Date().toISOString()}\n`);
    await rm(dir, { recursive: true, force: true });
    await rename(work, dir);
  } catch (error) {
    await rm(work, { recursive: true, force: true });
    throw error;
  }
  recordTiming(`${suite} image: build total`, Date.now() - started);
  vmLog(`${suite} image built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

async function prepareDisk(suite: Suite): Promise<void> {
  const started = Date.now();
  const p = paths(suite);
  const tmp = `${p.disk}.tmp-${process.pid}`;
  const consoleLog = `${p.disk}.console.log`;
  // The script travels on a third disk, NUL-padded to whole sectors (the image's rlvm-prepare runs it).
  const scriptDisk = `${p.disk}.script-${process.pid}`;
  const script = readFileSync(PREPARE);
  await writeFile(scriptDisk, Buffer.concat([script, Buffer.alloc(512 - (script.length % 512))]));
  await rm(tmp, { force: true });
  await runCommandOrThrow(requireExecutable("qemu-img"), [
    "create",
    "-q",
    "-f",
    "raw",
    tmp,
    String(DISK_SIZE_BYTES),
  ]);
  vmLog(`preparing the ${suite} LVM disk: first boot of the image (about 3 minutes under TCG)`);
  const qemu = startQemu({
    kernel: p.kernel,
    initrd: p.initrd,
    append: "root=/dev/vda rw console=ttyS0 net.ifnames=0 rlvm.prepare",
    drives: [
      { file: p.rootImage, format: "raw", discardWrites: true },
      { file: tmp, format: "raw" },
      { file: scriptDisk, format: "raw", discardWrites: true },
    ],
    consoleLog,
  });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), PREPARE_TIMEOUT_MS);
  });
  const outcome = await Promise.race([qemu.exited, timedOut]);
  clearTimeout(timer);
  qemu.kill();
  await qemu.exited;
  await rm(scriptDisk, { force: true });
  const console = existsSync(consoleLog) ? readFileSync(consoleLog, "utf8") : "";
  if (outcome === "timeout" || !console.includes("RLVM-PREPARE-OK")) {
    await rm(tmp, { force: true });
    const why = outcome === "timeout" ? `did not finish within ${PREPARE_TIMEOUT_MS / 60_000} min` : "failed";
    throw new Error(
      `preparing the LVM disk ${why}; qemu: ${qemu.stderr().trim() || "-"}; console (${consoleLog}):\n${qemu.consoleTail(60)}`,
    );
  }
  await rename(tmp, p.disk);
  await writeFile(p.diskRecipe, diskRecipe(suite));
  await writeFile(p.diskDone, `${new Date().toISOString()}\n`);
  recordTiming(`${suite} prepare: first boot, root onto LVM`, Date.now() - started);
  vmLog(`${suite} LVM disk prepared in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}
