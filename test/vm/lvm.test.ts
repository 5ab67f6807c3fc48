// The VM tier: rlvm-fleet against real LVM in Debian guests booted with qemu (DESIGN §9, issues 6, 18).
// Two guests, one after the other (a TCG guest takes a core: never both at once): Debian 12 (bookworm,
// restic 0.14) runs every case, then Debian 13 (trixie, restic 0.18) the core LVM cases (case-scope.ts).
// Each guest is booted in its block's beforeAll, powered off in its afterAll, and reset between tests;
// after every test the guest must hold nothing of rlvm-fleet's: no snapshot, no mount, no run directory.
// Run: npm run test:vm (or npx vitest run --project vm; -t trixie for one guest). RLVM_REQUIRE_VM=1
// turns a skip into a failure.
import { afterAll, afterEach, beforeAll, beforeEach } from "vitest";
import { checkCases } from "./cases/check.js";
import { nonrootCases } from "./cases/nonroot.js";
import { rootCases } from "./cases/root.js";
import { mixedCases } from "./cases/mixed.js";
import { faultCases } from "./cases/faults.js";
import { installedCases } from "./cases/installed.js";
import { demoCases } from "./cases/demo.js";
import { bootGuest, type Guest } from "./harness/guest.js";
import { prebuildImage, type Suite } from "./harness/image.js";
import { recordedTimings, recordTiming, vmLog } from "./harness/log.js";
import { describeVm } from "./harness/prerequisites.js";
import type { CaseScope } from "./helpers/case-scope.js";
import { expectGuestClean, resetGuest, setGuest } from "./helpers/vm-fleet.js";

/** `next`: the suite of the guest booted after this one, whose image builds while this one boots. */
function guestTier(suite: Suite, title: string, scope: CaseScope, next?: Suite): void {
  describeVm(`VM tier, ${title}: rlvm-fleet on real LVM`, [suite], () => {
    let booted: Guest | undefined;
    let testStarted = 0;
    let timingsFrom = 0;

    beforeAll(async () => {
      timingsFrom = recordedTimings().length;
      if (next !== undefined) prebuildImage(next);
      booted = await bootGuest(suite);
      setGuest(booted);
    }, 40 * 60_000);

    afterAll(async () => {
      setGuest(undefined);
      await booted?.stop();
      vmLog(`${suite} timings:`);
      for (const { step, ms } of recordedTimings().slice(timingsFrom)) {
        vmLog(`  ${(ms / 1000).toFixed(1).padStart(7)} s  ${step}`);
      }
    }, 5 * 60_000);

    beforeEach(async () => {
      testStarted = Date.now();
      await resetGuest();
      recordTiming(`${suite} reset`, Date.now() - testStarted);
    }, 5 * 60_000);

    afterEach(async (context) => {
      recordTiming(`${suite} test: ${context.task.name}`, Date.now() - testStarted);
      // The cleanup guarantee, checked on the guest after every test.
      await expectGuestClean(60_000);
    }, 5 * 60_000);

    if (scope === "full") checkCases();
    nonrootCases(scope);
    rootCases(scope);
    if (scope === "full") mixedCases();
    faultCases(scope);
    if (scope === "full") installedCases();
    if (scope === "full") demoCases();
  });
}

guestTier("bookworm", "Debian 12 bookworm guest (restic 0.14), every case", "full", "trixie");
guestTier("trixie", "Debian 13 trixie guest (restic 0.18), core cases", "core");
