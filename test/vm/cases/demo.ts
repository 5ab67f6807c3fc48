// `npm run demo -- --lvm` (test/vm/demo-lvm.ts) against the tier's guest: the newcomer's LVM demo works.
import { describe, expect, it } from "vitest";
import { runLvmDemo } from "../demo-lvm.js";
import { guest } from "../helpers/vm-fleet.js";

export function demoCases(): void {
  describe("the LVM demo", () => {
    it("backs up lv_nonroot and lv_root, shows each snapshot's lifetime and COW, and that none is left", async () => {
      let out = "";
      const code = await runLvmDemo(guest(), (text) => (out += text));
      expect(code, out).toBe(0);
      expect(out).toMatch(/RECAP backup 1 hosts?: ok=1 /);
      expect(out).toMatch(/ {2}data: snapshot vg0\/lv_data_rlvm_\S+ lived \d+\.\d s, peak COW \d+%/);
      expect(out).toMatch(/ {2}root: snapshot vg0\/lv_root_rlvm_\S+ lived \d+\.\d s, peak COW \d+%/);
      expect(out).toContain("  snapshots left: none");
      expect(out).toContain("  snapshot mounts left: 0");
      expect(out.match(/^ {4}\d+ snapshots?$/gm), out).toEqual(["    1 snapshots", "    1 snapshots"]);
    });
  });
}
