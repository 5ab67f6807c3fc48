// Manual smoke run of the harness (not a test): npx tsx test/vm/harness/smoke.ts
import { bootGuest } from "./guest.js";
import { recordedTimings } from "./log.js";

const guest = await bootGuest();
try {
  console.log(
    await guest.run(
      "lvs; vgs; findmnt -n -o SOURCE,TARGET,FSTYPE,SIZE,USED -t ext4,xfs; restic version; uname -r; systemd-analyze || true; du -sxh / /usr /var 2>/dev/null",
    ),
  );
  const t0 = Date.now();
  await guest.reset(["data", "root"]);
  console.log(`reset with 2 repos: ${Date.now() - t0} ms`);
  console.log(await guest.state());
} finally {
  await guest.stop();
}
console.log(recordedTimings());
