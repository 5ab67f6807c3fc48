// Which restic this release is tested with: CI runs the integration tier on Debian 12's restic 0.14
// and again on Debian 13's 0.18, and the VM tier on both releases' guests. The agent refuses anything
// older than RESTIC_MIN_VERSION (agents/src/prelude.sh), 0.14; a restic newer than the newest tested
// works as far as anyone knows, but what changed since is not exercised here, so `check` says so
// instead of staying silent.
export const NEWEST_TESTED_RESTIC = "0.18";

/** A warning for a restic newer than the newest tested MAJOR.MINOR; null when tested or unknown. */
export function untestedResticWarning(version: string | null): string | null {
  const match = /^(\d+)\.(\d+)/.exec(version ?? "");
  const [, newestMajor = "0", newestMinor = "0"] = /^(\d+)\.(\d+)/.exec(NEWEST_TESTED_RESTIC) ?? [];
  if (match === null) return null;
  const [major, minor] = [Number(match[1]), Number(match[2])];
  const newer = major > Number(newestMajor) || (major === Number(newestMajor) && minor > Number(newestMinor));
  return newer
    ? `restic ${version} is newer than the newest restic this release is tested with (${NEWEST_TESTED_RESTIC}.x): it should work, but what changed since is untested (see the README's compatibility section)`
    : null;
}
