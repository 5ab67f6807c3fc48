// lv_nonroot on real LVM: ext4 (/data) and XFS (/srv/xfs), original paths, incremental runs, a
// read-only snapshot, and a consistent view of a file changed while the backup runs.
import { describe, expect, it } from "vitest";
import { type CaseScope, fullOnly } from "../helpers/case-scope.js";
import {
  cli,
  type CliRun,
  dataJob,
  guest,
  resticDump,
  resticPaths,
  resticSnapshots,
  spawnedLog,
  vm1Inventory,
  WAIT_FOR_SNAPSHOT,
  writeRandom,
} from "../helpers/vm-fleet.js";

/** A snapshot's lifetime and peak COW use are in the report of every LV job. */
export function expectSnapshotReported(run: CliRun, job: string, lv: string): void {
  const snapshot = run.job(job).snapshot;
  expect(snapshot, `snapshot of job ${job}`).not.toBeNull();
  expect(snapshot?.name).toMatch(new RegExp(`^vg0/${lv}_rlvm_`));
  expect(snapshot?.lifetime_ms).toBeGreaterThan(0);
  expect(typeof snapshot?.cow_peak_percent).toBe("number");
  // The table says it too, on the job's row: "snapshot life" holds e.g. "12.3s, COW 4%".
  const row = run.stdout.split("\n").find((line) => new RegExp(`^│ vm1\\s+│ ${job}\\s+│`).test(line));
  expect(row, run.stdout).toMatch(new RegExp(`│ [\\d.]+s, COW ${snapshot?.cow_peak_percent}% +│`));
}

/**
 * A guest-side probe for guest().spawn: once the agent's private mount namespace shows the snapshot
 * bound over MOUNTPOINT, log that namespace's view of it and whether it can be written to.
 */
function probeSnapshotMount(mountpoint: string): string {
  return `${WAIT_FOR_SNAPSHOT}
for _ in $(seq 600); do
  for pid in $(pgrep -f 'rlvm-agent[.]sh' || true); do
    src=$(nsenter -t "$pid" -m findmnt -n -o SOURCE --mountpoint ${mountpoint} 2>/dev/null || true)
    case $src in
      *rlvm_*)
        echo "pid=$pid"
        nsenter -t "$pid" -m findmnt -rn -o TARGET,SOURCE,FSTYPE,OPTIONS --mountpoint ${mountpoint} | sed 's/^/mount=/'
        if nsenter -t "$pid" -m touch ${mountpoint}/rlvm-write-probe 2>/dev/null; then echo "write=ok"; else echo "write=refused"; fi
        echo "host-view=$(findmnt -n -o SOURCE --mountpoint ${mountpoint})"
        exit 0
        ;;
    esac
  done
  sleep 0.1
done
echo "never saw the snapshot over ${mountpoint}"
`;
}

/**
 * A restic for one run, bound over the guest's: the real one, then, after a `restore`, one byte of the
 * first restored file (by name) flipped in place: a restore that silently returns other bytes. Only
 * the test puts it there; the agent has no hook for it.
 */
const CORRUPTING_RESTIC = String.raw`#!/bin/bash
/usr/local/lib/rlvm-test/restic.real "$@"
rc=$?
if [[ $1 == restore ]]; then
  target="" prev=""
  for a in "$@"; do
    if [[ $prev == --target ]]; then target=$a; fi
    prev=$a
  done
  f=$(find "$target" -type f | sort | head -n 1)
  if [[ -n $f ]]; then
    if [[ $(head -c 1 "$f") == X ]]; then b=Y; else b=X; fi
    printf %s "$b" | dd of="$f" bs=1 seek=0 conv=notrunc status=none
    echo "$f" >/var/tmp/rlvm-test-corrupted
  fi
fi
exit $rc
`;

/** Runs fn with CORRUPTING_RESTIC bound over /usr/bin/restic on the guest, and removes it after. */
async function withCorruptingRestic<T>(fn: () => Promise<T>): Promise<T> {
  await guest().run(`mkdir -p /usr/local/lib/rlvm-test
cp /usr/bin/restic /usr/local/lib/rlvm-test/restic.real
cat >/usr/local/lib/rlvm-test/restic-corrupting <<'WRAPPER'
${CORRUPTING_RESTIC}WRAPPER
chmod 0755 /usr/local/lib/rlvm-test/restic-corrupting
rm -f /var/tmp/rlvm-test-corrupted
mount --bind /usr/local/lib/rlvm-test/restic-corrupting /usr/bin/restic`);
  try {
    return await fn();
  } finally {
    await guest().run("umount /usr/bin/restic; rm -rf /usr/local/lib/rlvm-test");
  }
}

