// The least-privilege mode on real LVM: install-agent through the broad sudo rule that exists before
// the rollout, the broad rule removed, then an LV job backed up by the installed agent for a login user
// whose only sudo rule is that agent's.
import { describe, expect, it } from "vitest";
import { INSTALLED_AGENT, allowListPath, sudoersDropIn } from "../../../src/agent/installed-agent.js";
import { cli, dataJob, expectGuestClean, guest, resticSnapshots, vm1Inventory } from "../helpers/vm-fleet.js";
import { expectSnapshotReported } from "./nonroot.js";

/** A second login user on the guest, with the test's key; its broad rule is the pre-rollout one. */
const USER = "rlvmlp";
const BROAD_RULE = `/etc/sudoers.d/${USER}-broad`;

export function installedCases(): void {
  describe('agent = "installed" on real LVM', () => {
    it("installs through the broad rule; after it is gone, the installed agent backs up an LV and no root shell is left", async () => {
      const login = guest().user;
      await guest().run(`id -u ${USER} >/dev/null 2>&1 || useradd --create-home --shell /bin/bash ${USER}
install -d -m 0700 -o ${USER} -g ${USER} /home/${USER}/.ssh
install -m 0600 -o ${USER} -g ${USER} /home/${login}/.ssh/authorized_keys /home/${USER}/.ssh/authorized_keys
printf '%s ALL=(ALL:ALL) NOPASSWD: ALL\\n' ${USER} >${BROAD_RULE}
chmod 0440 ${BROAD_RULE}
`);
      try {
        const inventory = vm1Inventory("installed", [dataJob()], { user: USER, agent: "installed" });
        const install = await cli("install-agent", inventory);
        expect(install.code, install.stdout + install.stderr).toBe(0);
        expect(install.host("vm1")?.checks.map((c) => [c.name, c.ok])).toEqual([
          ["install:agent", true],
          ["install:allow_list", true],
          ["install:sudoers", true],
        ]);

        // The rollout's last step, the operator's: the broad rule goes.
        await guest().run(`rm -f ${BROAD_RULE}`);
        const shell = await guest().exec(`runuser -u ${USER} -- sudo -n bash -c id`);
        expect(shell.code, shell.stdout).not.toBe(0);
        expect(shell.stdout).not.toMatch(/uid=0/);

        const backup = await cli("backup", inventory);
        expect(backup.code, backup.stdout + backup.stderr).toBe(0);
        expect(backup.host("vm1")).toMatchObject({ status: "ok", error: null });
        expect(backup.host("vm1")?.facts?.user).toBe("root");
        expectSnapshotReported(backup, "data", "lv_data");
        expect(await resticSnapshots("data")).toHaveLength(1);
        await expectGuestClean();

        // A tampered installed agent is refused before it runs: no snapshot is taken.
        await guest().run(`echo '# tampered' >>${INSTALLED_AGENT}`);
        const tampered = await cli("backup", inventory);
        expect(tampered.code).toBe(1);
        expect(tampered.host("vm1")?.error?.code).toBe("agent_not_installed");
        expect(await resticSnapshots("data")).toHaveLength(1);
      } finally {
        await guest().run(
          `rm -f ${BROAD_RULE} ${sudoersDropIn(USER)} ${INSTALLED_AGENT} ${allowListPath("vm1")}`,
        );
      }
    });
  });
}
