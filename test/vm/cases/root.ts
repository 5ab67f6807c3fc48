// lv_root on real LVM: restic chrooted into a snapshot of the running root, with --one-file-system.
import { describe, expect, it } from "vitest";
import { type CaseScope, fullOnly } from "../helpers/case-scope.js";
import {
  cli,
  guest,
  PASSWORD_FILE,
  repo,
  resticPaths,
  resticSnapshots,
  ROOT_BULK,
  rootJob,
  vm1Inventory,
} from "../helpers/vm-fleet.js";
import { expectSnapshotReported } from "./nonroot.js";

/** Bulk that the lv_root tests leave out, so that a run stays small under TCG. */

/** What must never be in a backup of / made from a snapshot (DESIGN §5, the upstream regressions). */
function forbidden(paths: readonly string[]): string[] {
  return paths.filter(
    (p) =>
      /^\/(proc|sys|dev|run)\/./.test(p) || // the bound /proc, /sys, /dev and the agent's tmpfs on /run
      p.includes("/run/rlvm") || // restic, the repositories, the password files and the cache bound in
      /^\/root\/\.cache\/restic\/./.test(p) || // restic's cache
      /^\/(data|srv\/xfs|srv\/backup)\/./.test(p), // other filesystems
  );
}

/** restic's cache directories (one per repository ID) on the guest's live root. */
async function cacheDirs(): Promise<string[]> {
  const out = await guest().run("ls -A /root/.cache/restic 2>/dev/null || true");
  return out.split("\n").filter((l) => l !== "" && l !== "CACHEDIR.TAG");
}