/** Eight small files more in /data/docs, so a sample of 5 has files to choose from. */
const SAMPLE_FILES = "for n in 1 2 3 4 5 6 7 8; do seq 1 $((n * 300)) >/data/docs/sample-$n.txt; done; sync";

export function nonrootCases(scope: CaseScope = "full"): void {
  const full = fullOnly(scope);
  describe("lv_nonroot on real LVM", () => {
    it("backs up /data from a snapshot under its original path; the second run is incremental", async () => {
      const inventory = vm1Inventory("nonroot", [dataJob({ excludes: ["/data/cache"] })]);
      const first = await cli("backup", inventory);
      expect(first.code, first.stdout + first.stderr).toBe(0);
      expect(first.host("vm1")).toMatchObject({ status: "ok", error: null });
      const job = first.job("data");
      expect(job).toMatchObject({ category: "logical_volume_nonroot", status: "ok" });
      expectSnapshotReported(first, "data", "lv_data");
      expect(job.repos).toHaveLength(1);
      expect(job.repos[0]).toMatchObject({ status: "ok", files_unmodified: 0 });
      expect(job.repos[0]?.files_new).toBeGreaterThanOrEqual(2);

      const snapshots = await resticSnapshots("data");
      expect(snapshots).toHaveLength(1);
      expect(snapshots[0]).toMatchObject({ hostname: "vm1", paths: ["/data"] });
      expect(snapshots[0]?.tags).toEqual(expect.arrayContaining(["rlvm-fleet", "job:data"]));
      expect(snapshots[0]?.id.startsWith(job.repos[0]?.snapshot_id ?? "-")).toBe(true);
      const paths = await resticPaths("data", "latest");
      expect(paths).toEqual(expect.arrayContaining(["/data", "/data/docs/a.txt", "/data/docs/numbers.txt"]));
      expect(paths.filter((p) => p.startsWith("/data/cache"))).toEqual([]);
      expect(paths.filter((p) => p.includes("/run/rlvm-fleet"))).toEqual([]);
      expect(await resticDump("data", "latest", "/data/docs/a.txt")).toBe("hello from lv_data\n");

      await guest().run("echo 'a new file' >/data/docs/b.txt");
      const second = await cli("backup", inventory, ["--format", "table"]);
      expect(second.code, second.stdout + second.stderr).toBe(0);
      expectSnapshotReported(second, "data", "lv_data");
      const repo = second.job("data").repos[0];
      expect(repo?.files_unmodified).toBeGreaterThanOrEqual(2);
      expect(repo?.files_new).toBe(1);
      const after = await resticSnapshots("data");
      expect(after).toHaveLength(2);
      // restic found its parent: the same host and path, so the run was incremental.
      expect(after[1]?.parent).toBe(after[0]?.id);
      // The table shows the snapshot's lifetime and peak COW use.
      expect(second.stdout).toMatch(/COW/i);
    });

    full(
      "mounts the snapshot read-only, and stores a file changed mid-run as it was at the snapshot",
      async () => {
        await writeRandom("/data/bulk/blob.bin", 48);
        await guest().run("echo BEFORE >/data/docs/consistency.txt; sync");
        const inventory = vm1Inventory("nonroot-consistency", [dataJob()]);
        await guest().spawn("probe", probeSnapshotMount("/data"));
        // While the snapshot exists: change the file on the live /data, and say whether the snapshot
        // still existed after the change was on disk.
        await guest().spawn(
          "change",
          `${WAIT_FOR_SNAPSHOT}
echo AFTER >/data/docs/consistency.txt
sync
lvs --noheadings -o lv_name @rlvm_fleet | grep -q . && echo "changed-while-snapshot"`,
        );
        const run = await cli("backup", inventory);
        expect(run.code, run.stdout + run.stderr).toBe(0);
        expectSnapshotReported(run, "data", "lv_data");

        const probe = await spawnedLog("probe");
        expect(probe).toMatch(/^mount=\/data \/dev\/mapper\/vg0-lv_data_rlvm_\S+ ext4 ro[,\s]/m);
        expect(probe).toContain("write=refused");
        // The host's own view of /data never changed: the bind lives in the agent's namespace only.
        expect(probe).toContain("host-view=/dev/mapper/vg0-lv_data");

        expect(await spawnedLog("change")).toContain("changed-while-snapshot");
        expect((await guest().run("cat /data/docs/consistency.txt")).trim()).toBe("AFTER");
        expect(await resticDump("data", "latest", "/data/docs/consistency.txt")).toBe("BEFORE\n");
        expect(await guest().run("test ! -e /data/rlvm-write-probe && echo absent")).toContain("absent");
      },
    );

    full(
      "backup --verify-sample 5: restores 5 files of the snapshot just written and matches them byte for byte with the still mounted LVM snapshot",
      async () => {
        await guest().run(SAMPLE_FILES);
        const inventory = vm1Inventory("nonroot-verify-sample", [dataJob({ excludes: ["/data/cache"] })]);
        const run = await cli("backup", inventory, ["--verify-sample", "5", "--format", "table"]);
        expect(run.code, run.stdout + run.stderr).toBe(0);
        const job = run.job("data");
        expect(job.status).toBe("ok");
        const sample = job.restore;
        expect(sample).toMatchObject({
          repo: "/srv/backup/data",
          status: "ok",
          requested: 5,
          compared_with: "lvm_snapshot",
          sampled: 5,
          matched: 5,
          changed_since_backup: 0,
          mismatched: 0,
          missing: 0,
          error: null,
        });
        expect(sample?.candidates).toBeGreaterThanOrEqual(10);
        expect(sample?.snapshot_id).toBe(job.repos[0]?.snapshot_id?.slice(0, 8));
        expect(sample?.sampled_paths.every((p) => p.startsWith("/data/docs/"))).toBe(true);
        // The sample ran while the snapshot was mounted: its lifetime includes it.
        expect(sample?.snapshot_held_ms).toBe(sample?.duration_ms);
        expect(job.snapshot?.lifetime_ms).toBeGreaterThan(sample?.duration_ms ?? Infinity);
        expect(run.stdout).toMatch(/5\/5 matched, \+[\d.]+s snapshot/);
        expectSnapshotReported(run, "data", "lv_data");
      },
    );

    full(
      "backup --verify-sample: a restore that returns other bytes fails the job (verify_sample_failed), the backup kept, nothing left behind",
      async () => {
        await guest().run(SAMPLE_FILES);
        const inventory = vm1Inventory("nonroot-verify-sample-corrupt", [
          dataJob({ excludes: ["/data/cache"] }),
        ]);
        const run = await withCorruptingRestic(() => cli("backup", inventory, ["--verify-sample", "5"]));
        expect(run.code, run.stdout + run.stderr).toBe(1);
        const corrupted = (
          await guest().run("cat /var/tmp/rlvm-test-corrupted; rm -f /var/tmp/rlvm-test-corrupted")
        ).trim();
        const flipped = corrupted.replace(/^.*\/restore\.\d+/, "");
        expect(flipped).toMatch(/^\/data\/docs\//);
        const job = run.job("data");
        expect(job.status).toBe("failed");
        expect(job.repos[0]).toMatchObject({ status: "ok" });
        expect(job.restore).toMatchObject({
          status: "failed",
          compared_with: "lvm_snapshot",
          sampled: 5,
          matched: 4,
          mismatched: 1,
          mismatch_paths: [flipped],
        });
        expect(run.host("vm1").error).toMatchObject({ code: "verify_sample_failed" });
        expect(run.host("vm1").error?.message).toContain(
          `differ from the LVM snapshot restic read them from: ${flipped}`,
        );
        // The backup itself is written and whole: restic's own copy of the file is the live one.
        expect(await resticSnapshots("data")).toHaveLength(1);
        const live = await guest().run(`cat ${flipped}`);
        expect(await resticDump("data", "latest", flipped)).toBe(live);
      },
    );

    full(
      "backs up an XFS LV: the snapshot mounts with nouuid, read-only, and restic stores /srv/xfs",
      async () => {
        await writeRandom("/srv/xfs/bulk/blob.bin", 24);
        const inventory = vm1Inventory("nonroot-xfs", [
          dataJob({ name: "xfs", source: "/srv/xfs", lv: "lv_xfs", repos: ["xfs"] }),
        ]);
        await guest().spawn("probe", probeSnapshotMount("/srv/xfs"));
        const run = await cli("backup", inventory);
        expect(run.code, run.stdout + run.stderr).toBe(0);
        expect(run.job("xfs")).toMatchObject({ status: "ok" });
        expectSnapshotReported(run, "xfs", "lv_xfs");
        const probe = await spawnedLog("probe");
        expect(probe).toMatch(/^mount=\/srv\/xfs \/dev\/mapper\/vg0-lv_xfs_rlvm_\S+ xfs ro,\S*nouuid/m);
        expect(probe).toContain("write=refused");
        const snapshots = await resticSnapshots("xfs");
        expect(snapshots).toHaveLength(1);
        expect(snapshots[0]?.paths).toEqual(["/srv/xfs"]);
        const paths = await resticPaths("xfs", "latest");
        expect(paths).toEqual(expect.arrayContaining(["/srv/xfs/docs/x.txt", "/srv/xfs/bulk/blob.bin"]));
        expect(await resticDump("xfs", "latest", "/srv/xfs/docs/x.txt")).toBe("hello from lv_xfs\n");
      },
    );
  });
}
