// `check` on real LVM: every LV and VG check of DESIGN §7 on a good config, each failing with its hint
// on a bad one, and the guest unchanged afterwards.
import { describe, expect, it } from "vitest";
import type { Check } from "../../../src/report/report-schema.js";
import { caseDir, cli, config, guest, writeInventory } from "../helpers/vm-fleet.js";

const checkNamed = (checks: readonly Check[], name: string): Check => {
  const found = checks.find((c) => c.name === name);
  if (found === undefined) throw new Error(`no check ${name} in ${JSON.stringify(checks, null, 2)}`);
  return found;
};

/** What `check` must not change: LVM metadata, the mount table, /run/rlvm-fleet, the repositories. */
async function guestFingerprint(): Promise<string> {
  return guest().run(String.raw`
vgs --noheadings -o vg_name,vg_seqno,lv_count,vg_free --units b
lvs --noheadings -o lv_name,lv_attr,lv_tags
findmnt -rn -o TARGET,SOURCE,OPTIONS | sort
ls -A /run/rlvm-fleet 2>/dev/null || true
find /srv/backup -newer /etc/rlvm-test/restic-password -path '*/snapshots/*' | sort
`);
}

export function checkCases(): void {
  describe("check on real LVM", () => {
    it("passes every LV and VG check on a good config, and changes nothing", async () => {
      const dir = caseDir("check-good");
      const inventory = writeInventory(dir, {
        vm1: config([
          { name: "root", category: "logical_volume_root", source: "/", lv: "lv_root", repos: ["root"] },
          {
            name: "data",
            category: "logical_volume_nonroot",
            source: "/data",
            lv: "lv_data",
            repos: ["data"],
          },
          {
            name: "xfs",
            category: "logical_volume_nonroot",
            source: "/srv/xfs/docs",
            lv: "lv_xfs",
            repos: ["xfs"],
            copyTo: ["copy"],
          },
        ]),
      });
      const before = await guestFingerprint();
      const run = await cli("check", inventory);
      expect(run.code, run.stdout + run.stderr).toBe(0);
      const host = run.host("vm1");
      expect(host.status).toBe("ok");
      expect(host.facts).toMatchObject({ hostname: "rlvm-vm", user: "root" });
      expect(host.facts?.lvm).toMatch(/2\.03/);
      // The guest's own /etc/os-release, as the agent read it there.
      expect(host.facts?.os).toMatch(/^Debian GNU\/Linux 12 \(bookworm\)$/);
      for (const check of host.checks) expect(check, check.name).toMatchObject({ ok: true, hint: "" });
      expect(checkNamed(host.checks, "lv:root").detail).toContain("vg0/lv_root exists");
      expect(checkNamed(host.checks, "mount:root").detail).toBe("vg0/lv_root is mounted at /");
      expect(checkNamed(host.checks, "mount:data").detail).toBe("vg0/lv_data is mounted at /data");
      expect(checkNamed(host.checks, "mount:xfs").detail).toBe("vg0/lv_xfs is mounted at /srv/xfs");
      expect(checkNamed(host.checks, "source:xfs").detail).toContain("/srv/xfs/docs is on vg0/lv_xfs");
      expect(checkNamed(host.checks, "source:root").detail).toContain("/ is on vg0/lv_root");
      expect(checkNamed(host.checks, "vg_free:vg0").detail).toMatch(/needs 768\.0 ?Mi?B? \(snapshots/);
      expect(host.checks.map((c) => c.name)).toEqual(
        expect.arrayContaining(["bash", "restic", "lvm", "leftovers", "lock", "vg_free:vg0"]),
      );
      expect(await guestFingerprint()).toBe(before);
    });

    it("fails, each with its hint, on a missing LV, an unmounted LV and a source outside its LV", async () => {
      await guest().run(
        "lvcreate -y -q -W y -L 32M -n lv_unmounted vg0 >/dev/null && mkfs.ext4 -q /dev/vg0/lv_unmounted",
      );
      const dir = caseDir("check-bad");
      const inventory = writeInventory(dir, {
        vm1: config([
          {
            name: "missing",
            category: "logical_volume_nonroot",
            source: "/data",
            lv: "lv_nope",
            snapshotSize: "32M",
            repos: ["data"],
          },
          {
            name: "unmounted",
            category: "logical_volume_nonroot",
            source: "/data",
            lv: "lv_unmounted",
            snapshotSize: "32M",
            repos: ["data"],
          },
          {
            name: "outside",
            category: "logical_volume_nonroot",
            source: "/srv/xfs/docs",
            lv: "lv_data",
            snapshotSize: "32M",
            repos: ["xfs"],
          },
          {
            name: "notroot",
            category: "logical_volume_root",
            source: "/",
            lv: "lv_data",
            snapshotSize: "32M",
            repos: ["root"],
          },
        ]),
      });
      const before = await guestFingerprint();
      const run = await cli("check", inventory);
      expect(run.code, run.stdout + run.stderr).toBe(1);
      const host = run.host("vm1");
      expect(host.status).toBe("failed");
      expect(host.error?.code).toBe("preflight");

      const missing = checkNamed(host.checks, "lv:missing");
      expect(missing).toMatchObject({ ok: false });
      expect(missing.detail).toContain("vg0/lv_nope not found");
      expect(missing.hint).toMatch(/check vg_name and lv_name of job missing/);

      expect(checkNamed(host.checks, "lv:unmounted")).toMatchObject({ ok: true });
      const unmounted = checkNamed(host.checks, "mount:unmounted");
      expect(unmounted).toMatchObject({ ok: false });
      expect(unmounted.detail).toMatch(/vg0\/lv_unmounted \(\d+:\d+\) is not mounted/);
      expect(unmounted.hint).toMatch(/mount it where backup_source_path lies/);

      const outsideMount = checkNamed(host.checks, "mount:outside");
      expect(outsideMount).toMatchObject({ ok: false });
      expect(outsideMount.detail).toContain("vg0/lv_data is mounted at /data; /srv/xfs/docs is not below it");
      const outside = checkNamed(host.checks, "source:outside");
      expect(outside).toMatchObject({ ok: false });
      expect(outside.detail).toMatch(
        /\/srv\/xfs\/docs is on \/dev\/mapper\/vg0-lv_xfs .* not on vg0\/lv_data/,
      );
      expect(outside.hint).toMatch(/backup_source_path must lie on the LV that is snapshotted/);

      const notRoot = checkNamed(host.checks, "mount:notroot");
      expect(notRoot).toMatchObject({ ok: false });
      expect(notRoot.detail).toMatch(/^\/ is \/dev\/mapper\/vg0-lv_root .*not vg0\/lv_data/);
      expect(notRoot.hint).toMatch(/needs the root filesystem on its LV/);

      // The good parts of the same config still pass.
      expect(checkNamed(host.checks, "mount:missing").ok).toBe(false); // "not checked: ... see lv:missing"
      expect(checkNamed(host.checks, "vg_free:vg0")).toMatchObject({ ok: true });
      expect(await guestFingerprint()).toBe(before);
    });

    it("fails vg_free when the snapshots do not fit in the VG's free space, and changes nothing", async () => {
      const free = Number((await guest().run("vgs --noheadings --units b --nosuffix -o vg_free vg0")).trim());
      const dir = caseDir("check-vg-full");
      const inventory = writeInventory(dir, {
        vm1: config(
          [
            {
              name: "data",
              category: "logical_volume_nonroot",
              source: "/data",
              lv: "lv_data",
              snapshotSize: "1G",
              repos: ["data"],
            },
            {
              name: "xfs",
              category: "logical_volume_nonroot",
              source: "/srv/xfs",
              lv: "lv_xfs",
              snapshotSize: "256M",
              repos: ["xfs"],
            },
          ],
          `[snapshot_settings]\nmin_vg_free_after_snapshots = "256M"\n`,
        ),
      });
      // 1 GiB + 256 MiB of snapshots fit in the ~1.4 GiB free; with the 256 MiB margin they do not.
      expect(free).toBeGreaterThan(1280 * 1024 ** 2);
      expect(free).toBeLessThan(1536 * 1024 ** 2);
      const before = await guestFingerprint();
      const run = await cli("check", inventory);
      expect(run.code, run.stdout + run.stderr).toBe(1);
      const host = run.host("vm1");
      expect(host).toMatchObject({ status: "failed", error: { code: "preflight" } });
      const vgFree = checkNamed(host.checks, "vg_free:vg0");
      expect(vgFree.ok).toBe(false);
      expect(vgFree.detail).toMatch(
        /needs 1\.5 ?Gi?B? \(snapshots 1\.2 ?Gi?B? \+ margin 256\.0 ?Mi?B?\), free 1\.\d ?Gi?B?/,
      );
      expect(vgFree.hint).toMatch(/free space in vg0 .*lower snapshot_size or min_vg_free_after_snapshots/);
      for (const check of host.checks.filter((c) => c.name !== "vg_free:vg0")) {
        expect(check, check.name).toMatchObject({ ok: true });
      }
      expect(await guestFingerprint()).toBe(before);
    });
  });
}
