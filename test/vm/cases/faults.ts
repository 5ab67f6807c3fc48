// The faults that LVM adds, each ending (afterEach, lvm.test.ts) with nothing of the run left on the guest.
import { describe, expect, it } from "vitest";
import { type CaseScope, fullOnly } from "../helpers/case-scope.js";
import {
  caseDir,
  cli,
  config,
  dataJob,
  guest,
  resticLocks,
  resticPaths,
  resticSnapshots,
  spawnedLog,
  startCli,
  vgSeqno,
  vm1Inventory,
  WAIT_FOR_RESTIC,
  WAIT_FOR_SNAPSHOT,
  waitForGuest,
  writeInventory,
  writeRandom,
  expectGuestClean,
} from "../helpers/vm-fleet.js";
import { vmLog } from "../harness/log.js";
import { waitFor } from "../../helpers/wait-for.js";
import { expectSnapshotReported } from "./nonroot.js";

/** A /data backup that takes a while under TCG: restic has MiB of random data to read. */
async function slowDataInventory(
  name: string,
  options: { mib?: number; snapshotSize?: string; defaults?: Record<string, string | number> } = {},
): Promise<string> {
  await writeRandom("/data/bulk/blob.bin", options.mib ?? 64);
  return vm1Inventory(
    name,
    [dataJob(options.snapshotSize === undefined ? {} : { snapshotSize: options.snapshotSize })],
    options.defaults,
  );
}

async function waitForLog(name: string, pattern: RegExp, timeoutMs = 120_000): Promise<void> {
  await waitFor(`${pattern} in ${name}.log`, async () => pattern.test(await spawnedLog(name)), {
    timeoutMs,
    intervalMs: 500,
    detail: () => spawnedLog(name),
  });
}

/** Text of the whole report: where a message shows up (an error, a warning, a repository) is secondary. */
const reportText = (report: unknown) => JSON.stringify(report);