export function rootCases(scope: CaseScope = "full"): void {
  const full = fullOnly(scope);
  describe("lv_root on real LVM", () => {
    it("backs up / from a snapshot of the running root: excludes honoured, no pseudo-filesystems, the cache persists", async () => {
      // A second repository on the root LV itself, as a one-disk server would have it.
      await guest().run(
        `mkdir -p /var/backups/rlvm && restic init --repo /var/backups/rlvm/root --password-file ${PASSWORD_FILE} >/dev/null`,
        {
          timeoutMs: 120_000,
        },
      );
      const inventory = vm1Inventory("root", [
        rootJob({
          excludes: [...ROOT_BULK, "/opt/rlvm-test/excluded"],
          repos: ["root", "/var/backups/rlvm/root"],
        }),
      ]);
      try {
        await backUpRootTwice(inventory);
      } finally {
        await guest().run("rm -rf /var/backups/rlvm");
      }
    });

    full(
      "backup --verify-sample 3 of /: the restored files match the snapshot the chrooted restic read",
      async () => {
        const run = await cli("backup", vm1Inventory("root-verify-sample", [rootJob()]), [
          "--verify-sample",
          "3",
        ]);
        expect(run.code, run.stdout + run.stderr).toBe(0);
        const job = run.job("root");
        expect(job.status).toBe("ok");
        expect(job.restore).toMatchObject({
          status: "ok",
          compared_with: "lvm_snapshot",
          sampled: 3,
          matched: 3,
          mismatched: 0,
          missing: 0,
          error: null,
        });
        // Paths as restic stored them from inside the chroot: the root's own, never the snapshot's mount.
        for (const path of job.restore?.sampled_paths ?? []) expect(path).not.toMatch(/^\/run\/|rlvm-fleet/);
        expect(job.restore?.snapshot_held_ms).toBe(job.restore?.duration_ms);
      },
    );

    async function backUpRootTwice(inventory: string): Promise<void> {
      const first = await cli("backup", inventory);
      expect(first.code, first.stdout + first.stderr).toBe(0);
      expect(first.job("root")).toMatchObject({ category: "logical_volume_root", status: "ok" });
      expect(first.job("root").repos.map((r) => r.status)).toEqual(["ok", "ok"]);
      expectSnapshotReported(first, "root", "lv_root");
      const snapshots = await resticSnapshots("root");
      expect(snapshots).toHaveLength(1);
      expect(snapshots[0]).toMatchObject({ hostname: "vm1", paths: ["/"] });

      const paths = await resticPaths("root", "latest");
      expect(paths).toEqual(
        expect.arrayContaining(["/etc", "/etc/hostname", "/etc/fstab", "/opt/rlvm-test/kept/file.txt"]),
      );
      expect(paths.filter((p) => p.startsWith("/opt/rlvm-test/excluded"))).toEqual([]);
      for (const bulk of ROOT_BULK)
        expect(paths.filter((p) => p === bulk || p.startsWith(`${bulk}/`))).toEqual([]);
      expect.soft(forbidden(paths), "pseudo-filesystems, bound paths, cache").toEqual([]);
      // The repository on the root LV, as it was at snapshot time, must not be backed up into itself.
      expect
        .soft(
          paths.filter((p) => p.startsWith("/var/backups/rlvm/")),
          "the repository on lv_root",
        )
        .toEqual([]);

      // restic's cache lives on the live root, bound into the chroot: it is there after the run.
      // One cache directory per repository ID: the one of /srv/backup/root is among them.
      const id = /"id":\s*"([0-9a-f]+)"/.exec(
        await guest().run(
          `restic --repo ${repo("root")} --password-file ${PASSWORD_FILE} --no-lock cat config`,
        ),
      )?.[1];
      expect(id).toBeDefined();
      expect(await cacheDirs()).toContain(id);
      const cachedBefore = await guest().run(`find /root/.cache/restic/${id} -type f | sort`);
      expect(cachedBefore).toMatch(/\/snapshots\//);

      await guest().run("echo 'changed' >/etc/rlvm-test/marker.txt");
      const second = await cli("backup", inventory);
      expect(second.code, second.stdout + second.stderr).toBe(0);
      expectSnapshotReported(second, "root", "lv_root");
      const repoResult = second.job("root").repos[0];
      expect(repoResult?.files_unmodified).toBeGreaterThan(10);
      const after = await resticSnapshots("root");
      expect(after[1]?.parent).toBe(after[0]?.id);
      const secondPaths = await resticPaths("root", "latest");
      expect(secondPaths).toContain("/etc/rlvm-test/marker.txt");
      // The first run's cache existed when the second run's snapshot was taken: it must not be in it.
      expect.soft(forbidden(secondPaths), "pseudo-filesystems, bound paths, cache (second run)").toEqual([]);
      expect
        .soft(
          secondPaths.filter((p) => p.startsWith("/var/backups/rlvm/")),
          "the repository on lv_root",
        )
        .toEqual([]);
      // The cache persisted and grew: every file of the first run is still there.
      const cachedAfter = await guest().run(`find /root/.cache/restic/${id} -type f | sort`);
      for (const file of cachedBefore.split("\n").filter((l) => l !== ""))
        expect(cachedAfter).toContain(file);
    }

    full(
      "is not disturbed by processes coming and going while restic scans / (the bound /proc)",
      async () => {
        // A busy server: short-lived processes all the time, so /proc's entries change during the scan.
        await guest().spawn(
          "churn",
          "for k in 1 2 3 4 5 6; do (end=$((SECONDS + 300)); while [ $SECONDS -lt $end ]; do sleep 0.03; done) & done; wait",
        );
        const inventory = vm1Inventory("root-churn", [rootJob()]);
        try {
          // Before the fix (restic lstat()ing the bound /proc's entries) this failed on every try here.
          const run = await cli("backup", inventory);
          expect(run.code, run.stdout + run.stderr).toBe(0);
          expect(run.job("root").repos[0]).toMatchObject({ status: "ok", error: null });
        } finally {
          await guest().run("pkill -f '/run/rlvm-test/churn[.]sh' || true; sleep 0.5");
        }
      },
    );

    full(
      "with an empty exclude_paths, nothing from /proc, /sys, /dev, the bound repositories or restic's cache is in the backup",
      async () => {
        // restic's cache has content before the snapshot is taken.
        await guest().run(
          `restic --repo ${repo("root")} --password-file ${PASSWORD_FILE} snapshots >/dev/null`,
        );
        const inventory = vm1Inventory("root-no-excludes", [rootJob({ snapshotSize: "512M", excludes: [] })]);
        const run = await cli("backup", inventory);
        expect(run.code, run.stdout + run.stderr).toBe(0);
        expectSnapshotReported(run, "root", "lv_root");
        const paths = await resticPaths("root", "latest");
        expect(paths).toEqual(
          expect.arrayContaining(["/usr/bin/bash", "/etc/hostname", "/proc", "/dev", "/sys"]),
        );
        expect(forbidden(paths)).toEqual([]);
      },
    );
  });
}
