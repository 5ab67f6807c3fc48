#!/usr/bin/env bash
# rlvm-agent.sh — the host side of rlvm-fleet.
#
# Run by the controller's bootstrap, as root (sudo) or as the login user (become = none):
#
#     bash RUN_DIR/rlvm-agent.sh RUN_DIR      stdin: the plan (src/agent/protocol.ts), then kept open
#
# The plan says what to do; this script only does it. Stdout carries JSON events only, one per line,
# ending with exactly one `result` event; human diagnostics go to stderr. Exit status 0 when the result
# is ok or partial, 1 when it is failed.
#
# Rules kept throughout, because this runs as root on every server of a fleet:
#   - strict mode; every function is defined before `main "$@"`, the last command, and the built file
#     is one `{ ... }` group that bash parses whole before it runs any of it, so a truncated upload
#     runs nothing at all;
#   - plan values are decoded with printf %b after validating their encoding, and only ever used as
#     single words of argv arrays: no eval, no source, no `bash -c`, no data in a format string;
#   - external tools are resolved once to absolute paths (see find_tool) and run with stdin from
#     /dev/null and the event stream closed;
#   - restic runs only through restic_exec, which hands it its repository and password file through
#     RESTIC_REPOSITORY / RESTIC_PASSWORD_FILE and restic_env_file variables through `export`, all
#     inside the subshell of that one call: no secret is ever in an argv (argv is world-readable in
#     /proc);
#   - repository URLs are never printed: events and diagnostics name repositories by their LABEL.
#
# Only bash (4.4+), coreutils, util-linux, lvm2 and restic are used.

set -Eeuo pipefail
# inherit_errexit needs bash 4.4. On an older bash main() refuses to run with a proper result event,
# instead of this line killing the script before it could say why.
shopt -s inherit_errexit 2>/dev/null || true
# bash 5.2 makes `&` in a ${var//pattern/replacement} special; this script wants it literal.
shopt -u patsub_replacement 2>/dev/null || true
export LC_ALL=C
umask 077
IFS=$' \t\n'
unset CDPATH GLOBIGNORE POSIXLY_CORRECT

readonly AGENT_VERSION="0.1.0"
readonly PROTOCOL_VERSION=2
readonly PLAN_FORMAT=2
readonly RESTIC_MIN_VERSION="0.14"
# Seconds a read-only restic or LVM call in preflight may take before it is killed (a dead backend or
# a hung device must not hang the check).
readonly PREFLIGHT_TIMEOUT=60
# Where root keeps the hosts' locks: below the bootstrap's root-owned /run/rlvm-fleet, never in a
# world-writable directory such as /run/lock (see lock_location).
readonly ROOT_LOCK_PARENT="/run/rlvm-fleet"
readonly ROOT_LOCK_DIR="$ROOT_LOCK_PARENT/locks"
# Searched after PATH (sudo's secure_path usually has them all; a login user's PATH may lack sbin).
readonly FALLBACK_TOOL_DIRS="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Where stat, which checks every other tool's owner and mode (find_tool), is looked for.
readonly TRUSTED_TOOL_DIRS="/usr/bin:/bin"
# restic's PATH, for the programs it starts itself (ssh for sftp repositories, rclone).
readonly RESTIC_PATH="/usr/sbin:/usr/bin:/sbin:/bin"
readonly TOOLS="uname id stat findmnt flock timeout restic lvm lvs vgs lvcreate lvremove unshare mount umount chroot date sleep mkdir rm touch cp readlink sha256sum chmod mv mktemp mkfifo"
# The least-privilege mode (rlvm-fleet install-agent, inventory agent = "installed"): where the agent is
# installed, root-owned, with its version in its name (src/agent/installed-agent.ts names the same
# paths); the sudoers drop-in directory; and where the hosts' allow-lists of repositories are kept
# (one per inventory host: ALLOW_LIST_DIR/HOST.repositories).
readonly INSTALL_DIR="/usr/local/libexec/rlvm-fleet"
readonly INSTALLED_AGENT="$INSTALL_DIR/rlvm-agent-$AGENT_VERSION.sh"
readonly SUDOERS_DIR="/etc/sudoers.d"
readonly ALLOW_LIST_DIR="/etc/rlvm-fleet"
# What the bootstrap (or the installed agent's entry) prints when it runs, so the controller knows sudo
# is done (src/agent/deliver.ts READY_LINE).
readonly READY_LINE="rlvm-fleet-bootstrap-ready"
# A login user a sudoers rule can name (and a drop-in file can be named after: sudo skips names with a dot).
readonly SUDO_USER_RE='^[A-Za-z_][A-Za-z0-9_-]{0,31}$'
readonly SHA256_RE='^[0-9a-f]{64}$'
# One encoded plan value: safe bytes, or \xHH with lowercase hex (protocol.ts encodeValue).
readonly VALUE_RE='^([A-Za-z0-9/._,:@+=]|\\x[0-9a-f]{2})+$'
# Inventory host names, job names, repository IDs, run IDs.
readonly NAME_RE='^[A-Za-z0-9._-]+$'
# VG and LV names as LVM accepts them.
readonly LVM_NAME_RE='^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$'
# Byte counts (PLAN_LIMITS.maxBytes in src/agent/protocol.ts): bash arithmetic is signed 64-bit.
readonly BYTES_RE='^[0-9]{1,19}$'
readonly MAX_BYTES=9223372036854775807
# restic's --keep-* values (PLAN_LIMITS.maxKeep) and a VG margin in 1/100 % (PLAN_LIMITS.maxBasisPoints).
readonly MAX_KEEP=2147483647
readonly MAX_BASIS_POINTS=9999
# verify --restore-sample: files per job (PLAN_LIMITS.maxRestoreSample).
readonly MAX_RESTORE_SAMPLE=1000
# findmnt -r output: bytes as they are, or \xHH.
readonly FINDMNT_ESCAPED_RE='^([^\\]|\\x[0-9a-fA-F]{2})*$'
