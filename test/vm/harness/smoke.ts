// Not a test: builds the guest image if needed, boots it, shows its LVM layout and powers it off.
//     npx tsx test/vm/harness/smoke.ts [bookworm|trixie]   (RLVM_VM_KEEP=1 keeps the run directory and console log)
import { bootGuest } from "./guest.js";
import { SUITES, type Suite } from "./image.js";
import { recordedTimings } from "./log.js";

const suite = (process.argv[2] ?? "bookworm") as Suite;
if (!SUITES.includes(suite)) throw new Error(`unknown suite ${suite} (one of ${SUITES.join(", ")})`);
const guest = await bootGuest(suite);
try {
  console.log(
    await guest.run(
      "lvs; vgs; findmnt -n -o SOURCE,TARGET,FSTYPE,SIZE,USED -t ext4,xfs; restic version; uname -r; systemd-analyze || true",
    ),
  );
  await guest.reset(["data"]);
  console.log(await guest.state());
} finally {
  await guest.stop();
}
for (const { step, ms } of recordedTimings()) console.log(`${(ms / 1000).toFixed(1).padStart(7)} s  ${step}`);