export function faultCases(scope: CaseScope = "full"): void {
  const full = fullOnly(scope);
  describe("faults on real LVM", () => {
    it("a snapshot too small for the writes during the backup overflows: the job fails and says to raise snapshot_size", async () => {
      const inventory = await slowDataInventory("overflow", { mib: 64, snapshotSize: "8M" });
      // Once the snapshot exists, write far more than its 8 MiB of COW space to the origin.
      await guest().spawn(
        "filler",
        `${WAIT_FOR_SNAPSHOT}
dd if=/dev/urandom of=/data/filler.bin bs=1M count=48 conv=fsync 2>&1
lvs --noheadings -o lv_name,lv_attr,snap_percent @rlvm_fleet || true`,
      );
      const run = await cli("backup", inventory);
      const fillerLog = await spawnedLog("filler");
      // The snapshot really overflowed: LVM marked it invalid (lv_attr's 5th character is I).
      expect(fillerLog).toMatch(/lv_data_rlvm_\S+\s+s.{3}I/);
      expect(run.code, run.stdout + run.stderr).toBe(1);
      const host = run.host("vm1");
      expect(host.status).toBe("failed");
      expect(host.error?.code).toBe("backup_failed");
      const job = run.job("data");
      expect(job.status).toBe("failed");
      expect(job.snapshot?.cow_peak_percent).toBe(100);
      expect(job.snapshot?.lifetime_ms).toBeGreaterThan(0);
      expect(reportText(run.report)).toMatch(/raise snapshot_size/);
      expect(run.stdout).toMatch(/raise snapshot_size/);
      // What restic read from the invalidated snapshot is not kept. Depending on when LVM invalidated
      // it, restic stored a snapshot that the agent then forgot, or restic could store nothing at all
      // ("snapshot is empty"); either way the repository holds no snapshot of this run.
      expect(job.repos[0]).toMatchObject({ status: "failed", snapshot_id: null });
      expect(job.repos[0]?.error).toMatch(
        /overflowed.*restic snapshot [0-9a-f]{8} was forgotten|restic backup failed \(exit 1\)/,
      );
      expect(await resticSnapshots("data")).toEqual([]);
    });

    full(
      "an overflow after one repository's backup keeps that complete backup and stores nothing suspect",
      async () => {
        await writeRandom("/data/bulk/blob.bin", 64);
        const inventory = vm1Inventory("overflow-second", [
          dataJob({ snapshotSize: "8M", repos: ["data", "copy"] }),
        ]);
        // Only once the second repository's restic runs (the first one has exited) overflow the snapshot.
        await guest().spawn(
          "filler",
          `${WAIT_FOR_RESTIC}
FIRST=$RESTIC_PID
while kill -0 "$FIRST" 2>/dev/null; do sleep 0.2; done
${WAIT_FOR_RESTIC}
dd if=/dev/urandom of=/data/filler.bin bs=1M count=48 conv=fsync 2>&1
lvs --noheadings -o lv_name,lv_attr @rlvm_fleet || true`,
        );
        const run = await cli("backup", inventory);
        expect(await spawnedLog("filler")).toMatch(/lv_data_rlvm_\S+\s+s.{3}I/);
        expect(run.code, run.stdout + run.stderr).toBe(1);
        expect(run.host("vm1")).toMatchObject({ status: "failed", error: { code: "backup_failed" } });
        const job = run.job("data");
        expect(job.status).toBe("failed");
        expect(job.snapshot?.cow_peak_percent).toBe(100);
        // restic had exited before the overflow, with the snapshot still valid: that backup is whole.
        const [kept, suspect] = job.repos;
        expect(kept).toMatchObject({ repo: "/srv/backup/data", status: "ok", error: null });
        const stored = await resticSnapshots("data");
        // (restic 0.14's summary carries the short id.)
        expect(stored.map((snap) => snap.id.slice(0, 8))).toEqual([kept?.snapshot_id?.slice(0, 8)]);
        expect(await resticPaths("data", stored[0]?.id ?? "latest")).toContain("/data/bulk/blob.bin");
        // The second read met the invalidated snapshot: nothing of it is stored.
        vmLog(`overflow during the second backup: ${suspect?.error ?? ""}`);
        expect(suspect).toMatchObject({ repo: "/srv/backup/copy", status: "failed", snapshot_id: null });
        expect(suspect?.error).toMatch(
          /overflowed.*restic snapshot [0-9a-f]{8} was forgotten|restic backup failed \(exit 1\)/,
        );
        expect(await resticSnapshots("copy")).toEqual([]);
        expect(run.stdout).toMatch(/raise snapshot_size/);
      },
    );

    full("a VG without room for the snapshots: refused before any snapshot is created", async () => {
      const inventory = await slowDataInventory("vg-full", { mib: 1, snapshotSize: "2G" });
      const seqno = await vgSeqno();
      const run = await cli("backup", inventory);
      expect(run.code, run.stdout + run.stderr).toBe(1);
      const host = run.host("vm1");
      expect(host.status).toBe("failed");
      expect(host.error?.code).toBe("preflight");
      const vgFree = host.checks.find((c) => c.name === "vg_free:vg0");
      expect(vgFree).toMatchObject({ ok: false });
      expect(vgFree?.hint).toMatch(/lower snapshot_size/);
      expect(run.job("data").snapshot).toBeNull();
      expect(run.stderr).not.toMatch(/snapshot \S+ created/);
      // No lvcreate ever ran: LVM's metadata did not change at all.
      expect(await vgSeqno()).toBe(seqno);
      expect(await resticSnapshots("data")).toEqual([]);
    });

    full("one failing repository does not stop the others, and its copy_to is not run", async () => {
      // /srv/backup/missing was never initialised: restic cannot open it.
      const inventory = vm1Inventory("repo-fails", [
        dataJob({ snapshotSize: "64M", repos: ["missing", "data"], copyTo: ["copy"] }),
      ]);
      const run = await cli("backup", inventory);
      expect(run.code, run.stdout + run.stderr).toBe(1);
      expect(run.host("vm1")).toMatchObject({ status: "failed", error: { code: "backup_failed" } });
      const job = run.job("data");
      expect(job.status).toBe("failed");
      expect(job.repos.map((r) => [r.repo, r.status])).toEqual([
        ["/srv/backup/missing", "failed"],
        ["/srv/backup/data", "ok"],
      ]);
      expectSnapshotReported(run, "data", "lv_data");
      expect(job.copies).toEqual([
        expect.objectContaining({ from: "/srv/backup/missing", to: "/srv/backup/copy", status: "failed" }),
      ]);
      expect(job.copies[0]?.error).toMatch(/not run/);
      expect(await resticSnapshots("data")).toHaveLength(1);
      expect(await resticSnapshots("copy")).toEqual([]);
    });

    full("restic killed mid-backup on the guest: the job fails and the snapshot goes", async () => {
      const inventory = await slowDataInventory("restic-killed", { mib: 32 });
      await guest().spawn(
        "killer",
        `${WAIT_FOR_RESTIC}
sleep 1
kill -KILL "$RESTIC_PID"
echo "killed $RESTIC_PID"`,
      );
      const run = await cli("backup", inventory);
      expect(await spawnedLog("killer")).toMatch(/^killed \d+/m);
      expect(run.code, run.stdout + run.stderr).toBe(1);
      expect(run.host("vm1")).toMatchObject({ status: "failed", error: { code: "backup_failed" } });
      const job = run.job("data");
      expect(job.status).toBe("failed");
      expect(job.repos[0]?.status).toBe("failed");
      expect(job.repos[0]?.error).toMatch(/restic backup failed \(exit 137\)/);
      expect(job.snapshot?.lifetime_ms).toBeGreaterThan(0);
      expect(await resticSnapshots("data")).toEqual([]);
      // A SIGKILLed restic leaves its lock; the agent's `restic unlock` removes it (it is stale).
      expect(await resticLocks("data")).toEqual([]);
    });

    it("the controller SIGKILLed mid-backup: the agent notices, stops restic and cleans up", async () => {
      const inventory = await slowDataInventory("controller-killed", { mib: 64 });
      // restic is held with SIGSTOP once it runs (after the snapshot), so the controller is killed
      // mid-backup however fast restic would be; the agent's stop_child resumes it with SIGCONT.
      await guest().spawn(
        "holder",
        `${WAIT_FOR_RESTIC}
kill -STOP "$RESTIC_PID"
echo "held $RESTIC_PID"`,
      );
      const controller = startCli("backup", inventory);
      await Promise.race([
        waitForLog("holder", /^held \d+/m),
        controller.done.then((run) => {
          throw new Error(
            `the run ended (exit ${run.code}) before its restic was held:\n${run.stdout}\n${run.stderr}`,
          );
        }),
      ]);
      const held = await guest().state();
      expect(held.snapshots.length).toBeGreaterThan(0);
      expect(held.restic.length).toBeGreaterThan(0);
      controller.child.kill("SIGKILL");
      await controller.done;
      // Within a minute, everything of the run is gone from the guest (afterEach checks it all again).
      await expectGuestClean(60_000);
      // The repository is not left locked: the agent stopped restic with SIGINT.
      const locks = await guest().run(
        "restic --repo /srv/backup/data --password-file /etc/rlvm-test/restic-password --no-lock list locks",
      );
      expect(locks.trim()).toBe("");
      const again = await cli("backup", inventory);
      expect(again.code, again.stdout + again.stderr).toBe(0);
      expect(again.host("vm1").warnings.filter((w) => w.code === "orphan_removed")).toEqual([]);
    });

    full(
      "the SSH connection cut mid-backup: the host fails with connection_lost and the guest is clean",
      async () => {
        const inventory = await slowDataInventory("ssh-cut", { mib: 64 });
        // Kill the sshd session process that serves the agent (walking up from the agent to its sshd).
        await guest().spawn(
          "cutter",
          `${WAIT_FOR_RESTIC}
pid=$(pgrep -f 'rlvm-agent[.]sh' | head -n1)
while [ -n "$pid" ] && [ "$pid" -gt 1 ]; do
  case $(tr '\\0' ' ' </proc/$pid/cmdline) in
    "sshd: rlvmvm"*) echo "cut $pid: $(tr '\\0' ' ' </proc/$pid/cmdline)"; kill -KILL "$pid"; exit 0 ;;
  esac
  pid=$(awk '{print $4}' /proc/$pid/stat)
done
echo "no sshd above the agent"`,
        );
        const run = await cli("backup", inventory);
        expect(await spawnedLog("cutter")).toMatch(/^cut \d+: sshd: rlvmvm/m);
        expect(run.code, run.stdout + run.stderr).toBe(1);
        expect(run.host("vm1")).toMatchObject({ status: "failed", error: { code: "connection_lost" } });
        await expectGuestClean(60_000);
        expect(await resticSnapshots("data")).toEqual([]);
      },
    );

    it("a leftover tagged snapshot of this host is removed (orphan_removed); another inventory host's is left alone", async () => {
      await guest().run(String.raw`
for host in vm1 vm2; do
  lvcreate -y -q -s -L 32M -n "lv_data_rlvm_20200101T000000Z-$host" --addtag rlvm_fleet --addtag "rlvm_host_$host" vg0/lv_data >/dev/null
done
mkdir -p -m 0755 /run/rlvm-fleet
mkdir -m 0700 /run/rlvm-fleet/20200101T000000Z-dead01.vm1
echo vm1 >/run/rlvm-fleet/20200101T000000Z-dead01.vm1/host
: >/run/rlvm-fleet/20200101T000000Z-dead01.vm1/locked`);
      const dir = caseDir("orphans");
      const job = dataJob({ snapshotSize: "64M" });
      const inventory = writeInventory(dir, { vm1: config([job]), vm2: config([job]) });
      try {
        // check reports the leftovers, and changes nothing.
        const seqno = await vgSeqno();
        const check = await cli("check", inventory, ["--limit", "vm1"]);
        const leftovers = check.host("vm1").checks.find((c) => c.name === "leftovers");
        expect(leftovers?.ok).toBe(false);
        expect(leftovers?.detail).toContain("vg0/lv_data_rlvm_20200101T000000Z-vm1");
        expect(leftovers?.detail).toContain("/run/rlvm-fleet/20200101T000000Z-dead01.vm1");
        expect(leftovers?.detail).not.toContain("-vm2");
        expect(await vgSeqno()).toBe(seqno);

        const run = await cli("backup", inventory, ["--limit", "vm1"]);
        expect(run.code, run.stdout + run.stderr).toBe(3);
        const host = run.host("vm1");
        expect(host.status).toBe("partial");
        const orphans = host.warnings.filter((w) => w.code === "orphan_removed").map((w) => w.message);
        expect(orphans).toEqual([
          expect.stringContaining("vg0/lv_data_rlvm_20200101T000000Z-vm1"),
          expect.stringContaining("/run/rlvm-fleet/20200101T000000Z-dead01.vm1"),
        ]);
        expect(run.job("data").status).toBe("ok");
        const left = await guest().run("lvs --noheadings -o lv_name,lv_tags @rlvm_fleet");
        expect(left).toMatch(/lv_data_rlvm_20200101T000000Z-vm2\s+rlvm_fleet,rlvm_host_vm2/);
        expect(left).not.toContain("-vm1");
      } finally {
        await guest().run("lvremove -f @rlvm_host_vm2 >/dev/null 2>&1 || true");
      }
    });

    full("two controllers against the same host: the second reports locked and changes nothing", async () => {
      const inventory = await slowDataInventory("locked", { mib: 8 });
      // The first run's restic is frozen (SIGSTOP) until the second run is over.
      await guest().spawn(
        "freezer",
        `${WAIT_FOR_RESTIC}\nkill -STOP "$RESTIC_PID"\necho "stopped $RESTIC_PID"`,
      );
      const first = startCli("backup", inventory);
      // A first run that ends before its restic starts says why, instead of a bare timeout.
      const during = await Promise.race([
        waitForGuest((s) => s.snapshots.length > 0 && s.restic.length > 0, "the first run's restic"),
        first.done.then((run) => {
          throw new Error(
            `the first run ended (exit ${run.code}) before its restic started:\n${run.stdout}\n${run.stderr}`,
          );
        }),
      ]);
      await waitForLog("freezer", /^stopped \d+/m);
      const seqno = await vgSeqno();
      const second = await cli("backup", inventory);
      expect(second.code, second.stdout + second.stderr).toBe(1);
      expect(second.host("vm1")).toMatchObject({ status: "failed", error: { code: "locked" } });
      expect(second.host("vm1").error?.message).toMatch(/already running/);
      expect(second.job("data").snapshot).toBeNull();
      expect(second.stderr).not.toMatch(/snapshot \S+ created/);
      // The second run changed nothing: the same snapshot, the same LVM metadata.
      expect((await guest().state()).snapshots).toEqual(during.snapshots);
      expect(await vgSeqno()).toBe(seqno);
      await guest().run("pkill -CONT -x restic || true");
      const firstRun = await first.done;
      expect(firstRun.code, firstRun.stdout + firstRun.stderr).toBe(0);
      expect(await resticSnapshots("data")).toHaveLength(1);
    });

    full(
      "run_timeout expiring mid-backup: the host fails with code timeout and nothing is left",
      async () => {
        const inventory = await slowDataInventory("run-timeout", {
          mib: 8,
          defaults: { run_timeout: "30s" },
        });
        // restic hangs (SIGSTOP: a backend that never answers): only run_timeout ends this run.
        await guest().spawn(
          "freezer",
          `${WAIT_FOR_RESTIC}\nkill -STOP "$RESTIC_PID"\necho "stopped $RESTIC_PID"`,
        );
        const run = await cli("backup", inventory);
        expect(await spawnedLog("freezer")).toMatch(/^stopped \d+/m);
        expect(run.stderr).toMatch(/snapshot \S+ created/);
        expect(run.code, run.stdout + run.stderr).toBe(1);
        expect(run.host("vm1")).toMatchObject({ status: "failed", error: { code: "timeout" } });
        // The agent stops the hung restic (SIGINT and SIGCONT, so it runs its own cleanup) and cleans up.
        await expectGuestClean(90_000);
        expect(await resticSnapshots("data")).toEqual([]);
        expect(await resticLocks("data")).toEqual([]);
      },
    );
  });
}
