// The seed's "mixed" layout (a root LV, a data LV and a standard path in one config), and prune and
// status against the guest's repositories.
import { describe, expect, it } from "vitest";
import {
  cli,
  dataJob,
  guest,
  resticPaths,
  resticSnapshots,
  rootJob,
  vm1Inventory,
} from "../helpers/vm-fleet.js";
import { expectSnapshotReported } from "./nonroot.js";

/** The progress lines of a run (stderr, timestamped when not a terminal), without their timestamps. */
function progress(stderr: string): string[] {
  return stderr
    .split("\n")
    .map((line) => line.replace(/^\S+Z \[vm1\] /, ""))
    .filter((line) => line !== "");
}

export function mixedCases(): void {
  describe("the seed's mixed layout on real LVM", () => {
    it("takes every snapshot before the first restic call, removes them, then copies", async () => {
      const inventory = vm1Inventory("mixed", [
        rootJob(),
        dataJob({ copyTo: ["copy"] }),
        { name: "docs", category: "standard_path", source: "/srv/xfs/docs", repos: ["xfs"] },
      ]);
      const run = await cli("backup", inventory);
      expect(run.code, run.stdout + run.stderr).toBe(0);
      expect(run.host("vm1").status).toBe("ok");
      expectSnapshotReported(run, "root", "lv_root");
      expectSnapshotReported(run, "data", "lv_data");
      expect(run.job("docs")).toMatchObject({ status: "ok", snapshot: null });
      expect(run.job("data").copies).toEqual([
        expect.objectContaining({ to: "/srv/backup/copy", status: "ok" }),
      ]);

      const lines = progress(run.stderr);
      const index = (pattern: RegExp) => lines.findIndex((l) => pattern.test(l));
      const lastIndex = (pattern: RegExp) => lines.map((l) => pattern.test(l)).lastIndexOf(true);
      const created = lines.filter((l) => /^snapshot vg0\/\S+ created$/.test(l));
      expect(created).toHaveLength(2);
      // One set: both snapshots carry the run's one id, and both exist before the first restic call.
      const runIds = created.map((l) => /_rlvm_(\S+) created/.exec(l)?.[1]);
      expect(new Set(runIds).size).toBe(1);
      const firstRestic = index(/ → \/srv\/backup\//);
      expect(firstRestic, lines.join("\n")).toBeGreaterThan(lastIndex(/^snapshot vg0\/\S+ created$/));
      // The copy runs after the last snapshot is gone.
      const copied = index(/^data: copied to \/srv\/backup\/copy/);
      expect(copied, lines.join("\n")).toBeGreaterThan(lastIndex(/^snapshot vg0\/\S+ removed after/));

      expect((await resticSnapshots("root"))[0]?.paths).toEqual(["/"]);
      expect((await resticSnapshots("data"))[0]?.paths).toEqual(["/data"]);
      expect((await resticSnapshots("xfs"))[0]?.paths).toEqual(["/srv/xfs/docs"]);
      const copies = await resticSnapshots("copy");
      expect(copies).toHaveLength(1);
      expect(copies[0]).toMatchObject({ hostname: "vm1", paths: ["/data"] });
      // Each job's data went into its own repository, and only there.
      expect(await resticPaths("data", "latest")).toContain("/data/docs/a.txt");
      expect(await resticPaths("root", "latest")).not.toContain("/data/docs/a.txt");
    });
  });

  describe("prune and status on the guest's repositories", () => {
    it("forgets by retention in repositories and copies, dry run first; status shows the latest", async () => {
      const inventory = vm1Inventory("retention", [dataJob({ copyTo: ["copy"], keepLast: 1 })]);
      for (let i = 0; i < 2; i++) {
        await guest().run(`echo run ${i} >/data/docs/run.txt`);
        const backup = await cli("backup", inventory);
        expect(backup.code, backup.stdout + backup.stderr).toBe(0);
      }
      const before = await resticSnapshots("data");
      expect(before).toHaveLength(2);
      expect(await resticSnapshots("copy")).toHaveLength(2);
      const newest = before[1]?.short_id;

      const dry = await cli("prune", inventory, ["--dry-run"]);
      expect(dry.code, dry.stdout + dry.stderr).toBe(0);
      const dryPrunes = dry.job("data").prunes;
      expect(dryPrunes.map((p) => p.repo).sort()).toEqual(["/srv/backup/copy", "/srv/backup/data"]);
      for (const prune of dryPrunes)
        expect(prune).toMatchObject({ status: "ok", dry_run: true, kept: 1, removed: 1 });
      expect(await resticSnapshots("data")).toHaveLength(2);
      expect(await resticSnapshots("copy")).toHaveLength(2);

      const prune = await cli("prune", inventory);
      expect(prune.code, prune.stdout + prune.stderr).toBe(0);
      const dataPrune = prune.job("data").prunes.find((p) => p.repo === "/srv/backup/data");
      expect(dataPrune).toMatchObject({ status: "ok", dry_run: false, kept: 1, removed: 1 });
      expect(dataPrune?.removed_ids).toEqual([before[0]?.short_id]);
      const after = await resticSnapshots("data");
      expect(after.map((s) => s.short_id)).toEqual([newest]);
      expect(await resticSnapshots("copy")).toHaveLength(1);

      const status = await cli("status", inventory, ["--max-age", "1h"]);
      expect(status.code, status.stdout + status.stderr).toBe(0);
      const latest = status.job("data").latest;
      const dataLatest = latest.find((l) => l.repo === "/srv/backup/data");
      expect(dataLatest).toMatchObject({ snapshot_id: newest, stale: false, error: null });
      expect(dataLatest?.age_s).toBeLessThan(3600);
      expect(latest.find((l) => l.repo === "/srv/backup/copy")).toMatchObject({ stale: false, error: null });
    });
  });
}
