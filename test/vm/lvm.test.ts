// The VM tier: rlvm-fleet against real LVM in a Debian guest booted with qemu (DESIGN §9, issue 6).
// One guest for the whole tier (booted in beforeAll, powered off in afterAll), reset between tests;
// after every test the guest must hold nothing of rlvm-fleet's: no snapshot, no mount, no run directory.
// Run: npm run test:vm (or npx vitest run --project vm). RLVM_REQUIRE_VM=1 turns a skip into a failure.
import { afterAll, afterEach, beforeAll, beforeEach } from "vitest";
import { checkCases } from "./cases/check.js";
import { nonrootCases } from "./cases/nonroot.js";
import { rootCases } from "./cases/root.js";
import { mixedCases } from "./cases/mixed.js";
import { faultCases } from "./cases/faults.js";
import { installedCases } from "./cases/installed.js";
import { demoCases } from "./cases/demo.js";
import { bootGuest, type Guest } from "./harness/guest.js";
import { recordedTimings, recordTiming, vmLog } from "./harness/log.js";
import { describeVm } from "./harness/prerequisites.js";
import { expectGuestClean, resetGuest, setGuest } from "./helpers/vm-fleet.js";

describeVm("VM tier: rlvm-fleet on real LVM in a Debian guest", () => {
  let booted: Guest | undefined;
  let testStarted = 0;

  beforeAll(async () => {
    booted = await bootGuest();
    setGuest(booted);
  }, 40 * 60_000);

  afterAll(async () => {
    setGuest(undefined);
    await booted?.stop();
    vmLog("timings:");
    for (const { step, ms } of recordedTimings()) vmLog(`  ${(ms / 1000).toFixed(1).padStart(7)} s  ${step}`);
  }, 5 * 60_000);

  beforeEach(async () => {
    testStarted = Date.now();
    await resetGuest();
    recordTiming("reset", Date.now() - testStarted);
  }, 5 * 60_000);

  afterEach(async (context) => {
    recordTiming(`test: ${context.task.name}`, Date.now() - testStarted);
    // The cleanup guarantee, checked on the guest after every test.
    await expectGuestClean(60_000);
  }, 5 * 60_000);

  checkCases();
  nonrootCases();
  rootCases();
  mixedCases();
  faultCases();
  installedCases();
  demoCases();
});
