#!/usr/bin/env bash
# This file is generated from agents/src/ by scripts/build-agent.mjs: edit those, then npm run build.
# One compound command, parsed to its closing brace before any of it runs: a truncated file runs nothing.
{
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

# --- output: log, JSON, events, the result ---------------------------------------------------------

RESULT_EMITTED=0
# Most functions return their value here.
REPLY=""
# Warning codes emitted so far (backup's result lists them).

log() {
  printf 'rlvm-agent: %s\n' "$*" >&2 2>/dev/null || true
}

# json_string VALUE: REPLY = VALUE as a JSON string literal (quotes included). Backslash, quote and
# every control character 0x01-0x1f are escaped; NUL cannot occur in a bash string.
json_string() {
  local s=$1 bs=$'\\' q='"' c hex i
  s=${s//"$bs"/"$bs$bs"}
  s=${s//"$q"/"$bs$q"}
  s=${s//$'\n'/"${bs}n"}
  s=${s//$'\r'/"${bs}r"}
  s=${s//$'\t'/"${bs}t"}
  if [[ $s == *[$'\001'-$'\037']* ]]; then
    for ((i = 1; i < 32; i++)); do
      printf -v hex '%02x' "$i"
      printf -v c '%b' "\\x$hex"
      s=${s//"$c"/"${bs}u00$hex"}
    done
  fi
  REPLY="\"$s\""
}

# json_fields KEY TYPED [KEY TYPED]...: REPLY = `"KEY":VALUE,...`. TYPED is one of s:STRING,
# n:INTEGER, b:true, b:false, z: (null), j:JSON (already encoded). Keys are the script's own constants.
json_fields() {
  local out="" sep="" key val
  while (($# >= 2)); do
    key=$1 val=$2
    shift 2
    case $val in
      s:*)
        json_string "${val#s:}"
        val=$REPLY
        ;;
      n:*)
        val=${val#n:}
        if [[ ! $val =~ ^-?[0-9]+$ ]]; then val=null; fi
        ;;
      b:true | b:false) val=${val#b:} ;;
      z:) val=null ;;
      j:*) val=${val#j:} ;;
      *)
        log "internal error: json_fields: bad value for $key"
        return 1
        ;;
    esac
    out+="$sep\"$key\":$val"
    sep=","
  done
  REPLY=$out
}

# emit EVENT [KEY TYPED]...: one event line on the event stream (fd 3, the agent's real stdout).
emit() {
  local event=$1
  shift
  json_fields "$@"
  # The controller may be gone: a failed write must never abort the cleanup that follows.
  printf '{"v":%d,"event":"%s"%s}\n' "$PROTOCOL_VERSION" "$event" "${REPLY:+,$REPLY}" >&3 2>/dev/null || true
}

# finish MESSAGE: the command ran to its end. Emit the one result event (code null) and exit 0. What
# the run means (ok, partial, failed) the controller decides from the events.
finish() {
  emit_result "" "$1"
}

# fail CODE MESSAGE: the agent cannot go on. Emit the one result event with CODE and exit 1.
fail() {
  emit_result "$1" "$2"
}

emit_result() {
  local code=$1 message=$2 code_value="z:"
  if [[ -n $code ]]; then code_value="s:$code"; fi
  cleanup_all
  RESULT_EMITTED=1
  log "result: ${code:-done}: $message"
  emit result code "$code_value" message "s:$message"
  if [[ -n $code ]]; then exit 1; fi
  exit 0
}

# --- small helpers --------------------------------------------------------------------------------

declare -a WORDS=() LINES=() REPLY_ARGS=()

# split_words STRING: WORDS = STRING split on blanks and newlines, without globbing.
split_words() {
  local -
  set -f
  local IFS=$' \t\n'
  # shellcheck disable=SC2206 # deliberate word splitting; globbing is off (set -f, local to here)
  WORDS=($1)
}

# split_lines STRING: LINES = the non-empty lines of STRING, without globbing.
split_lines() {
  local -
  set -f
  local IFS=$'\n'
  # shellcheck disable=SC2206 # deliberate line splitting; globbing is off (set -f, local to here)
  LINES=($1)
}

# meaningful_line TEXT: REPLY = the first line starting with "Fatal:" (restic's error), else the
# last non-blank line, trimmed, whole: whatever holds repository text is masked before cut_line cuts it.
meaningful_line() {
  local line found=""
  split_lines "$1"
  for line in "${LINES[@]}"; do
    line=${line#"${line%%[![:space:]]*}"}
    if [[ -z $line ]]; then continue; fi
    if [[ $line == Fatal:* ]]; then
      found=$line
      break
    fi
    found=$line
  done
  REPLY=$found
}

# cut_line TEXT: REPLY = TEXT, at most 400 characters ("..." marks a cut).
cut_line() {
  local s=$1
  if ((${#s} > 400)); then s="${s:0:400}..."; fi
  REPLY=$s
}

# first_meaningful_line TEXT: REPLY = meaningful_line, cut to 400 characters (text with no secret in it).
first_meaningful_line() {
  meaningful_line "$1"
  cut_line "$REPLY"
}

# human_bytes BYTES: REPLY = e.g. "1.5 GiB".
human_bytes() {
  local bytes=$1 div=1 i=0
  local -a units=(B KiB MiB GiB TiB PiB)
  if ((bytes < 1024)); then
    REPLY="$bytes B"
    return 0
  fi
  while ((bytes >= div * 1024 && i < 5)); do
    div=$((div * 1024))
    i=$((i + 1))
  done
  REPLY="$((bytes / div)).$(((bytes % div) * 10 / div)) ${units[i]}"
}

# version_at_least VERSION MIN: true if VERSION (e.g. 0.16.4-dev) >= MIN (MAJOR.MINOR).
version_at_least() {
  local re='^([0-9]+)\.([0-9]+)'
  [[ $1 =~ $re ]] || return 1
  local major=$((10#${BASH_REMATCH[1]})) minor=$((10#${BASH_REMATCH[2]}))
  [[ $2 =~ $re ]] || return 1
  local want_major=$((10#${BASH_REMATCH[1]})) want_minor=$((10#${BASH_REMATCH[2]}))
  ((major > want_major || (major == want_major && minor >= want_minor)))
}

# join_by SEPARATOR [ITEM]...: REPLY = the items joined.
join_by() {
  local sep=$1 out="" item first=1
  shift
  for item in "$@"; do
    if ((first)); then out=$item first=0; else out+="$sep$item"; fi
  done
  REPLY=$out
}

# shell_quote VALUE: REPLY = VALUE quoted for a human to paste into a shell (hints only).
shell_quote() {
  printf -v REPLY '%q' "$1"
}

# strip_trailing_slashes PATH: REPLY = PATH without trailing slashes ("/" stays "/").
strip_trailing_slashes() {
  local p=$1
  while [[ $p == */ && $p != / ]]; do p=${p%/}; done
  REPLY=$p
}

# path_is_under PATH DIR: true if PATH is DIR or lies below it (by name; both absolute).
path_is_under() {
  local p dir
  strip_trailing_slashes "$1"
  p=$REPLY
  strip_trailing_slashes "$2"
  dir=$REPLY
  [[ $dir == / || $p == "$dir" || $p == "$dir"/* ]]
}

# --- tools, capture, the restic runner ------------------------------------------------------------

declare -A TOOL=()              # tool name -> absolute path, "" when not found
declare -A TOOL_REFUSED=()      # tool name -> "PATH (why)" of the candidates find_tool would not run
CAP_OUT="" CAP_ERR="" CAP_RC=0
# The restic (or other tool) run in the background now, and the command that started it.
CHILD_PID=""
declare -a CHILD_CMD=()

# find_tool NAME: TOOL[NAME] = the absolute path of executable NAME, or "" if there is none.
#
# Searched, in order: the directories of PATH, then FALLBACK_TOOL_DIRS. RLVM_AGENT_TOOL_PATH, when set,
# replaces that whole list (the unit tests use it to hide /usr/bin/restic); sudo's env_reset drops it,
# so a login user cannot set it for root. Relative PATH entries are ignored. A candidate is taken only
# when it and its directory (symlinks followed) are owned by root or the running user and writable by
# neither group nor others (tool_problem): a file another user could replace is never run, even in a
# root-owned directory, and a root-owned world-writable directory (a /tmp in PATH) is never searched.
# stat itself, which makes that check, is looked for in TRUSTED_TOOL_DIRS only and checks itself.
find_tool() {
  local name=$1 rest dir
  if [[ -n ${TOOL[$name]+set} ]]; then return 0; fi
  if [[ $name != stat ]]; then find_tool stat; fi
  tool_search_list "$name"
  TOOL[$name]=""
  rest=$REPLY
  while [[ -n $rest ]]; do
    dir=${rest%%:*}
    if [[ $rest == *:* ]]; then rest=${rest#*:}; else rest=""; fi
    if [[ $dir != /* ]]; then continue; fi
    if [[ -f $dir/$name && -x $dir/$name ]]; then
      if [[ $name == stat ]] && ((EUID == 0)) && [[ ! -O $dir || ! -O $dir/$name ]]; then
        REPLY="it or its directory is not owned by root"
      elif [[ $name == stat ]]; then
        tool_problem "$dir" "$dir/$name" "$dir/$name"
      else
        tool_problem "$dir" "$dir/$name" "${TOOL[stat]}"
      fi
      if [[ -n $REPLY ]]; then
        TOOL_REFUSED[$name]+="${TOOL_REFUSED[$name]:+, }$dir/$name ($REPLY)"
        continue
      fi
      TOOL[$name]=$dir/$name
      return 0
    fi
  done
}

# tool_search_list NAME: REPLY = the directories find_tool searches for NAME, colon-separated.
tool_search_list() {
  if [[ -n ${RLVM_AGENT_TOOL_PATH-} ]]; then
    REPLY=$RLVM_AGENT_TOOL_PATH
  elif [[ $1 == stat ]]; then
    REPLY=$TRUSTED_TOOL_DIRS
  else
    REPLY="${PATH-}:$FALLBACK_TOOL_DIRS"
  fi
}

# first_tool_candidate NAME: REPLY = the first directory of NAME's search list holding an executable
# NAME, or "".
first_tool_candidate() {
  local name=$1 rest dir
  tool_search_list "$name"
  rest=$REPLY
  REPLY=""
  while [[ -n $rest ]]; do
    dir=${rest%%:*}
    if [[ $rest == *:* ]]; then rest=${rest#*:}; else rest=""; fi
    if [[ $dir == /* && -f $dir/$name && -x $dir/$name ]]; then
      REPLY=$dir
      return 0
    fi
  done
}

# tool_problem DIR FILE STAT: REPLY = why FILE (in DIR) must not be run, or "" when it may: both must be
# owned by root or the running user, without group or other write permission. STAT is the stat to ask.
tool_problem() {
  local dir=$1 file=$2 stat=$3
  REPLY=""
  if [[ -z $stat ]]; then
    REPLY="cannot check its owner and mode: no stat in ${TRUSTED_TOOL_DIRS//:/, }"
    return 0
  fi
  capture "$stat" -L -c '%u %a' -- "$dir" "$file"
  split_lines "$CAP_OUT"
  if ((CAP_RC != 0 || ${#LINES[@]} != 2)); then
    REPLY="cannot check its owner and mode"
    return 0
  fi
  stat_lines_problem "${LINES[0]}" "${LINES[1]}"
}

# stat_lines_problem DIR_LINE FILE_LINE: tool_problem's verdict on the "%u %a" lines of a directory and
# of the file in it.
stat_lines_problem() {
  local line uid mode i
  REPLY=""
  for i in 0 1; do
    if ((i == 0)); then line=$1; else line=$2; fi
    if [[ ! $line =~ ^([0-9]+)\ ([0-7]+)$ ]]; then
      REPLY="cannot check its owner and mode"
      return 0
    fi
    uid=${BASH_REMATCH[1]}
    mode=$((8#${BASH_REMATCH[2]}))
    if ((uid != 0 && uid != EUID)); then
      REPLY="owned by uid $uid"
    elif (((mode & 8#022) != 0)); then
      printf -v REPLY 'mode %04o: group or others may write' "$mode"
    fi
    if [[ -n $REPLY ]]; then
      if ((i == 0)); then REPLY="its directory has $REPLY"; else REPLY="it has $REPLY"; fi
      REPLY=${REPLY/has owned/is owned}
      return 0
    fi
  done
}

# init_tools: every tool of TOOLS, found as find_tool finds it, but with one stat for the first
# candidates of all of them: a stat per tool cost each host some 26 programs started. A candidate that
# this one stat refuses (or a stat that fails) is left to find_tool, which searches on.
init_tools() {
  local name i
  local -a found=() pairs=()
  find_tool stat
  for name in $TOOLS; do
    if [[ -n ${TOOL[$name]+set} ]]; then continue; fi
    first_tool_candidate "$name"
    if [[ -n $REPLY ]]; then
      found+=("$name")
      pairs+=("$REPLY" "$REPLY/$name")
    fi
  done
  if ((${#found[@]} > 0)) && have_tool stat; then
    capture "${TOOL[stat]}" -L -c '%u %a' -- "${pairs[@]}"
    split_lines "$CAP_OUT"
    if ((CAP_RC == 0 && ${#LINES[@]} == ${#pairs[@]})); then
      for i in "${!found[@]}"; do
        stat_lines_problem "${LINES[2 * i]}" "${LINES[2 * i + 1]}"
        if [[ -z $REPLY ]]; then TOOL[${found[i]}]=${pairs[2 * i + 1]}; fi
      done
    fi
  fi
  for name in $TOOLS; do
    find_tool "$name"
    if [[ -n ${TOOL_REFUSED[$name]-} ]]; then log "not running ${TOOL_REFUSED[$name]}"; fi
  done
}

have_tool() {
  [[ -n ${TOOL[$1]-} ]]
}

# capture CMD [ARG]...: run CMD (an absolute path, or one of this script's exec-ing functions below)
# with stdin from /dev/null and the event stream closed. CAP_OUT = its stdout, CAP_ERR = its stderr
# (trailing newlines removed), CAP_RC = its exit status. No temporary file is involved: the three
# values come back NUL-separated through a pipe.
capture() {
  local rc=""
  CAP_OUT="" CAP_ERR=""
  {
    IFS= read -r -d '' CAP_OUT || true
    IFS= read -r -d '' rc || true
    IFS= read -r -d '' CAP_ERR || true
  } < <(capture_child "$@")
  if [[ $rc =~ ^[0-9]+$ ]]; then CAP_RC=$rc; else CAP_RC=255; fi
}

capture_child() {
  set +e
  trap - ERR
  local out="" err="" rc=0
  exec 5>&1
  err=$(
    {
      out=$("$@" </dev/null 2>&4 3>&- 4>&- 5>&-)
      rc=$?
      printf '%s\0%s\0' "$out" "$rc" >&5
    } 4>&1
  )
  printf '%s\0' "$err"
}

# with_timeout SECONDS CMD [ARG]...: exec CMD under coreutils timeout (TERM, KILL 10 s later). Exit
# status 124 means it timed out. Only ever runs inside capture's subshell.
# shellcheck disable=SC2317 # run through capture
with_timeout() {
  local seconds=$1
  shift
  if have_tool timeout; then
    exec "${TOOL[timeout]}" -k 10 "$seconds" "$@"
  fi
  exec "$@"
}

# run CMD [ARG]...: run a tool for its side effect; CAP_* as capture, and the failure is logged.
run() {
  capture "$@"
  if ((CAP_RC != 0)); then log "'${1##*/}' failed (status $CAP_RC): $CAP_ERR"; fi
  return "$CAP_RC"
}

# now_ms: REPLY = milliseconds since the epoch.
now_ms() {
  capture "${TOOL[date]}" +%s%3N
  if ((CAP_RC == 0)) && [[ $CAP_OUT =~ ^[0-9]+$ ]]; then REPLY=$CAP_OUT; else REPLY=0; fi
}

# reap PID TENTHS: wait for a child of ours to exit, SIGKILL it after TENTHS tenths of a second.
reap() {
  local pid=$1 waited=0
  while kill -0 "$pid" 2>/dev/null && ((waited < $2)); do
    "${TOOL[sleep]}" 0.1 </dev/null || true
    waited=$((waited + 1))
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# restic_exec KIND INDEX TIMEOUT ARG...: exec restic, the one way this script runs it. KIND says what it
# works on: `repo` INDEX (REPO_*), `view` INDEX (that repository as a backup in its job's view sees it:
# bound into the chroot for logical_volume_root, see prepare_view), `copy` INDEX (a copy destination,
# COPY_*), `copy_from` INDEX (that destination, and its source repository as restic copy's source), or
# `none` (restic version). The repositories and password files go in through the environment and the
# restic_env_file variables are exported, all in this subshell only (capture's, or a background
# child's), never in argv. TIMEOUT 0 means none.
# shellcheck disable=SC2317 # run through capture or in the background
restic_exec() {
  local kind=$1 t=$2 seconds=$3 i from
  local -a restic=("${TOOL[restic]}")
  shift 3
  if ((BASH_SUBSHELL == 0)); then
    log "internal error: restic_exec outside a subshell"
    return 1
  fi
  unset RESTIC_REPOSITORY RESTIC_REPOSITORY_FILE RESTIC_PASSWORD RESTIC_PASSWORD_FILE RESTIC_PASSWORD_COMMAND \
    RESTIC_FROM_REPOSITORY RESTIC_FROM_REPOSITORY_FILE RESTIC_FROM_PASSWORD RESTIC_FROM_PASSWORD_FILE \
    RESTIC_FROM_PASSWORD_COMMAND
  for i in "${!ENV_KEYS[@]}"; do export "${ENV_KEYS[i]}=${ENV_VALS[i]}"; done
  # What restic starts (ssh for sftp:, rclone for rclone:) comes from root's own directories only.
  export PATH=$RESTIC_PATH
  case $kind in
    repo) export RESTIC_REPOSITORY="${REPO_URL[t]}" RESTIC_PASSWORD_FILE="${REPO_PWFILE[t]}" ;;
    view)
      export RESTIC_REPOSITORY="${RESTIC_REPO_AT[t]:-${REPO_URL[t]}}"
      export RESTIC_PASSWORD_FILE="${RESTIC_PW_AT[t]:-${REPO_PWFILE[t]}}"
      if [[ -n $RESTIC_CACHE ]]; then export RESTIC_CACHE_DIR=$RESTIC_CACHE TMPDIR=/run/rlvm/tmp; fi
      if ((${#RESTIC_PREFIX[@]} > 0)); then restic=("${RESTIC_PREFIX[@]}"); fi
      ;;
    copy) export RESTIC_REPOSITORY="${COPY_URL[t]}" RESTIC_PASSWORD_FILE="${COPY_PWFILE[t]}" ;;
    maintained) export RESTIC_REPOSITORY="${MAINT_URL[t]}" RESTIC_PASSWORD_FILE="${MAINT_PWFILE[t]}" ;;
    copy_from)
      from=${COPY_FROM[t]}
      export RESTIC_REPOSITORY="${COPY_URL[t]}" RESTIC_PASSWORD_FILE="${COPY_PWFILE[t]}"
      export RESTIC_FROM_REPOSITORY="${REPO_URL[from]}" RESTIC_FROM_PASSWORD_FILE="${REPO_PWFILE[from]}"
      ;;
    none) ;;
    *)
      log "internal error: restic_exec: unknown kind $kind"
      return 1
      ;;
  esac
  if ((seconds > 0)); then
    with_timeout "$seconds" "${restic[@]}" "$@"
  fi
  exec "${restic[@]}" "$@"
}

# sanitize_restic_text TEXT [REPO LABEL]...: REPLY = TEXT with each raw repository string replaced by
# its LABEL, the secrets of each REPO (its URL password, as written and percent-decoded, and rclone's
# inline values) hidden wherever they appear, any URL user-info up to the last '@' of its word masked,
# and every restic_env_file value hidden. Mask first, cut after (cut_line), so no cut ever splits a
# secret out of reach of these replacements.
sanitize_restic_text() {
  local s=$1 rest out="" i secret
  local re='^(.*://)[^[:space:]"'"'"'<>]*@(.*)$'
  shift
  while (($# >= 2)); do
    if [[ -n $1 ]]; then
      s=${s//"$1"/"$2"}
      repo_secrets "$1"
      for secret in "${SECRETS[@]}"; do
        if ((${#secret} >= 3)); then s=${s//"$secret"/"***"}; fi
      done
    fi
    shift 2
  done
  rest=$s
  while [[ $rest =~ $re ]]; do
    out="***@${BASH_REMATCH[2]}$out"
    rest=${BASH_REMATCH[1]}
  done
  s=$rest$out
  for i in "${!ENV_VALS[@]}"; do
    if ((${#ENV_VALS[i]} >= 4)); then s=${s//"${ENV_VALS[i]}"/"***"}; fi
  done
  REPLY=$s
}

declare -a SECRETS=()

# repo_secrets REPO: SECRETS = the credentials inside a repository string, as src/config/rules.ts
# (credentialSpans) finds them: a URL's password up to the last '@' (the whole user-info when it has no
# ':', except for sftp://), also percent-decoded; rclone's unquoted inline values (`,key=value`).
repo_secrets() {
  local repo=$1 rest info value decoded
  SECRETS=()
  if [[ $repo == rclone:* ]]; then
    rest=${repo#rclone:}
    rest=${rest#:}
    if [[ $rest != *,* ]]; then return 0; fi
    rest=${rest#*,}
    rest=${rest%%:*},
    while [[ -n $rest ]]; do
      value=${rest%%,*}
      rest=${rest#*,}
      if [[ $value == *=* && -n ${value#*=} ]]; then SECRETS+=("${value#*=}"); fi
    done
    return 0
  fi
  if [[ $repo != *://*@* ]]; then return 0; fi
  rest=${repo#*://}
  info=${rest%@*}
  if [[ $info == *:* ]]; then
    value=${info#*:}
  elif [[ $repo == sftp://* ]]; then
    return 0
  else
    value=$info
  fi
  SECRETS+=("$value")
  if [[ $value == *%* && $value != *\\* ]]; then
    printf -v decoded '%b' "${value//%/\\x}"
    SECRETS+=("$decoded")
  fi
}

# error_line ERR_FILE [URL LABEL]...: REPLY = the meaningful line of restic's stderr with every URL's
# credentials masked, then cut to 400 characters.
error_line() {
  local text=""
  if [[ -f $1 ]]; then text=$(<"$1"); fi
  restic_plain_stderr "$text"
  meaningful_line "$REPLY"
  sanitize_restic_text "$REPLY" "${@:2}"
  cut_line "$REPLY"
}

# restic_error_text ERR_FILE T: REPLY = the meaningful line of restic's stderr, sanitised.
restic_error_text() {
  error_line "$1" "${TARGET_URL[$2]}" "${TARGET_LABEL[$2]}"
}

# config_repo_id TEXT: REPLY = the repository id in `restic cat config`'s JSON, or "" when TEXT holds
# none that is 64 lowercase hex digits (restic's output is validated like any other input).
config_repo_id() {
  local re='"id":[[:space:]]*"([^"]*)"' id=""
  REPLY=""
  if [[ $1 =~ $re ]]; then id=${BASH_REMATCH[1]}; fi
  if [[ $id =~ $SHA256_RE ]]; then REPLY=$id; fi
}

# restic_read_config KIND INDEX: exec `restic cat config`, read-only and lock-free, within
# PREFLIGHT_TIMEOUT. Not restic_exec itself, so that a stopped or killed read is never followed by a
# `restic unlock` (unlock_after_child): it held no lock.
# shellcheck disable=SC2317 # run in the background
restic_read_config() {
  restic_exec "$1" "$2" "$PREFLIGHT_TIMEOUT" cat config --no-lock --no-cache
}

# emit_repo_identities: one repo_identity event per target (list_targets) whose repository opens, with
# one `restic cat config` per distinct repository and password file, before the command's first use
# of them. A repository that does not open emits nothing here: the command's own restic call reports
# why. TARGET_REPO_ID[T] = the id read for target T.
emit_repo_identities() {
  local t key out err
  local -A opened=()
  TARGET_REPO_ID=()
  for t in "${!TARGET_ID[@]}"; do
    target_password_file "$t"
    key=${TARGET_URL[t]}$'\n'$REPLY
    if [[ -z ${opened[$key]+set} ]]; then
      out="$RUN_DIR/config.${TARGET_ID[t]}.out" err="$RUN_DIR/config.${TARGET_ID[t]}.err"
      run_restic_bg "$out" "$err" restic_read_config "${TARGET_KIND[t]}" "${TARGET_INDEX[t]}"
      opened[$key]=""
      if ((REPLY == 0)) && [[ -f $out ]]; then
        config_repo_id "$(<"$out")"
        opened[$key]=$REPLY
      fi
    fi
    if [[ -n ${opened[$key]} ]]; then
      TARGET_REPO_ID[t]=${opened[$key]}
      emit repo_identity repo "s:${TARGET_ID[t]}" repo_id "s:${opened[$key]}"
    fi
  done
}

# run_restic_bg OUT ERR FUNC ARG...: start FUNC in the background with its output in files, wait for it
# (a signal interrupts the wait; cleanup_all then stops it with SIGINT). REPLY = its exit status.
run_restic_bg() {
  local out=$1 err=$2 rc=0
  shift 2
  CHILD_CMD=("$@")
  "$@" </dev/null >"$out" 2>"$err" 3>&- &
  CHILD_PID=$!
  wait "$CHILD_PID" || rc=$?
  CHILD_PID=""
  # Killed by a signal (exit 128+N): its lock may be left in the repository.
  if ((rc > 128)); then unlock_after_child "$@"; fi
  REPLY=$rc
}

# restic_locked_retry OUT ERR FUNC ARG...: run_restic_bg, waiting while another restic holds the
# repository's lock (several hosts share repositories), for LOCK_WAIT_SECONDS at most: restic 0.16 and
# later wait themselves (restic_retry_lock_argv); an older restic is run again, up to
# LOCK_RETRY_ATTEMPTS more times. REPLY = the exit status.
restic_locked_retry() {
  local out=$1 err=$2 attempt=0 rc text
  shift 2
  if restic_retry_lock_argv "$@"; then
    run_restic_bg "$out" "$err" "${RETRY_ARGV[@]}"
    return 0
  fi
  while :; do
    run_restic_bg "$out" "$err" "$@"
    rc=$REPLY
    if ((rc == 0)); then return 0; fi
    text=""
    if [[ -f $err ]]; then text=$(<"$err"); fi
    restic_failure_code "$rc" "$text"
    if [[ $REPLY != repo_locked ]] || ((attempt >= LOCK_RETRY_ATTEMPTS)); then
      REPLY=$rc
      return 0
    fi
    attempt=$((attempt + 1))
    lock_retry_delay "$attempt"
    log "repository locked by another restic; retrying in $REPLY s"
    "${TOOL[sleep]}" "$REPLY" </dev/null || true
  done
}

# stop_child: a running restic gets SIGINT, so it removes its repository lock, then SIGKILL after 30 s.
# SIGCONT too: a stopped restic (someone's SIGSTOP, a debugger) would act on SIGINT only when resumed.
stop_child() {
  local pid=$CHILD_PID
  if [[ -z $pid ]]; then return 0; fi
  kill -INT "$pid" 2>/dev/null || true
  kill -CONT "$pid" 2>/dev/null || true
  reap "$pid" 300
  CHILD_PID=""
  unlock_after_child "${CHILD_CMD[@]}"
}

# unlock_after_child restic_exec KIND INDEX ...: that restic was stopped or killed, maybe while it took
# or held a repository lock (restic itself can leave one when interrupted as it takes it). `restic
# unlock` removes only the locks restic calls stale (their process is gone from this machine, or not
# refreshed for 30 minutes), never a live restic's; without it the next forget or prune of that
# repository would find it locked.
unlock_after_child() {
  local kind=${2-} t=${3-}
  if [[ ${1-} != restic_exec ]]; then return 0; fi
  case $kind in
    repo | view) unlock_target repo "$t" ;;
    copy | maintained) unlock_target "$kind" "$t" ;;
    copy_from) unlock_target repo "${COPY_FROM[t]}" && unlock_target copy "$t" ;;
    *) ;;
  esac
}

# unlock_target KIND INDEX: `restic unlock` against a repository or copy destination, 20 s at most.
unlock_target() {
  restic_exec "$1" "$2" 0 unlock </dev/null >/dev/null 2>&1 3>&- &
  reap "$!" 200
}

# --- plan -----------------------------------------------------------------------------------------

# The plan, parsed once by read_plan into these arrays (parallel arrays, one index per record).
PLAN_LINENO=0
# The plan as read (one line per record), for the agent that enter_private_namespace starts.
PLAN_RAW=""
PLAN_RUN_ID=""
PLAN_HOST=""
PLAN_COMMAND=""
PLAN_ENV_FILE=""
PLAN_DRY_RUN=false
PLAN_MAINTAIN=false             # verify, phase 2: no restore drill; check the repositories of the check records
declare -A PLAN_SEEN=()         # singleton record keys seen
declare -a VG_NAME=()           # the VGs with snapshots in this run, in plan order
declare -A VG_SNAPSHOTS=()      # VG -> the sum of the run's snapshot sizes (the controller adds them up)
declare -A VG_MARGIN=()         # VG -> bytes to keep free after the run's snapshots
declare -A VG_MARGIN_BP=()      # VG -> or that, in 1/100 % of the VG's size
declare -a JOB_NAME=() JOB_CATEGORY=() JOB_SOURCE=() JOB_VG=() JOB_LV=() JOB_SIZE=() JOB_REMOUNT_RO=()
declare -A JOB_INDEX=()         # job name -> index
# shellcheck disable=SC2034 # parsed now, used by backup (restic --exclude)
declare -a EXCLUDE_JOB=() EXCLUDE_PATH=()
declare -a REPO_ID=() REPO_JOB=() REPO_URL=() REPO_PWFILE=() REPO_LABEL=()
declare -A REPO_INDEX=()        # repo ID -> index
# shellcheck disable=SC2034 # COPY_FROM is parsed now, used by backup (restic copy --from-repo)
declare -a COPY_ID=() COPY_JOB=() COPY_FROM=() COPY_URL=() COPY_PWFILE=() COPY_LABEL=()
declare -A ID_SEEN=()           # repo and copy IDs share one namespace
declare -A RETENTION=()         # repo or copy id -> "last daily weekly monthly yearly"
declare -A PRUNE_REPO_ID=()     # maintained id -> the restic repository id it must have to be pruned
declare -A CHECK_REPO_ID=()     # verify, maintain: repo or copy id -> the restic repository id it must have
PLAN_SUBSET=""                  # verify: restic check --read-data-subset (read_data_subset record)
PLAN_RESTORE_SAMPLE=0           # verify's restore drill, backup's --verify-sample: files per job (restore_sample)
declare -A READ_JOBS=()         # status: repo or copy id -> the jobs (space-separated) whose snapshots it reads
# A maintenance host's prune plan: repositories the inventory declares, outside any job of this host,
# with the restic id the backed-up hosts read there, and one scoped forget per host and job using it.
declare -a MAINT_ID=() MAINT_URL=() MAINT_PWFILE=() MAINT_LABEL=() MAINT_REPO_ID=()
declare -A MAINT_INDEX=()       # maintained ID -> index
declare -a FORGET_FOR_REPO=() FORGET_FOR_HOST=() FORGET_FOR_JOB=() FORGET_FOR_KEEP=()
declare -A FORGET_FOR_SEEN=()
declare -a TARGET_KIND=() TARGET_INDEX=() TARGET_ID=() TARGET_JOB=() TARGET_URL=() TARGET_LABEL=()
declare -a TARGET_REPO_ID=()    # restic's repository id per target, as emit_repo_identities read it
declare -a FIELDS=() VALS=()
# install: the login user the sudoers rule names, whether sudo asks it for its password, and the
# repository allow-list (sha256 of each repository string, and its masked label).
INSTALL_USER="" INSTALL_SUDO="" INSTALL_ANY_REPOSITORY=0
declare -a ALLOW_HASH=() ALLOW_LABEL=()

# next_plan_line: FIELDS = the words of the next plan line. Fails on EOF and on an empty line.
next_plan_line() {
  FIELDS=()
  PLAN_LINENO=$((PLAN_LINENO + 1))
  if ! IFS=' ' read -r -a FIELDS; then
    if ((${#FIELDS[@]} == 0)); then
      fail agent_protocol "the plan ended at line $PLAN_LINENO without its end record"
    fi
  fi
  if ((${#FIELDS[@]} == 0)); then
    fail agent_protocol "plan line $PLAN_LINENO is empty"
  fi
  PLAN_RAW+="${FIELDS[*]}"$'\n'
}

# decode_values TOKEN...: VALS = the decoded values. `-` is the empty string.
decode_values() {
  local token value
  VALS=()
  for token in "$@"; do
    if [[ $token == - ]]; then
      VALS+=("")
      continue
    fi
    if [[ ! $token =~ $VALUE_RE ]]; then
      fail agent_protocol "plan line $PLAN_LINENO (${FIELDS[0]}): a value is not encoded as the protocol says"
    fi
    if [[ $token == *'\x00'* ]]; then
      fail agent_protocol "plan line $PLAN_LINENO (${FIELDS[0]}): a value contains a NUL byte"
    fi
    printf -v value '%b' "$token"
    VALS+=("$value")
  done
}

# plan_error MESSAGE: a protocol failure about the current plan line.
plan_error() {
  fail agent_protocol "plan line $PLAN_LINENO (${FIELDS[0]}): $1"
}

want_values() {
  if ((${#VALS[@]} != $1)); then
    plan_error "expected $1 value(s), got ${#VALS[@]}"
  fi
}

once() {
  if [[ -n ${PLAN_SEEN[$1]-} ]]; then plan_error "given twice"; fi
  PLAN_SEEN[$1]=1
}

want_name() { # want_name WHAT VALUE
  if [[ ! $2 =~ $NAME_RE || $2 == . || $2 == .. ]]; then plan_error "$1 must match [A-Za-z0-9._-]+"; fi
}

want_lvm_name() {
  if [[ ! $2 =~ $LVM_NAME_RE || $2 == . || $2 == .. ]]; then plan_error "$1 is not a valid LVM name"; fi
}

want_absolute() {
  if [[ $2 != /* ]]; then plan_error "$1 must be an absolute path"; fi
}

want_nonempty() {
  if [[ -z $2 ]]; then plan_error "$1 must not be empty"; fi
}

want_job() {
  if [[ -z ${JOB_INDEX[$1]+set} ]]; then plan_error "names a job that was not declared before"; fi
}

# want_read_jobs JOBS: JOBS is a comma-separated list of distinct job names (of any host: the
# repository's other hosts' jobs too); REPLY = the names, space-separated.
want_read_jobs() {
  local rest=$1 name
  local -A seen=()
  local -a jobs=()
  if [[ -z $rest || $rest == ,* || $rest == *, || $rest == *,,* ]]; then plan_error "expected job names separated by commas"; fi
  while :; do
    name=${rest%%,*}
    want_name "a job name" "$name"
    if [[ -n ${seen[$name]-} ]]; then plan_error "a job named twice"; fi
    seen[$name]=1
    jobs+=("$name")
    if [[ $rest != *,* ]]; then break; fi
    rest=${rest#*,}
  done
  REPLY="${jobs[*]}"
}

want_new_id() {
  want_name "the ID" "$1"
  if [[ -n ${ID_SEEN[$1]-} ]]; then plan_error "repository ID given twice"; fi
  ID_SEEN[$1]=1
}

# want_number WHAT VALUE MAX: VALUE is a whole number from 0 to MAX (at most 19 digits, so within bash's
# 64-bit arithmetic); REPLY = its value without leading zeros.
want_number() {
  local digits
  if [[ ! $2 =~ $BYTES_RE ]]; then plan_error "$1 must be a whole number"; fi
  digits=${2#"${2%%[!0]*}"}
  digits=${digits:-0}
  if ((${#digits} > ${#3})) || { ((${#digits} == ${#3})) && [[ $digits > $3 ]]; }; then
    plan_error "$1 must be at most $3"
  fi
  REPLY=$digits
}

# read_plan: parse stdin from `plan 2` to `end` into the PLAN_*, JOB_*, EXCLUDE_*, REPO_*, COPY_* and
# VG_* variables. Any deviation from the protocol fails with code agent_protocol. Reading stops
# right after `end`: the rest of stdin is the controller's liveness signal.
read_plan() {
  local key i k
  next_plan_line
  if [[ ${FIELDS[0]} != plan ]]; then
    fail agent_protocol "the plan must start with 'plan $PLAN_FORMAT'"
  fi
  if ((${#FIELDS[@]} != 2)) || [[ ${FIELDS[1]} != "$PLAN_FORMAT" ]]; then
    fail agent_protocol "unsupported plan format (this agent reads 'plan $PLAN_FORMAT')"
  fi
  while :; do
    next_plan_line
    key=${FIELDS[0]}
    if [[ ! $key =~ ^[a-z_]{1,40}$ ]]; then
      FIELDS[0]="?"
      plan_error "not a record key"
    fi
    decode_values "${FIELDS[@]:1}"
    case $key in
      end)
        want_values 0
        break
        ;;
      run_id)
        want_values 1
        once run_id
        want_name "run_id" "${VALS[0]}"
        PLAN_RUN_ID=${VALS[0]}
        ;;
      host)
        want_values 1
        once host
        want_name "host" "${VALS[0]}"
        PLAN_HOST=${VALS[0]}
        ;;
      command)
        want_values 1
        once command
        case ${VALS[0]} in
          ping | preflight | backup | prune | status | verify | install) PLAN_COMMAND=${VALS[0]} ;;
          *) plan_error "unknown command" ;;
        esac
        ;;
      restic_env_file)
        want_values 1
        once restic_env_file
        want_absolute "restic_env_file" "${VALS[0]}"
        PLAN_ENV_FILE=${VALS[0]}
        ;;
      dry_run)
        want_values 0
        once dry_run
        PLAN_DRY_RUN=true
        ;;
      maintain)
        want_values 0
        once maintain
        PLAN_MAINTAIN=true
        ;;
      prune)
        want_values 2
        if [[ -z ${ID_SEEN[${VALS[0]}]+set} ]]; then plan_error "names an id that was not declared before"; fi
        if [[ -n ${PRUNE_REPO_ID[${VALS[0]}]+set} ]]; then plan_error "prune given twice"; fi
        if [[ ! ${VALS[1]} =~ $SHA256_RE ]]; then plan_error "expected a restic repository id"; fi
        PRUNE_REPO_ID[${VALS[0]}]=${VALS[1]}
        ;;
      check)
        want_values 2
        if [[ -z ${ID_SEEN[${VALS[0]}]+set} ]]; then plan_error "names an id that was not declared before"; fi
        if [[ -n ${CHECK_REPO_ID[${VALS[0]}]+set} ]]; then plan_error "check given twice"; fi
        if [[ ! ${VALS[1]} =~ $SHA256_RE ]]; then plan_error "expected a restic repository id"; fi
        CHECK_REPO_ID[${VALS[0]}]=${VALS[1]}
        ;;
      read_data_subset)
        want_values 1
        once read_data_subset
        if ! read_data_subset_valid "${VALS[0]}"; then
          plan_error "expected n/t, a percentage (P%) or a size (100M) for restic check --read-data-subset"
        fi
        PLAN_SUBSET=${VALS[0]}
        ;;
      restore_sample)
        want_values 1
        once restore_sample
        want_number "the restore sample" "${VALS[0]}" "$MAX_RESTORE_SAMPLE"
        PLAN_RESTORE_SAMPLE=$REPLY
        ;;
      read)
        want_values 2
        if [[ -z ${ID_SEEN[${VALS[0]}]+set} ]]; then plan_error "names an id that was not declared before"; fi
        if [[ -n ${READ_JOBS[${VALS[0]}]+set} ]]; then plan_error "read given twice"; fi
        want_read_jobs "${VALS[1]}"
        READ_JOBS[${VALS[0]}]=$REPLY
        ;;
      maintained)
        want_values 5
        want_new_id "${VALS[0]}"
        want_nonempty "the repository" "${VALS[1]}"
        want_absolute "the password file" "${VALS[2]}"
        want_nonempty "the label" "${VALS[3]}"
        if [[ ! ${VALS[4]} =~ $SHA256_RE ]]; then plan_error "expected a restic repository id"; fi
        i=${#MAINT_ID[@]}
        MAINT_INDEX[${VALS[0]}]=$i
        MAINT_ID[i]=${VALS[0]} MAINT_URL[i]=${VALS[1]} MAINT_PWFILE[i]=${VALS[2]}
        MAINT_LABEL[i]=${VALS[3]} MAINT_REPO_ID[i]=${VALS[4]}
        ;;
      forget_for)
        want_values 8
        if [[ -z ${MAINT_INDEX[${VALS[0]}]+set} ]]; then plan_error "names an id that is not a maintained repository"; fi
        want_name "the host" "${VALS[1]}"
        want_name "the job" "${VALS[2]}"
        if [[ -n ${FORGET_FOR_SEEN[${VALS[0]}/${VALS[1]}/${VALS[2]}]+set} ]]; then plan_error "forget_for given twice"; fi
        FORGET_FOR_SEEN[${VALS[0]}/${VALS[1]}/${VALS[2]}]=1
        for k in 3 4 5 6 7; do
          want_number "a keep value" "${VALS[k]}" "$MAX_KEEP"
          VALS[k]=$REPLY
        done
        if [[ "${VALS[*]:3}" == "0 0 0 0 0" ]]; then plan_error "an all-zero retention would delete everything"; fi
        FORGET_FOR_REPO+=("${MAINT_INDEX[${VALS[0]}]}") FORGET_FOR_HOST+=("${VALS[1]}")
        FORGET_FOR_JOB+=("${VALS[2]}") FORGET_FOR_KEEP+=("${VALS[*]:3}")
        ;;
      retention)
        want_values 6
        if [[ -z ${ID_SEEN[${VALS[0]}]+set} ]]; then plan_error "names an id that was not declared before"; fi
        if [[ -n ${RETENTION[${VALS[0]}]+set} ]]; then plan_error "retention given twice"; fi
        for k in 1 2 3 4 5; do
          want_number "a keep value" "${VALS[k]}" "$MAX_KEEP"
          VALS[k]=$REPLY
        done
        if [[ "${VALS[*]:1}" == "0 0 0 0 0" ]]; then plan_error "an all-zero retention would delete everything"; fi
        RETENTION[${VALS[0]}]="${VALS[*]:1}"
        ;;
      remount_readonly)
        want_values 1
        want_job "${VALS[0]}"
        JOB_REMOUNT_RO[${JOB_INDEX[${VALS[0]}]}]=1
        ;;
      vg)
        want_values 4
        want_lvm_name "the VG" "${VALS[0]}"
        if [[ -n ${VG_SNAPSHOTS[${VALS[0]}]+set} ]]; then plan_error "VG given twice"; fi
        want_number "SNAPSHOT_BYTES" "${VALS[1]}" "$MAX_BYTES"
        VG_SNAPSHOTS[${VALS[0]}]=$REPLY
        want_number "MARGIN_BYTES" "${VALS[2]}" "$MAX_BYTES"
        VG_MARGIN[${VALS[0]}]=$REPLY
        want_number "MARGIN_BASIS_POINTS" "${VALS[3]}" "$MAX_BASIS_POINTS"
        VG_MARGIN_BP[${VALS[0]}]=$REPLY
        if ((VG_MARGIN[${VALS[0]}] > 0 && VG_MARGIN_BP[${VALS[0]}] > 0)); then
          plan_error "a margin is in bytes or in basis points, not both"
        fi
        VG_NAME+=("${VALS[0]}")
        ;;
      job)
        want_values 6
        want_name "the job name" "${VALS[0]}"
        if [[ -n ${JOB_INDEX[${VALS[0]}]+set} ]]; then plan_error "job given twice"; fi
        want_absolute "the source" "${VALS[2]}"
        case ${VALS[1]} in
          standard_path)
            if [[ -n ${VALS[3]}${VALS[4]}${VALS[5]} ]]; then
              plan_error "VG, LV and SIZE_BYTES must be - for standard_path"
            fi
            ;;
          logical_volume_root | logical_volume_nonroot)
            want_lvm_name "the VG" "${VALS[3]}"
            want_lvm_name "the LV" "${VALS[4]}"
            want_number "SIZE_BYTES" "${VALS[5]}" "$MAX_BYTES"
            if ((REPLY == 0)); then plan_error "SIZE_BYTES must be positive"; fi
            VALS[5]=$REPLY
            ;;
          *) plan_error "unknown category" ;;
        esac
        i=${#JOB_NAME[@]}
        JOB_INDEX[${VALS[0]}]=$i
        JOB_NAME[i]=${VALS[0]}
        JOB_CATEGORY[i]=${VALS[1]}
        JOB_SOURCE[i]=${VALS[2]}
        JOB_VG[i]=${VALS[3]}
        JOB_LV[i]=${VALS[4]}
        JOB_SIZE[i]=${VALS[5]}
        ;;
      exclude)
        want_values 2
        want_job "${VALS[0]}"
        want_nonempty "the exclude path" "${VALS[1]}"
        EXCLUDE_JOB+=("${JOB_INDEX[${VALS[0]}]}")
        EXCLUDE_PATH+=("${VALS[1]}")
        ;;
      repo)
        want_values 5
        want_job "${VALS[0]}"
        want_new_id "${VALS[1]}"
        want_nonempty "the repository" "${VALS[2]}"
        want_absolute "the password file" "${VALS[3]}"
        want_nonempty "the label" "${VALS[4]}"
        i=${#REPO_ID[@]}
        REPO_INDEX[${VALS[1]}]=$i
        REPO_ID[i]=${VALS[1]}
        REPO_JOB[i]=${JOB_INDEX[${VALS[0]}]}
        REPO_URL[i]=${VALS[2]}
        REPO_PWFILE[i]=${VALS[3]}
        REPO_LABEL[i]=${VALS[4]}
        ;;
      copy)
        want_values 6
        want_job "${VALS[0]}"
        want_new_id "${VALS[1]}"
        if [[ -z ${REPO_INDEX[${VALS[2]}]+set} ]] ||
          [[ ${REPO_JOB[${REPO_INDEX[${VALS[2]}]}]} != "${JOB_INDEX[${VALS[0]}]}" ]]; then
          plan_error "FROM_ID is not a repository of this job"
        fi
        want_nonempty "the repository" "${VALS[3]}"
        want_absolute "the password file" "${VALS[4]}"
        want_nonempty "the label" "${VALS[5]}"
        COPY_ID+=("${VALS[1]}")
        COPY_JOB+=("${JOB_INDEX[${VALS[0]}]}")
        COPY_FROM+=("${REPO_INDEX[${VALS[2]}]}")
        COPY_URL+=("${VALS[3]}")
        COPY_PWFILE+=("${VALS[4]}")
        COPY_LABEL+=("${VALS[5]}")
        ;;
      install)
        want_values 2
        once install
        if [[ ! ${VALS[0]} =~ $SUDO_USER_RE || ${VALS[0]} == root ]]; then
          plan_error "the login user must be a user name a sudoers rule can name (letters, digits, _ -), not root"
        fi
        case ${VALS[1]} in
          nopasswd | passwd) ;;
          *) plan_error "expected nopasswd or passwd" ;;
        esac
        INSTALL_USER=${VALS[0]} INSTALL_SUDO=${VALS[1]}
        ;;
      allow_repository)
        want_values 2
        if [[ ! ${VALS[0]} =~ $SHA256_RE ]]; then plan_error "expected the repository's sha256"; fi
        want_nonempty "the label" "${VALS[1]}"
        if [[ ${VALS[1]} == *[[:cntrl:]]* ]]; then plan_error "the label has a control character"; fi
        ALLOW_HASH+=("${VALS[0]}")
        ALLOW_LABEL+=("${VALS[1]}")
        ;;
      allow_any_repository)
        want_values 0
        once allow_any_repository
        INSTALL_ANY_REPOSITORY=1
        ;;
      *) plan_error "unknown record" ;;
    esac
  done
  # The install records belong to the install command, and it needs them.
  if [[ $PLAN_COMMAND == install && -z $INSTALL_USER ]]; then
    fail agent_protocol "the plan has no install record"
  fi
  if [[ $PLAN_COMMAND != install ]] && [[ -n $INSTALL_USER || ${#ALLOW_HASH[@]} -gt 0 || $INSTALL_ANY_REPOSITORY == 1 ]]; then
    fail agent_protocol "install records in a plan for $PLAN_COMMAND"
  fi
  # Maintained repositories are a maintenance host's own prune plan: no job, no phase-2 `maintain`;
  # its prune records name only them.
  if ((${#MAINT_ID[@]} > 0)); then
    if [[ $PLAN_COMMAND != prune || $PLAN_MAINTAIN == true || ${#JOB_NAME[@]} -gt 0 ]]; then
      fail agent_protocol "maintained records go in a prune plan of their own, without jobs or maintain"
    fi
    for key in "${!PRUNE_REPO_ID[@]}"; do
      if [[ -z ${MAINT_INDEX[$key]+set} ]]; then fail agent_protocol "a prune record names an id that is not maintained"; fi
    done
    if [[ $PLAN_DRY_RUN == true && ${#PRUNE_REPO_ID[@]} -gt 0 ]]; then
      fail agent_protocol "prune records in a dry run"
    fi
  elif ((${#FORGET_FOR_HOST[@]} > 0)); then
    fail agent_protocol "forget_for records without a maintained repository"
  elif ((${#PRUNE_REPO_ID[@]} > 0)); then
    fail agent_protocol "a prune record names an id that is not maintained"
  fi
  # The check records are phase 2 of a verify (maintain), and it checks only what they name.
  if [[ $PLAN_MAINTAIN == true && $PLAN_COMMAND != verify ]]; then
    fail agent_protocol "maintain and check records go together, in a verify plan without dry_run"
  fi
  if [[ ${#CHECK_REPO_ID[@]} -gt 0 || ($PLAN_COMMAND == verify && $PLAN_MAINTAIN == true) ]] &&
    [[ $PLAN_COMMAND != verify || $PLAN_MAINTAIN != true || ${#CHECK_REPO_ID[@]} -eq 0 ||
      ${#PRUNE_REPO_ID[@]} -gt 0 || $PLAN_DRY_RUN == true ]]; then
    fail agent_protocol "maintain and check records go together, in a verify plan without dry_run"
  fi
  if [[ $PLAN_COMMAND == verify && -z $PLAN_SUBSET ]]; then fail agent_protocol "the plan has no read_data_subset record"; fi
  if [[ $PLAN_COMMAND != verify ]] &&
    [[ -n $PLAN_SUBSET || (-n ${PLAN_SEEN[restore_sample]-} && $PLAN_COMMAND != backup) ]]; then
    fail agent_protocol "verify records in a plan for $PLAN_COMMAND"
  fi
  # The read records say which repositories a status run reads whole (for every host that uses them).
  if ((${#READ_JOBS[@]} > 0)) && [[ $PLAN_COMMAND != status ]]; then
    fail agent_protocol "read records in a plan for $PLAN_COMMAND"
  fi
  for i in "${!JOB_NAME[@]}"; do
    if is_lv_job "$i" && [[ -z ${VG_SNAPSHOTS[${JOB_VG[i]}]+set} ]]; then
      fail agent_protocol "the plan has no vg record for ${JOB_VG[i]} (job ${JOB_NAME[i]})"
    fi
  done
  for key in run_id host command; do
    if [[ -z ${PLAN_SEEN[$key]-} ]]; then
      fail agent_protocol "the plan has no $key record"
    fi
  done
}

# read_data_subset_valid VALUE: VALUE is what restic check --read-data-subset takes: n/t (1 <= n <= t),
# a percentage above 0 and at most 100 (P% or P.D%), or a size with a k/m/g/t suffix (src/cli/commands/verify.ts
# validates the same forms).
read_data_subset_valid() {
  local v=$1
  if [[ $v =~ ^([1-9][0-9]{0,5})/([1-9][0-9]{0,5})$ ]]; then
    ((10#${BASH_REMATCH[1]} <= 10#${BASH_REMATCH[2]}))
    return
  fi
  if [[ $v =~ ^([0-9]{1,3})(\.[0-9]{1,3})?%$ ]]; then
    ((10#${BASH_REMATCH[1]} < 100)) || [[ $v == 100% || $v =~ ^100\.0+%$ ]] || return 1
    [[ $v =~ [1-9] ]]
    return
  fi
  [[ $v =~ ^[1-9][0-9]{0,12}[kKmMgGtT]$ ]]
}

is_lv_job() {
  [[ ${JOB_CATEGORY[$1]} == logical_volume_root || ${JOB_CATEGORY[$1]} == logical_volume_nonroot ]]
}

plan_has_lv_jobs() {
  local i
  for i in "${!JOB_NAME[@]}"; do
    if is_lv_job "$i"; then return 0; fi
  done
  return 1
}

# targets: TARGET_KIND/INDEX/ID/JOB/URL/LABEL = every repository and copy destination, in plan order.
list_targets() {
  local r c
  TARGET_KIND=() TARGET_INDEX=() TARGET_ID=() TARGET_JOB=() TARGET_URL=() TARGET_LABEL=()
  for r in "${!REPO_ID[@]}"; do
    TARGET_KIND+=(repo) TARGET_INDEX+=("$r") TARGET_ID+=("${REPO_ID[r]}") TARGET_JOB+=("${REPO_JOB[r]}")
    TARGET_URL+=("${REPO_URL[r]}") TARGET_LABEL+=("${REPO_LABEL[r]}")
    for c in "${!COPY_ID[@]}"; do
      if ((COPY_FROM[c] != r)); then continue; fi
      TARGET_KIND+=(copy) TARGET_INDEX+=("$c") TARGET_ID+=("${COPY_ID[c]}") TARGET_JOB+=("${COPY_JOB[c]}")
      TARGET_URL+=("${COPY_URL[c]}") TARGET_LABEL+=("${COPY_LABEL[c]}")
    done
  done
  for r in "${!MAINT_ID[@]}"; do
    TARGET_KIND+=(maintained) TARGET_INDEX+=("$r") TARGET_ID+=("${MAINT_ID[r]}") TARGET_JOB+=("")
    TARGET_URL+=("${MAINT_URL[r]}") TARGET_LABEL+=("${MAINT_LABEL[r]}")
  done
}

# target_password_file T: REPLY = the password file of target T.
target_password_file() {
  case ${TARGET_KIND[$1]} in
    repo) REPLY=${REPO_PWFILE[${TARGET_INDEX[$1]}]} ;;
    copy) REPLY=${COPY_PWFILE[${TARGET_INDEX[$1]}]} ;;
    *) REPLY=${MAINT_PWFILE[${TARGET_INDEX[$1]}]} ;;
  esac
}

# --- facts ----------------------------------------------------------------------------------------

# Host facts (gather_facts).
FACT_HOSTNAME="" FACT_KERNEL="" FACT_OS="" FACT_USER="" RESTIC_VERSION="" RESTIC_PROBLEM="" LVM_VERSION=""

gather_facts() {
  local line re
  # The kernel's own files first: on every host of a run, each program started costs a fork and an exec.
  FACT_HOSTNAME="" FACT_KERNEL=""
  if [[ -r /proc/sys/kernel/hostname ]]; then IFS= read -r FACT_HOSTNAME </proc/sys/kernel/hostname || true; fi
  if [[ -r /proc/sys/kernel/osrelease ]]; then IFS= read -r FACT_KERNEL </proc/sys/kernel/osrelease || true; fi
  if [[ -z $FACT_HOSTNAME || -z $FACT_KERNEL ]] && have_tool uname; then
    capture "${TOOL[uname]}" -n
    if ((CAP_RC == 0)) && [[ -n $CAP_OUT ]]; then FACT_HOSTNAME=$CAP_OUT; fi
    capture "${TOOL[uname]}" -r
    if ((CAP_RC == 0)); then FACT_KERNEL=$CAP_OUT; fi
  fi
  if [[ -z $FACT_HOSTNAME ]]; then FACT_HOSTNAME=${HOSTNAME-}; fi
  os_release_name
  FACT_OS=$REPLY
  passwd_name "$EUID"
  FACT_USER=$REPLY
  if [[ -z $FACT_USER ]] && have_tool id; then
    capture "${TOOL[id]}" -un
    if ((CAP_RC == 0)) && [[ -n $CAP_OUT ]]; then FACT_USER=$CAP_OUT; fi
  fi
  if [[ -z $FACT_USER ]]; then FACT_USER="uid $EUID"; fi

  # restic: "restic 0.14.0 compiled with go1.19.8 on linux/amd64"
  RESTIC_VERSION="" RESTIC_PROBLEM=""
  if have_tool restic; then
    capture restic_exec none - "$PREFLIGHT_TIMEOUT" version
    re='^restic ([0-9][^[:space:]]*)'
    split_lines "$CAP_OUT"
    if ((CAP_RC == 0 && ${#LINES[@]} > 0)) && [[ ${LINES[0]} =~ $re ]]; then
      RESTIC_VERSION=${BASH_REMATCH[1]}
    else
      first_meaningful_line "$CAP_ERR"
      RESTIC_PROBLEM="'${TOOL[restic]} version' failed (status $CAP_RC)${REPLY:+: $REPLY}"
    fi
  else
    RESTIC_PROBLEM="not found"
  fi

  # lvm: "  LVM version:     2.03.16(2) (2022-05-18)"
  LVM_VERSION=""
  if have_tool lvm; then
    capture with_timeout "$PREFLIGHT_TIMEOUT" "${TOOL[lvm]}" version
    re='LVM version:[[:space:]]+([^[:space:]]+)'
    split_lines "$CAP_OUT"
    for line in "${LINES[@]}"; do
      if [[ $line =~ $re ]]; then
        LVM_VERSION=${BASH_REMATCH[1]}
        break
      fi
    done
  fi
}

# passwd_name UID: REPLY = the first name /etc/passwd gives UID, or "" (a user only NSS knows, e.g.
# from LDAP, is left to `id -un`). Read, never sourced.
passwd_name() {
  local name rest uid
  REPLY=""
  [[ -f /etc/passwd && -r /etc/passwd ]] || return 0
  while IFS=: read -r name rest uid rest; do
    if [[ $uid == "$1" && $name =~ ^[A-Za-z0-9._][A-Za-z0-9._-]{0,31}$ ]]; then
      REPLY=$name
      return 0
    fi
  done </etc/passwd
  return 0
}

# os_release_name: REPLY = PRETTY_NAME of /etc/os-release ("Debian GNU/Linux 12 (bookworm)"), or "".
# Parsed, never sourced; only its first 100 lines are read, and the name is cut at 200 characters.
os_release_name() {
  local line value re='^PRETTY_NAME=(.*)$' quoted='^"(.*)"$|^'"'"'(.*)'"'"'$' n=0
  REPLY=""
  [[ -f /etc/os-release && -r /etc/os-release ]] || return 0
  while ((n++ < 100)) && IFS= read -r line; do
    [[ $line =~ $re ]] || continue
    value=${BASH_REMATCH[1]}
    if [[ $value =~ $quoted ]]; then value=${BASH_REMATCH[1]}${BASH_REMATCH[2]}; fi
    REPLY=${value:0:200}
    return 0
  done </etc/os-release
  return 0
}

emit_agent_start() {
  local restic_value="z:" lvm_value="z:" os_value="z:" facts
  if [[ -n $RESTIC_VERSION ]]; then restic_value="s:$RESTIC_VERSION"; fi
  if [[ -n $FACT_OS ]]; then os_value="s:$FACT_OS"; fi
  if [[ -n $LVM_VERSION ]]; then lvm_value="s:$LVM_VERSION"; fi
  json_fields hostname "s:$FACT_HOSTNAME" kernel "s:$FACT_KERNEL" os "$os_value" bash "s:$BASH_VERSION" \
    restic "$restic_value" lvm "$lvm_value" user "s:$FACT_USER"
  facts="{$REPLY}"
  emit agent_start agent_version "s:$AGENT_VERSION" run_id "s:$PLAN_RUN_ID" facts "j:$facts"
}

# --- what the host's restic offers ------------------------------------------------------------------
#
# RESTIC_VERSION (gather_facts) says which restic runs; each difference between the versions the agent
# supports (0.14 on Debian 12 to 0.18 on Debian 13) is one function here, which the commands call
# instead of asking for a version themselves.

# How long a restic that must lock a repository waits for another restic's lock: the total of
# restic_locked_retry's own delays (lock_retry_delay for attempts 1 to LOCK_RETRY_ATTEMPTS).
readonly LOCK_RETRY_ATTEMPTS=30
readonly LOCK_WAIT_SECONDS=280

# restic_at_least MAJOR MINOR [PATCH]: true if the host's restic is that version or newer ("0.17.1",
# "0.18.0", also "0.16.4-dev"); false when its version is unknown.
restic_at_least() {
  local re='^([0-9]+)\.([0-9]+)(\.([0-9]+))?' have want i
  [[ ${RESTIC_VERSION-} =~ $re ]] || return 1
  have=("$((10#${BASH_REMATCH[1]}))" "$((10#${BASH_REMATCH[2]}))" "$((10#${BASH_REMATCH[4]:-0}))")
  want=("$1" "$2" "${3:-0}")
  for i in 0 1 2; do
    if ((have[i] != want[i])); then ((have[i] > want[i])); return; fi
  done
  return 0
}

# lock_retry_delay ATTEMPT: REPLY = the seconds restic_locked_retry waits before attempt ATTEMPT + 1.
lock_retry_delay() {
  REPLY=$(($1 < 5 ? $1 * 2 : 10))
}

# restic_retry_lock_argv FUNC ARG...: restic 0.16 and later wait for another restic's lock themselves
# (--retry-lock): RETRY_ARGV = the call with that flag, for LOCK_WAIT_SECONDS, placed among restic's
# global flags before its command (restic_exec KIND INDEX TIMEOUT --retry-lock 280s COMMAND ...). False,
# and RETRY_ARGV empty, on an older restic and for a call that takes no lock (--no-lock), which the
# caller then retries itself.
declare -a RETRY_ARGV=()
restic_retry_lock_argv() {
  RETRY_ARGV=()
  if [[ $1 != restic_exec ]] || (($# < 5)) || ! restic_at_least 0 16; then return 1; fi
  local arg
  for arg in "${@:5}"; do
    if [[ $arg == --no-lock ]]; then return 1; fi
    if [[ $arg == -- ]]; then break; fi
  done
  RETRY_ARGV=("${@:1:4}" --retry-lock "${LOCK_WAIT_SECONDS}s" "${@:5}")
}

# restic_failure_code STATUS STDERR: REPLY = why restic failed, when it is one of the failures the
# report names precisely: repo_missing (no repository at that location), repo_locked (another restic
# holds its lock), repo_wrong_password (the password opens no key); "" for any other failure. restic
# 0.17 says so in its exit status (10, 11; 12 from 0.17.1); before, each is status 1 and only the
# words on its stderr tell.
restic_failure_code() {
  local rc=$1 text=$2
  REPLY=""
  if restic_at_least 0 17; then
    case $rc in
      10) REPLY=repo_missing ;;
      11) REPLY=repo_locked ;;
      12) REPLY=repo_wrong_password ;;
    esac
    if [[ -n $REPLY ]] || restic_at_least 0 17 1; then return 0; fi
  fi
  if ((rc != 1)); then return 0; fi
  # restic 0.14 asks "Is there a repository ...?" after any failure to open the config file (also an
  # unreachable backend): missing only when the backend said so (local and sftp: no such file; rest,
  # s3 and the others: does not exist).
  case $text in
    *"Is there a repository at the following location?"*)
      if [[ $text == *"no such file or directory"* || $text == *"does not exist"* ]]; then REPLY=repo_missing; fi
      ;;
    *"wrong password or no key found"*) REPLY=repo_wrong_password ;;
    *"repository is already locked"*) REPLY=repo_locked ;;
  esac
}

# restic_code_field STATUS ERR_FILE: REPLY = restic_failure_code of that call as an event's `code` value.
restic_code_field() {
  local text=""
  if [[ -f $2 ]]; then text=$(<"$2"); fi
  restic_failure_code "$1" "$text"
  if [[ -n $REPLY ]]; then REPLY="s:$REPLY"; else REPLY="z:"; fi
}

# restic_delete_refused ERR_FILE: true when restic's stderr says the backend refused to remove a file
# (an append-only endpoint answers 403). restic 0.14 retries such a delete and fails; 0.17 and later
# give up on it at once and exit 0 from forget, having removed nothing.
restic_delete_refused() {
  local text=""
  if [[ -f $1 ]]; then text=$(<"$1"); fi
  [[ $text == *"unable to remove "* ]]
}

# restic_plain_stderr TEXT: REPLY = restic's stderr TEXT with the errors restic 0.17 and later write as
# JSON under --json (`{"message_type":"exit_error","code":N,"message":"..."}`, and check's
# `{"message_type":"error","message":"..."}`) decoded to their messages, as older ones print them.
# Only JSON's escapes are decoded, \u for ASCII only (Go escapes control characters and <>& that way;
# other characters come as they are); any other line stays as it is.
restic_plain_stderr() {
  local line out="" re='^\{"message_type":"(exit_)?error",.*"message":"(([^"\\]|\\.)*)"\}$'
  if ! restic_at_least 0 17; then
    REPLY=$1
    return 0
  fi
  split_lines "$1"
  for line in "${LINES[@]}"; do
    if [[ $line =~ $re ]]; then
      json_unescape "${BASH_REMATCH[2]}"
      line=${REPLY%$'\n'}
    fi
    out+=${out:+$'\n'}$line
  done
  REPLY=$out
}

# restic_check_json: true when `restic check` takes --json (0.18): its summary counts the errors and
# names the damaged packs, which the agent then reports as they are instead of only restic's text.
restic_check_json() {
  restic_at_least 0 18
}

# check_summary OUT_FILE: from restic check --json's summary line, REPLY = the number of errors as an
# emit field (n:N, or z: when there is no summary) and PACKS_JSON = the damaged packs' ids (at most
# 100, each 64 hex digits; anything else in the list is left out), as a JSON array.
PACKS_JSON="[]"
check_summary() {
  local line re='^\{"message_type":"summary","num_errors":([0-9]{1,9}),"broken_packs":(null|\[[^]]*\])' list id
  local -a ids=()
  local kept=0
  REPLY=z: PACKS_JSON="[]"
  if [[ ! -f $1 ]]; then return 0; fi
  while IFS= read -r line; do
    if [[ $line =~ $re ]]; then
      REPLY=n:$((10#${BASH_REMATCH[1]}))
      list=${BASH_REMATCH[2]}
      list=${list#[} list=${list%]}
      IFS=, read -r -a ids <<<"$list"
      PACKS_JSON="" kept=0
      for id in "${ids[@]}"; do
        if [[ $id =~ ^\"[0-9a-f]{64}\"$ ]] && ((kept < 100)); then
          PACKS_JSON+=${PACKS_JSON:+,}$id
          kept=$((kept + 1))
        fi
      done
      PACKS_JSON="[$PACKS_JSON]"
    fi
  done <"$1"
}

# json_unescape TEXT: REPLY = the JSON string body TEXT decoded (\uXXXX beyond ASCII, and \u0000, kept
# as written).
json_unescape() {
  local s=$1 out="" c hex
  while [[ -n $s ]]; do
    c=${s:0:1}
    if [[ $c != "\\" ]]; then
      out+=${s%%\\*}
      if [[ $s == *\\* ]]; then s=\\${s#*\\}; else s=""; fi
      continue
    fi
    c=${s:1:1}
    case $c in
      n) out+=$'\n' ;;
      t) out+=$'\t' ;;
      r) out+=$'\r' ;;
      b) out+=$'\b' ;;
      f) out+=$'\f' ;;
      u)
        hex=${s:2:4}
        if [[ $hex =~ ^00[0-7][0-9a-fA-F]$ && $hex != 0000 ]]; then
          printf -v c '%b' "\\x${hex:2:2}"
          out+=$c
        else
          out+="\\u$hex"
        fi
        s=${s:4}
        ;;
      *) out+=$c ;;
    esac
    s=${s:2}
  done
  REPLY=$out
}

# --- LVM, mounts, and the snapshots' lifecycle ----------------------------------------------------

# backup state: per job index, what exists now and must be undone (release_job, cleanup_all)
declare -a SNAP_NAME=() SNAP_BORN=() SNAP_PEAK=() SNAP_MNT=() SNAP_INVALID=() ORIGIN_MP=()
declare -a JOB_VIEW=() JOB_REMOUNTED=() CHROOT_BINDS=()
SAMPLER_PID="" ORIGIN_FSTYPE=""

# lvm_call TOOL ARG...: capture an LVM tool under the preflight timeout, without fd-leak warnings.
# (VG and LV names never start with "-": read_plan checks them against LVM_NAME_RE.)
lvm_call() {
  local tool=$1
  shift
  LVM_SUPPRESS_FD_WARNINGS=1 capture with_timeout "$PREFLIGHT_TIMEOUT" "${TOOL[$tool]}" "$@"
}

# unescape_findmnt TEXT: REPLY = a findmnt -r field with its \xHH escapes decoded.
unescape_findmnt() {
  REPLY=$1
  if [[ $1 == *\\* && $1 =~ $FINDMNT_ESCAPED_RE ]]; then printf -v REPLY '%b' "$1"; fi
}

# dev_is_lv MAJ:MIN SOURCE VG LV_MAJ:MIN: true if a mount (its MAJ:MIN and SOURCE from findmnt) is the
# LV. MAJ:MIN decides; for btrfs, whose MAJ:MIN is anonymous, the source device's number decides.
dev_is_lv() {
  local mm=$1 src=${2%%\[*} vg=$3 lv_mm=$4
  if [[ $mm == "$lv_mm" ]]; then return 0; fi
  case $src in
    /dev/mapper/* | /dev/dm-* | "/dev/$vg/"*) ;;
    *) return 1 ;;
  esac
  if [[ ! -b $src ]] || ! have_tool stat; then return 1; fi
  capture "${TOOL[stat]}" -L -c '%t:%T' -- "$src"
  if ((CAP_RC != 0)) || [[ ! $CAP_OUT =~ ^([0-9a-f]+):([0-9a-f]+)$ ]]; then return 1; fi
  [[ "$((16#${BASH_REMATCH[1]})):$((16#${BASH_REMATCH[2]}))" == "$lv_mm" ]]
}

# mount_of PATH: MNT_MM, MNT_SRC, MNT_TGT of the filesystem PATH lies on (findmnt --target).
mount_of() {
  MNT_MM="" MNT_SRC="" MNT_TGT=""
  if ! have_tool findmnt; then return 1; fi
  capture with_timeout "$PREFLIGHT_TIMEOUT" "${TOOL[findmnt]}" -n -r -o MAJ:MIN,SOURCE,TARGET --target "$1"
  split_lines "$CAP_OUT"
  if ((CAP_RC != 0 || ${#LINES[@]} == 0)); then return 1; fi
  split_words "${LINES[0]}"
  if ((${#WORDS[@]} != 3)); then return 1; fi
  MNT_MM=${WORDS[0]}
  unescape_findmnt "${WORDS[1]}"
  MNT_SRC=$REPLY
  unescape_findmnt "${WORDS[2]}"
  MNT_TGT=$REPLY
}

# lv_mountpoints VG LV_MAJ:MIN: MOUNTS = where the LV is mounted (every mount, bind mounts included).
lv_mountpoints() {
  local vg=$1 lv_mm=$2 line
  MOUNTS=()
  if ! have_tool findmnt; then return 1; fi
  capture with_timeout "$PREFLIGHT_TIMEOUT" "${TOOL[findmnt]}" -n -r -o MAJ:MIN,SOURCE,TARGET
  if ((CAP_RC != 0)); then return 1; fi
  split_lines "$CAP_OUT"
  for line in "${LINES[@]}"; do
    split_words "$line"
    if ((${#WORDS[@]} != 3)); then continue; fi
    unescape_findmnt "${WORDS[1]}"
    if dev_is_lv "${WORDS[0]}" "$REPLY" "$vg" "$lv_mm"; then
      unescape_findmnt "${WORDS[2]}"
      MOUNTS+=("$REPLY")
    fi
  done
}

# take_snapshots: every LV snapshot of the run, back to back, before any restic call.
take_snapshots() {
  local i name
  for i in "${!JOB_NAME[@]}"; do
    if ! is_lv_job "$i"; then continue; fi
    name="${JOB_LV[i]}_rlvm_$PLAN_RUN_ID"
    lvm_call lvcreate --snapshot --size "${JOB_SIZE[i]}b" --name "$name" \
      --addtag rlvm_fleet --addtag "rlvm_host_$PLAN_HOST" "${JOB_VG[i]}/${JOB_LV[i]}"
    if ((CAP_RC != 0)); then
      first_meaningful_line "$CAP_ERR"
      fail snapshot_failed "lvcreate of a snapshot of ${JOB_VG[i]}/${JOB_LV[i]} failed: $REPLY"
    fi
    now_ms
    SNAP_NAME[i]=$name
    SNAP_BORN[i]=$REPLY
    SNAP_PEAK[i]=""
    emit snapshot_created job "s:${JOB_NAME[i]}" snapshot "s:${JOB_VG[i]}/$name"
  done
}

# origin_mount JOB: REPLY = where the job's LV is mounted (the mount that holds its source), FSTYPE too.
origin_mount() {
  local i=$1
  capture "${TOOL[findmnt]}" -n -r -o TARGET,FSTYPE --target "${JOB_SOURCE[i]}"
  split_words "$CAP_OUT"
  if ((CAP_RC != 0 || ${#WORDS[@]} != 2)); then return 1; fi
  unescape_findmnt "${WORDS[0]}"
  ORIGIN_FSTYPE=${WORDS[1]}
}

# mount_snapshots: each snapshot read-only under RUN_DIR/mnt/JOB (nouuid for XFS: the snapshot has
# its origin's UUID, which XFS refuses to mount twice).
mount_snapshots() {
  local i dir options
  for i in "${!JOB_NAME[@]}"; do
    if [[ -z ${SNAP_NAME[i]-} ]]; then continue; fi
    if ! origin_mount "$i"; then fail agent_error "cannot find the mount of ${JOB_SOURCE[i]}"; fi
    ORIGIN_MP[i]=$REPLY
    options=ro
    if [[ $ORIGIN_FSTYPE == xfs ]]; then options+=",nouuid"; fi
    dir="$RUN_DIR/mnt/${JOB_NAME[i]}"
    run "${TOOL[mkdir]}" -p -- "$dir" || fail agent_error "cannot create $dir"
    if ! run "${TOOL[mount]}" -o "$options" -- "/dev/${JOB_VG[i]}/${SNAP_NAME[i]}" "$dir"; then
      first_meaningful_line "$CAP_ERR"
      fail snapshot_failed "cannot mount the snapshot of ${JOB_VG[i]}/${JOB_LV[i]} read-only: $REPLY"
    fi
    SNAP_MNT[i]=$dir
  done
}

# sample_cow JOB: SNAP_PEAK = the highest COW use seen so far; SNAP_INVALID = 1 once LVM dropped it.
sample_cow() {
  local i=$1 attr pct
  lvm_call lvs --noheadings -o lv_attr,snap_percent "${JOB_VG[i]}/${SNAP_NAME[i]}"
  split_words "$CAP_OUT"
  if ((CAP_RC != 0 || ${#WORDS[@]} < 1)); then return 0; fi
  attr=${WORDS[0]}
  # lv_attr's 5th character: I = invalid (overflowed) snapshot.
  if [[ ${attr:4:1} == I ]]; then
    SNAP_INVALID[i]=1
    SNAP_PEAK[i]=100
    return 0
  fi
  pct=${WORDS[1]-}
  if [[ $pct =~ ^[0-9]+([.][0-9]+)?$ ]]; then
    pct=${pct%%.*}
    if [[ -z ${SNAP_PEAK[i]} ]] || ((10#$pct > 10#${SNAP_PEAK[i]})); then SNAP_PEAK[i]=$((10#$pct)); fi
  fi
}

# start_cow_sampler: a background process that records each live snapshot's COW use every 2 s into
# RUN_DIR/cow.JOB, so the peak is known even for a snapshot that lives through one long restic run.
start_cow_sampler() {
  local i any=0
  for i in "${!SNAP_NAME[@]}"; do any=1; done
  if ((any == 0)); then return 0; fi
  (
    trap - ERR EXIT INT TERM HUP
    set +e
    while :; do
      for i in "${!SNAP_NAME[@]}"; do
        if [[ -e $RUN_DIR/released.$i ]]; then continue; fi
        sample_cow "$i"
        printf '%s %s\n' "${SNAP_PEAK[i]:-}" "${SNAP_INVALID[i]:-0}" >"$RUN_DIR/cow.$i"
      done
      "${TOOL[sleep]}" 2 </dev/null
    done
  ) </dev/null 3>&- &
  SAMPLER_PID=$!
}

# read_cow JOB: merge what the sampler saw with one last sample.
read_cow() {
  local i=$1 peak="" invalid=0
  if [[ -f $RUN_DIR/cow.$i ]]; then
    read -r peak invalid <"$RUN_DIR/cow.$i" || true
    if [[ $peak =~ ^[0-9]+$ ]] && { [[ -z ${SNAP_PEAK[i]} ]] || ((peak > SNAP_PEAK[i])); }; then SNAP_PEAK[i]=$peak; fi
    if [[ $invalid == 1 ]]; then SNAP_INVALID[i]=1; fi
  fi
  sample_cow "$i"
}

# release_job JOB: undo what the job set up, newest first: its bind or chroot mounts, the snapshot's
# mount, the snapshot itself (reporting its lifetime and peak COW), a read-only remount. Idempotent.
release_job() {
  local i=$1 lifetime peak_value="z:" invalid=false
  if [[ -n ${JOB_VIEW[i]-} ]]; then
    run "${TOOL[umount]}" -R -- "${JOB_VIEW[i]}" || run "${TOOL[umount]}" -l -R -- "${JOB_VIEW[i]}" || true
    JOB_VIEW[i]=""
  fi
  if [[ -n ${SNAP_MNT[i]-} ]]; then
    run "${TOOL[umount]}" -R -- "${SNAP_MNT[i]}" || run "${TOOL[umount]}" -l -R -- "${SNAP_MNT[i]}" || true
    SNAP_MNT[i]=""
  fi
  if [[ -n ${SNAP_NAME[i]-} ]]; then
    : >"$RUN_DIR/released.$i"
    read_cow "$i"
    lvm_call lvremove -f "${JOB_VG[i]}/${SNAP_NAME[i]}"
    if ((CAP_RC != 0)); then
      # Retry once: udev may still hold the device right after the unmount.
      "${TOOL[sleep]}" 1 </dev/null || true
      lvm_call lvremove -f "${JOB_VG[i]}/${SNAP_NAME[i]}"
    fi
    if ((CAP_RC != 0)); then
      first_meaningful_line "$CAP_ERR"
      emit warning code s:snapshot_not_removed message "s:could not remove ${JOB_VG[i]}/${SNAP_NAME[i]}: $REPLY (the next run removes it)"
    fi
    now_ms
    lifetime=$((REPLY - SNAP_BORN[i]))
    if [[ -n ${SNAP_PEAK[i]} ]]; then peak_value="n:${SNAP_PEAK[i]}"; fi
    if [[ -n ${SNAP_INVALID[i]-} ]]; then invalid=true; fi
    emit snapshot_removed job "s:${JOB_NAME[i]}" snapshot "s:${JOB_VG[i]}/${SNAP_NAME[i]}" \
      lifetime_ms "n:$lifetime" cow_peak_percent "$peak_value" invalid "b:$invalid"
    SNAP_NAME[i]=""
  fi
  if [[ -n ${JOB_REMOUNTED[i]-} ]]; then
    if ! run "${TOOL[mount]}" -o remount,rw -- "${JOB_REMOUNTED[i]}"; then
      emit warning code s:remount_failed message "s:could not remount ${JOB_REMOUNTED[i]} read-write again: $CAP_ERR"
    fi
    JOB_REMOUNTED[i]=""
  fi
}

# --- checks ---------------------------------------------------------------------------------------

# Preflight bookkeeping.
CHECK_TOTAL=0
declare -a CHECK_FAILED=()
declare -A LV_MM=()             # "VG/LV" -> "MAJ:MIN", "inactive", or "" when the LV was not found
FILE_PROBLEM="" FILE_HINT="" FILE_DESC=""
MNT_MM="" MNT_SRC="" MNT_TGT=""
declare -a MOUNTS=()
LOCK_STATE="" LOCK_DETAIL=""

# restic_env_file, parsed (load_env_file).
declare -a ENV_KEYS=() ENV_VALS=()
ENV_ERROR=""
ENV_HINT=""

# check NAME OK DETAIL HINT [CODE]: one check event (the hint is dropped when OK is true). CODE: a
# repository check's restic_failure_code, if any.
check() {
  local name=$1 ok=$2 detail=$3 hint=$4 code=z:
  if [[ -n ${5-} ]]; then code=s:$5; fi
  CHECK_TOTAL=$((CHECK_TOTAL + 1))
  if [[ $ok == true ]]; then
    hint=""
  else
    ok=false
    CHECK_FAILED+=("$name")
    log "check $name failed: $detail"
  fi
  emit check name "s:$name" ok "b:$ok" detail "s:$detail" hint "s:$hint" code "$code"
}

chown_hint() { # chown_hint FILE: REPLY = the command that makes FILE private to the running user
  local who=root:root
  shell_quote "$1"
  if ((EUID != 0)); then who=$FACT_USER; fi
  REPLY="chown $who $REPLY && chmod 600 $REPLY"
}

# file_is_private PATH: true if PATH is a regular file owned by the running user, without group or
# other permissions, and readable. Otherwise FILE_PROBLEM and FILE_HINT say why; FILE_DESC describes
# the file when it is fine. Follows symlinks (restic does too).
file_is_private() {
  local path=$1 uid mode
  FILE_PROBLEM="" FILE_HINT="" FILE_DESC=""
  chown_hint "$path"
  local fix=$REPLY
  if [[ ! -e $path ]]; then
    FILE_PROBLEM="$path does not exist"
    FILE_HINT="create it, then: $fix"
    return 1
  fi
  if [[ ! -f $path ]]; then
    FILE_PROBLEM="$path is not a regular file"
    FILE_HINT="point the config at a regular file (then: $fix)"
    return 1
  fi
  if ! have_tool stat; then
    FILE_PROBLEM="cannot check the owner and mode of $path: stat (coreutils) not found"
    FILE_HINT="install coreutils"
    return 1
  fi
  capture "${TOOL[stat]}" -L -c '%u:%a' -- "$path"
  if ((CAP_RC != 0)) || [[ ! $CAP_OUT =~ ^([0-9]+):([0-7]+)$ ]]; then
    first_meaningful_line "$CAP_ERR"
    FILE_PROBLEM="cannot stat $path: $REPLY"
    FILE_HINT="check that $FACT_USER can reach the file"
    return 1
  fi
  uid=${BASH_REMATCH[1]}
  mode=$((8#${BASH_REMATCH[2]}))
  if ((uid != EUID)); then
    FILE_PROBLEM="$path is owned by uid $uid, not by $FACT_USER (uid $EUID), the user the agent runs as"
    FILE_HINT=$fix
    return 1
  fi
  if (((mode & 8#077) != 0)); then
    printf -v FILE_PROBLEM '%s has mode %04o: group or others have access' "$path" "$mode"
    FILE_HINT=$fix
    return 1
  fi
  if [[ ! -r $path ]]; then
    FILE_PROBLEM="$path is not readable by $FACT_USER"
    FILE_HINT=$fix
    return 1
  fi
  printf -v FILE_DESC '%s: owner %s, mode %04o' "$path" "$FACT_USER" "$mode"
  return 0
}

# env_key_allowed KEY: true if KEY is a variable that restic or one of its backends reads (restic's
# "Environment Variables" documentation), and so may come from restic_env_file. Anything else could
# overwrite one of this script's own variables (RESTIC_PREFIX, a lower-case local such as repo) in the
# subshell that runs restic, or change how a tool behaves (PATH, LD_PRELOAD, BASH_ENV): refused. The
# prefixes are the backends' own (S3, Azure, B2, GCS, OpenStack/Swift, rclone); the agent names none of
# its variables with them.
env_key_allowed() {
  case $1 in
    AWS_?* | AZURE_?* | B2_?* | GOOGLE_?* | OS_?* | ST_?* | SWIFT_?* | RCLONE_?* | RESTIC_AWS_?*) return 0 ;;
    RESTIC_CACERT | RESTIC_TLS_CLIENT_CERT | RESTIC_KEY_HINT | RESTIC_CACHE_DIR | RESTIC_COMPRESSION) return 0 ;;
    RESTIC_PACK_SIZE | RESTIC_READ_CONCURRENCY | RESTIC_PROGRESS_FPS | RESTIC_FEATURES) return 0 ;;
    RESTIC_HTTP_USER_AGENT | RESTIC_REST_USERNAME | RESTIC_REST_PASSWORD | RESTIC_HOST) return 0 ;;
    HTTP_PROXY | HTTPS_PROXY | NO_PROXY) return 0 ;;
  esac
  return 1
}

# load_env_file PATH: ENV_KEYS/ENV_VALS from a KEY=VALUE file, parsed, never sourced. Blank lines and
# `#` lines are skipped, an `export ` prefix is allowed, one pair of matching surrounding quotes is
# removed, nothing else is interpreted. On a problem ENV_ERROR/ENV_HINT say why (never with a value).
load_env_file() {
  local path=$1 line key value n=0 first
  local name_re='^[A-Za-z_][A-Za-z0-9_]*$' export_re='^export[[:space:]]+(.*)$'
  ENV_KEYS=() ENV_VALS=() ENV_ERROR="" ENV_HINT=""
  if ! file_is_private "$path"; then
    ENV_ERROR=$FILE_PROBLEM
    ENV_HINT=$FILE_HINT
    return 0
  fi
  # An empty file has no variables. (Also: files of /proc report size 0 and are never read.)
  if [[ ! -s $path ]]; then return 0; fi
  while IFS= read -r line || [[ -n $line ]]; do
    n=$((n + 1))
    line=${line%$'\r'}
    line=${line#"${line%%[![:space:]]*}"}
    if [[ -z $line || $line == '#'* ]]; then continue; fi
    if [[ $line =~ $export_re ]]; then line=${BASH_REMATCH[1]}; fi
    if [[ $line != *=* ]]; then
      ENV_ERROR="$path line $n: expected KEY=VALUE"
      break
    fi
    key=${line%%=*}
    value=${line#*=}
    if [[ ! $key =~ $name_re ]]; then
      ENV_ERROR="$path line $n: the variable name is not [A-Za-z_][A-Za-z0-9_]*"
      break
    fi
    case $key in
      RESTIC_REPOSITORY* | RESTIC_PASSWORD* | RESTIC_FROM_*)
        ENV_ERROR="$path line $n: $key is set per repository by the config (repo_path, password_file)"
        break
        ;;
    esac
    if ! env_key_allowed "$key"; then
      ENV_ERROR="$path line $n: $key is not a variable restic or its backends read"
      break
    fi
    first=${value:0:1}
    if ((${#value} >= 2)) && [[ ($first == '"' || $first == "'") && ${value: -1} == "$first" ]]; then
      value=${value:1:${#value}-2}
    fi
    ENV_KEYS+=("$key")
    ENV_VALS+=("$value")
  done <"$path"
  if [[ -n $ENV_ERROR ]]; then
    ENV_KEYS=() ENV_VALS=()
    ENV_HINT="fix the file: KEY=VALUE lines of restic's and its backends' variables only (AWS_*, AZURE_*, B2_*, GOOGLE_*, OS_*, ST_*, SWIFT_*, RCLONE_*, HTTP(S)_PROXY, NO_PROXY, and restic's RESTIC_* options; see the README)"
  fi
  return 0
}

check_bash() {
  if ((BASH_VERSINFO[0] > 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] >= 4))); then
    check bash true "$BASH_VERSION" ""
  else
    check bash false "$BASH_VERSION is older than 4.4" "upgrade bash to 4.4 or newer"
  fi
}

check_restic() {
  if ! have_tool restic; then
    check restic false "restic not found (searched PATH and ${FALLBACK_TOOL_DIRS//:/, })${TOOL_REFUSED[restic]:+; not run: ${TOOL_REFUSED[restic]}}" \
      "install restic $RESTIC_MIN_VERSION or newer: apt-get install restic"
  elif [[ -z $RESTIC_VERSION ]]; then
    check restic false "$RESTIC_PROBLEM" "reinstall restic $RESTIC_MIN_VERSION or newer"
  elif ! version_at_least "$RESTIC_VERSION" "$RESTIC_MIN_VERSION"; then
    check restic false "$RESTIC_VERSION (${TOOL[restic]}) is older than $RESTIC_MIN_VERSION" \
      "upgrade restic to $RESTIC_MIN_VERSION or newer (restic self-update, or a newer package)"
  else
    check restic true "$RESTIC_VERSION (${TOOL[restic]})" ""
  fi
}

restic_usable() {
  [[ -n $RESTIC_VERSION ]] && version_at_least "$RESTIC_VERSION" "$RESTIC_MIN_VERSION"
}

check_lvm_tools() {
  local name
  local -a missing=()
  for name in lvs vgs lvcreate lvremove; do
    if ! have_tool "$name"; then missing+=("$name"); fi
  done
  if ((${#missing[@]} > 0)); then
    join_by ", " "${missing[@]}"
    check lvm false "not found: $REPLY" "install lvm2: apt-get install lvm2"
  else
    check lvm true "LVM ${LVM_VERSION:-version unknown}" ""
  fi
}

# check_lv JOB_INDEX: lv:<job>, and LV_MM["VG/LV"] for the mount and source checks.
check_lv() {
  local i=$1 vg=${JOB_VG[$1]} lv=${JOB_LV[$1]} name="lv:${JOB_NAME[$1]}"
  LV_MM[$vg/$lv]=""
  if ! have_tool lvs; then
    check "$name" false "cannot look up $vg/$lv: lvs not found" "install lvm2: apt-get install lvm2"
    return 0
  fi
  lvm_call lvs --noheadings -o lv_name,lv_kernel_major,lv_kernel_minor "$vg/$lv"
  split_words "$CAP_OUT"
  if ((CAP_RC != 0 || ${#WORDS[@]} != 3)) || [[ ${WORDS[0]} != "$lv" ]]; then
    first_meaningful_line "$CAP_ERR"
    check "$name" false "$vg/$lv not found${REPLY:+: $REPLY}" \
      "check vg_name and lv_name of job ${JOB_NAME[$i]} ('lvs' lists the LVs)"
    return 0
  fi
  if [[ ${WORDS[1]} =~ ^[0-9]+$ && ${WORDS[2]} =~ ^[0-9]+$ ]]; then
    LV_MM[$vg/$lv]="${WORDS[1]}:${WORDS[2]}"
    check "$name" true "$vg/$lv exists (device ${WORDS[1]}:${WORDS[2]})" ""
  else
    LV_MM[$vg/$lv]=inactive
    check "$name" false "$vg/$lv exists but is not active" "activate it: lvchange -ay $vg/$lv"
  fi
}

# lv_state_problem VG LV JOB: REPLY = why the LV's mount/source cannot be checked, or "".
lv_state_problem() {
  REPLY=""
  case ${LV_MM[$1/$2]-} in
    "") REPLY="not checked: $1/$2 could not be looked up (see lv:$3)" ;;
    inactive) REPLY="not checked: $1/$2 is not active (see lv:$3)" ;;
  esac
}

check_mount() {
  local i=$1 vg=${JOB_VG[$1]} lv=${JOB_LV[$1]} job=${JOB_NAME[$1]} source=${JOB_SOURCE[$1]}
  local name="mount:$job" lv_mm mp
  lv_state_problem "$vg" "$lv" "$job"
  if [[ -n $REPLY ]]; then
    check "$name" false "$REPLY" "fix lv:$job first"
    return 0
  fi
  lv_mm=${LV_MM[$vg/$lv]}
  if ! have_tool findmnt; then
    check "$name" false "cannot list mounts: findmnt not found" "install util-linux"
    return 0
  fi
  if [[ ${JOB_CATEGORY[i]} == logical_volume_root ]]; then
    if ! mount_of /; then
      first_meaningful_line "$CAP_ERR"
      check "$name" false "findmnt cannot tell what is mounted at /${REPLY:+: $REPLY}" "run 'findmnt /' by hand"
    elif dev_is_lv "$MNT_MM" "$MNT_SRC" "$vg" "$lv_mm"; then
      check "$name" true "$vg/$lv is mounted at /" ""
    else
      check "$name" false "/ is $MNT_SRC ($MNT_MM), not $vg/$lv ($lv_mm)" \
        "a logical_volume_root job needs the root filesystem on its LV: check vg_name and lv_name"
    fi
    return 0
  fi
  if ! lv_mountpoints "$vg" "$lv_mm"; then
    first_meaningful_line "$CAP_ERR"
    check "$name" false "findmnt cannot list the mounts${REPLY:+: $REPLY}" "run 'findmnt' by hand"
    return 0
  fi
  if ((${#MOUNTS[@]} == 0)); then
    check "$name" false "$vg/$lv ($lv_mm) is not mounted" \
      "mount it where backup_source_path lies (see /etc/fstab)"
    return 0
  fi
  for mp in "${MOUNTS[@]}"; do
    if path_is_under "$source" "$mp"; then
      check "$name" true "$vg/$lv is mounted at $mp" ""
      return 0
    fi
  done
  join_by ", " "${MOUNTS[@]}"
  check "$name" false "$vg/$lv is mounted at $REPLY; $source is not below it" \
    "backup_source_path must lie below the LV's mount point: check it, vg_name and lv_name"
}

check_source_on_lv() {
  local vg=${JOB_VG[$1]} lv=${JOB_LV[$1]} job=${JOB_NAME[$1]} source=${JOB_SOURCE[$1]}
  local name="source:$job"
  if [[ ! -e $source ]]; then
    check "$name" false "$source does not exist" "check backup_source_path of job $job"
    return 0
  fi
  lv_state_problem "$vg" "$lv" "$job"
  if [[ -n $REPLY ]]; then
    check "$name" false "$REPLY" "fix lv:$job first"
    return 0
  fi
  if ! mount_of "$source"; then
    first_meaningful_line "$CAP_ERR"
    check "$name" false "findmnt cannot tell which filesystem $source is on${REPLY:+: $REPLY}" \
      "install util-linux, or run 'findmnt --target' on the path by hand"
  elif dev_is_lv "$MNT_MM" "$MNT_SRC" "$vg" "${LV_MM[$vg/$lv]}"; then
    check "$name" true "$source is on $vg/$lv (mounted at $MNT_TGT)" ""
  else
    check "$name" false \
      "$source is on $MNT_SRC ($MNT_MM, mounted at $MNT_TGT), not on $vg/$lv (${LV_MM[$vg/$lv]})" \
      "backup_source_path must lie on the LV that is snapshotted: check it, vg_name and lv_name"
  fi
}

# check_vg_free: each VG with snapshots in this run has room for them (their sum comes in the plan) plus
# its margin, in bytes or in 1/100 % of the VG's size.
check_vg_free() {
  local vg free size need margin snaps bp
  for vg in "${VG_NAME[@]}"; do
    snaps=${VG_SNAPSHOTS[$vg]}
    if ! have_tool vgs; then
      check "vg_free:$vg" false "cannot look up $vg: vgs not found" "install lvm2: apt-get install lvm2"
      continue
    fi
    lvm_call vgs --noheadings --units b --nosuffix -o vg_free,vg_size "$vg"
    split_words "$CAP_OUT"
    if ((CAP_RC != 0 || ${#WORDS[@]} != 2)) || [[ ! ${WORDS[0]} =~ ^[0-9]{1,18}$ || ! ${WORDS[1]} =~ ^[0-9]{1,18}$ ]]; then
      first_meaningful_line "$CAP_ERR"
      check "vg_free:$vg" false "cannot read the free space of $vg${REPLY:+: $REPLY}" \
        "check vg_name ('vgs' lists the volume groups)"
      continue
    fi
    free=$((10#${WORDS[0]}))
    size=$((10#${WORDS[1]}))
    bp=${VG_MARGIN_BP[$vg]}
    margin=${VG_MARGIN[$vg]}
    # Plus size * bp / 10000, rounded up, without overflowing 64 bits.
    # shellcheck disable=SC2017 # the division comes first on purpose: size * bp could overflow
    margin=$((margin + size / 10000 * bp + (size % 10000 * bp + 9999) / 10000))
    human_bytes "$snaps"
    local detail=" (snapshots $REPLY"
    human_bytes "$margin"
    detail+=" + margin $REPLY)"
    human_bytes "$free"
    detail+=", free $REPLY"
    if ((snaps > MAX_BYTES - margin)); then
      check "vg_free:$vg" false "needs more than 8 EiB$detail" \
        "lower snapshot_size or min_vg_free_after_snapshots"
      continue
    fi
    need=$((snaps + margin))
    human_bytes "$need"
    detail="needs $REPLY$detail"
    if ((free >= need)); then
      check "vg_free:$vg" true "$detail" ""
    else
      check "vg_free:$vg" false "$detail" \
        "free space in $vg (vgextend, or shrink an LV), or lower snapshot_size or min_vg_free_after_snapshots"
    fi
  done
}

check_source_exists() {
  local job=${JOB_NAME[$1]} source=${JOB_SOURCE[$1]}
  if [[ -d $source ]]; then
    check "source_exists:$job" true "$source is a directory" ""
  elif [[ -e $source ]]; then
    check "source_exists:$job" false "$source exists but is not a directory" \
      "backup_source_path must be a directory"
  else
    check "source_exists:$job" false "$source does not exist (or $FACT_USER cannot reach it)" \
      "check backup_source_path of job $job"
  fi
}

check_password_files() {
  local path
  local -a paths=()
  local -A seen=()
  for path in "${REPO_PWFILE[@]}" "${COPY_PWFILE[@]}" "${MAINT_PWFILE[@]}"; do
    if [[ -z ${seen[$path]-} ]]; then seen[$path]=1 paths+=("$path"); fi
  done
  for path in "${paths[@]}"; do
    if ! file_is_private "$path"; then
      check "password_file:$path" false "$FILE_PROBLEM" "$FILE_HINT"
    elif [[ ! -s $path ]]; then
      check "password_file:$path" false "$path is empty" "write the repository's password into it"
    else
      check "password_file:$path" true "$FILE_DESC" ""
    fi
  done
}

check_env_file() {
  load_env_file "$PLAN_ENV_FILE"
  if [[ -n $ENV_ERROR ]]; then
    check restic_env_file false "$ENV_ERROR" "$ENV_HINT"
  else
    check restic_env_file true "$PLAN_ENV_FILE: ${#ENV_KEYS[@]} variable(s), owner $FACT_USER, private" ""
  fi
}

# The full repository id that the last check_repo read, or "" when the repository did not open.
CHECKED_REPO_ID=""

# check_repo NAME KIND INDEX REPO PASSWORD_FILE LABEL: `restic cat config --no-lock` opens the
# repository (KIND repo or copy, as restic_exec takes them), read-only, without a lock and without a cache
# (nothing is written on the host or in the repository). CHECKED_REPO_ID = its id, for repo_identity.
check_repo() {
  local name=$1 kind=$2 index=$3 repo=$4 password_file=$5 label=$6 line hint re code
  CHECKED_REPO_ID=""
  if ! restic_usable; then
    check "$name" false "not checked: no usable restic (see the restic check)" "fix the restic check first"
    return 0
  fi
  if [[ -n $PLAN_ENV_FILE && -n $ENV_ERROR ]]; then
    check "$name" false "not checked: restic_env_file is unusable (see its check)" \
      "fix the restic_env_file check first"
    return 0
  fi
  capture restic_exec "$kind" "$index" "$PREFLIGHT_TIMEOUT" cat config --no-lock --no-cache
  if ((CAP_RC == 0)); then
    local version=""
    config_repo_id "$CAP_OUT"
    CHECKED_REPO_ID=$REPLY
    re='"version":[[:space:]]*([0-9]+)'
    if [[ $CAP_OUT =~ $re ]]; then version=${BASH_REMATCH[1]}; fi
    local short=${CHECKED_REPO_ID:0:8}
    check "$name" true "repository ${short:-?} opens (format version ${version:-?})" ""
    return 0
  fi
  if ((CAP_RC == 124 || CAP_RC == 137)); then
    check "$name" false "restic did not answer within $PREFLIGHT_TIMEOUT s" \
      "the backend does not respond: check the network path to it and that the service is up"
    return 0
  fi
  restic_failure_code "$CAP_RC" "$CAP_ERR"
  code=$REPLY
  sanitize_restic_text "$CAP_ERR" "$repo" "$label"
  first_meaningful_line "$REPLY"
  line=${REPLY:-"restic exited with status $CAP_RC"}
  shell_quote "$password_file"
  case $code:$line in
    repo_missing:*)
      hint="no repository there: create it with 'restic init' (rlvm-fleet never creates repositories), or fix the repository path"
      ;;
    repo_wrong_password:* | *"wrong password"*)
      hint="the password in $REPLY does not open this repository: check password_file"
      ;;
    *"Resolving password failed"* | *"password file"* | *"Please specify repository password"*)
      hint="restic could not read the password file $REPLY: see its password_file check"
      ;;
    *"dial tcp"* | *"connection refused"* | *"no such host"* | *"i/o timeout"* | *"network is unreachable"* | \
      *"connection reset"* | *"TLS handshake"* | *"x509:"* | *"no route to host"* | *"sftp session"*)
      hint="the backend is unreachable: check the network, DNS, firewall, and the credentials in restic_env_file"
      ;;
    *"unable to open config file"* | *"does not exist"* | *"Is there a repository"*)
      hint="no repository there: create it with 'restic init' (rlvm-fleet never creates repositories), or fix the repository path"
      ;;
    *)
      hint="run 'restic cat config' against $label by hand to see the whole error"
      ;;
  esac
  check "$name" false "$line" "$hint" "$code"
}

check_repos() {
  local i j key name
  local -A seen=() names=()
  local -a kinds=() indices=() urls=() pwfiles=() labels=() ids=()
  for i in "${!REPO_ID[@]}"; do
    kinds+=(repo) indices+=("$i")
    urls+=("${REPO_URL[i]}") pwfiles+=("${REPO_PWFILE[i]}") labels+=("${REPO_LABEL[i]}") ids+=("${REPO_ID[i]}")
  done
  for i in "${!COPY_ID[@]}"; do
    kinds+=(copy) indices+=("$i")
    urls+=("${COPY_URL[i]}") pwfiles+=("${COPY_PWFILE[i]}") labels+=("${COPY_LABEL[i]}") ids+=("${COPY_ID[i]}")
  done
  for i in "${!urls[@]}"; do
    key="${urls[i]}"$'\n'"${pwfiles[i]}"
    if [[ -n ${seen[$key]-} ]]; then continue; fi
    seen[$key]=1
    name="repo:${labels[i]}"
    if [[ -n ${names[$name]-} ]]; then name+=" (${ids[i]})"; fi
    names[$name]=1
    check_repo "$name" "${kinds[i]}" "${indices[i]}" "${urls[i]}" "${pwfiles[i]}" "${labels[i]}"
    # Every plan entry checked by this one call names the repository that opened.
    if [[ -n $CHECKED_REPO_ID ]]; then
      for j in "${!urls[@]}"; do
        if [[ ${urls[j]}$'\n'${pwfiles[j]} == "$key" ]]; then
          emit repo_identity repo "s:${ids[j]}" repo_id "s:$CHECKED_REPO_ID"
        fi
      done
    fi
  done
}

# probe_lock: LOCK_STATE free | absent | held | unknown, without creating the lock file (or its
# directory) or keeping a lock: the existing file is opened read-only and flock -n -s'd, and the lock
# goes with the close. A lock in an unsafe directory, or a file that is not the running user's, is
# reported, not used.
probe_lock() {
  local fd
  lock_location
  LOCK_STATE=unknown LOCK_DETAIL=""
  if [[ ! -e $LOCK_DIR && ! -L $LOCK_DIR ]]; then
    LOCK_STATE=absent LOCK_DETAIL="not held ($LOCK_DIR does not exist)"
    return 0
  fi
  lock_dir_problem
  if [[ -n $REPLY ]]; then
    LOCK_DETAIL="the lock directory is not safe: $REPLY"
    return 0
  fi
  if [[ ! -e $LOCK_FILE && ! -L $LOCK_FILE ]]; then
    LOCK_STATE=absent LOCK_DETAIL="not held ($LOCK_FILE does not exist)"
    return 0
  fi
  if [[ -L $LOCK_FILE || ! -f $LOCK_FILE ]]; then
    LOCK_DETAIL="$LOCK_FILE is not a regular file"
    return 0
  fi
  if ! have_tool flock; then
    LOCK_DETAIL="cannot test $LOCK_FILE: flock not found"
    return 0
  fi
  if ! { exec {fd}<"$LOCK_FILE"; } 2>/dev/null; then
    LOCK_DETAIL="cannot open $LOCK_FILE as $FACT_USER"
    return 0
  fi
  lock_fd_problem "$fd"
  if [[ -n $REPLY ]]; then
    exec {fd}<&-
    LOCK_DETAIL=$REPLY
    return 0
  fi
  capture "${TOOL[flock]}" -n -s "$fd"
  exec {fd}<&-
  case $CAP_RC in
    0) LOCK_STATE=free LOCK_DETAIL="not held" ;;
    1) LOCK_STATE=held LOCK_DETAIL="held by another run ($LOCK_FILE)" ;;
    *)
      first_meaningful_line "$CAP_ERR"
      LOCK_DETAIL="flock failed on $LOCK_FILE${REPLY:+: $REPLY}"
      ;;
  esac
}

check_lock() {
  case $LOCK_STATE in
    free | absent) check lock true "$LOCK_DETAIL" "" ;;
    held)
      check lock false "$LOCK_DETAIL" \
        "another rlvm-fleet run is working on this host: wait for it; if none is running, find the process holding $LOCK_FILE"
      ;;
    *) check lock false "$LOCK_DETAIL" "check $LOCK_FILE by hand" ;;
  esac
}

# check_leftovers: what find_leftovers finds. Reports only; backup and prune remove the same.
check_leftovers() {
  local entry
  local -a found=()
  find_leftovers
  for entry in "${LEFTOVER_LVS[@]}"; do found+=("LV $entry"); done
  for entry in "${LEFTOVER_DIRS[@]}"; do found+=("run directory $entry"); done
  join_by ", " "${found[@]}"
  local detail=$REPLY
  if [[ -n $LEFTOVER_LV_PROBLEM ]] && plan_has_lv_jobs; then
    check leftovers false "$LEFTOVER_LV_PROBLEM${detail:+; found: $detail}" \
      "run the check as root (become = sudo), or run 'lvs @rlvm_host_$PLAN_HOST' by hand"
  elif ((${#found[@]} > 0)); then
    if [[ $LOCK_STATE == held ]]; then detail+=" (the lock is held: one may belong to a run in progress)"; fi
    check leftovers false "$detail" "run rlvm-fleet backup or prune, which remove them, or remove them by hand"
  else
    check leftovers true "none${LEFTOVER_LV_PROBLEM:+ ($LEFTOVER_LV_PROBLEM)}" ""
  fi
}

# check_volumes_and_secrets: the LVs, mounts, sources and VG space of the plan's jobs, and the files
# restic will read (password files, restic_env_file). Shared by preflight and backup.
check_volumes_and_secrets() {
  local i
  if plan_has_lv_jobs; then
    check_lvm_tools
    for i in "${!JOB_NAME[@]}"; do
      if ! is_lv_job "$i"; then continue; fi
      check_lv "$i"
      check_mount "$i"
      check_source_on_lv "$i"
    done
    check_vg_free
  fi
  for i in "${!JOB_NAME[@]}"; do
    if [[ ${JOB_CATEGORY[i]} == standard_path ]]; then check_source_exists "$i"; fi
  done
  check_password_files
  if [[ -n $PLAN_ENV_FILE ]]; then check_env_file; fi
}

# --- lifecycle: traps, lock, sweep, cleanup, the controller's liveness, the namespace -------------

LAST_ERROR=""
RUN_DIR=""
LOCK_DIR="" LOCK_FILE="" LOCK_FD=""
WATCHER_PID=""
CLEANED_UP=0 IN_PRIVATE_NS=0
declare -a LEFTOVER_LVS=() LEFTOVER_DIRS=()
LEFTOVER_LV_PROBLEM=""

# ERR trap: remember the first unexpected failure; set -e then ends the script and on_exit reports it.
# BASH_COMMAND is the command's source text, not its expanded arguments, so no data leaks through it.
# shellcheck disable=SC2317 # called by the ERR trap
on_err() {
  local status=$1 line=$2
  if [[ -z $LAST_ERROR ]]; then
    LAST_ERROR="line $line: '$BASH_COMMAND' exited with status $status"
  fi
  log "error at line $line: '$BASH_COMMAND' exited with status $status"
}

# EXIT trap: whatever ends the script, the controller gets exactly one result.
# shellcheck disable=SC2317 # called by the EXIT trap
on_exit() {
  local status=$?
  if ((RESULT_EMITTED == 0)); then
    cleanup_all || true
    RESULT_EMITTED=1
    local message=${LAST_ERROR:-"the agent exited with status $status before its result (see stderr)"}
    log "result: failed (agent_error): $message"
    emit result code s:agent_error message "s:unexpected agent error: $message" || true
    exit 1
  fi
}

# shellcheck disable=SC2317 # called by the INT/TERM/HUP traps
on_signal() {
  trap - INT TERM HUP
  fail agent_interrupted "the agent was stopped by SIG$1"
}

# lock_location: LOCK_DIR and LOCK_FILE, the host's lock, without creating anything. As root the lock
# lives in /run/rlvm-fleet/locks, a directory only root can write to: in a world-writable one (Debian's
# /run/lock) any local user could hold the lock (every backup would report `locked`) or plant a symlink
# that makes root create a file elsewhere. Under become = none it lives in a directory of the login
# user's own, 0700, in TMPDIR. RLVM_AGENT_LOCK_DIR, when set, replaces either (the unit tests use it;
# sudo's env_reset drops it); lock_dir_problem holds it to the same rules.
lock_location() {
  local tmp=${TMPDIR:-/tmp}
  if [[ $tmp != /* ]]; then tmp=/tmp; fi
  if [[ -n ${RLVM_AGENT_LOCK_DIR-} ]]; then
    LOCK_DIR=$RLVM_AGENT_LOCK_DIR
  elif ((EUID == 0)); then
    LOCK_DIR=$ROOT_LOCK_DIR
  else
    LOCK_DIR="$tmp/rlvm-fleet-locks.$EUID"
  fi
  LOCK_FILE="$LOCK_DIR/rlvm-fleet.$PLAN_HOST.lock"
}

# dir_problem DIR: REPLY = why DIR cannot hold this run's locks (it must be a directory, not a symlink,
# owned by the running user, not writable by group or others), or "" when it can.
dir_problem() {
  local dir=$1
  REPLY=""
  if [[ -L $dir ]]; then
    REPLY="$dir is a symlink"
  elif [[ ! -d $dir ]]; then
    REPLY="$dir is not a directory"
  elif [[ ! -O $dir ]]; then
    REPLY="$dir is not owned by $FACT_USER"
  elif ! have_tool stat; then
    REPLY="cannot check the mode of $dir: stat (coreutils) not found"
  else
    capture "${TOOL[stat]}" -c '%a' -- "$dir"
    if ((CAP_RC != 0)) || [[ ! $CAP_OUT =~ ^[0-7]+$ ]]; then
      REPLY="cannot stat $dir"
    elif (((8#$CAP_OUT & 8#022) != 0)); then
      printf -v REPLY '%s has mode %04o: group or others may write to it' "$dir" "$((8#$CAP_OUT))"
    fi
  fi
}

# lock_dir_problem: REPLY = why LOCK_DIR is unsafe, or "" (for root's default, its parent is checked too).
lock_dir_problem() {
  if [[ $LOCK_DIR == "$ROOT_LOCK_DIR" ]]; then
    dir_problem "$ROOT_LOCK_PARENT"
    if [[ -n $REPLY ]]; then return 0; fi
  fi
  dir_problem "$LOCK_DIR"
}

# lock_fd_problem FD: REPLY = why the file open on FD is not this run's lock file (a regular file owned
# by the running user), or "". Checked through the descriptor, so it is the file that was opened.
lock_fd_problem() {
  REPLY=""
  if [[ ! -f /dev/fd/$1 ]]; then
    REPLY="$LOCK_FILE is not a regular file"
  elif [[ ! -O /dev/fd/$1 ]]; then
    REPLY="$LOCK_FILE is not owned by $FACT_USER"
  fi
}

# acquire_lock: one run per inventory host. The lock is held until this process (and any restic it
# started, which inherits the descriptor) is gone; the file itself stays, empty, like any lock file.
# The directory is made if missing and checked first: no one else can write to it, so no one else can
# put a symlink or a file of theirs at LOCK_FILE (bash cannot open with O_NOFOLLOW), and the opened
# file is checked again through its descriptor.
acquire_lock() {
  local mode=0700
  lock_location
  if ((EUID == 0)) && [[ $LOCK_DIR == "$ROOT_LOCK_DIR" ]]; then
    mode=0755
    if [[ ! -e $ROOT_LOCK_PARENT && ! -L $ROOT_LOCK_PARENT ]]; then
      run "${TOOL[mkdir]}" -m 0755 -- "$ROOT_LOCK_PARENT" || true
    fi
  fi
  if [[ ! -e $LOCK_DIR && ! -L $LOCK_DIR ]]; then run "${TOOL[mkdir]}" -m "$mode" -- "$LOCK_DIR" || true; fi
  lock_dir_problem
  if [[ -n $REPLY ]]; then
    fail agent_error "refusing to take the host's lock: $REPLY; nothing was changed"
  fi
  if [[ -L $LOCK_FILE || (-e $LOCK_FILE && ! -f $LOCK_FILE) ]]; then
    fail agent_error "refusing to take the host's lock: $LOCK_FILE is not a regular file; nothing was changed"
  fi
  exec {LOCK_FD}>>"$LOCK_FILE"
  lock_fd_problem "$LOCK_FD"
  if [[ -n $REPLY ]]; then
    exec {LOCK_FD}>&-
    fail agent_error "refusing to take the host's lock: $REPLY; nothing was changed"
  fi
  capture "${TOOL[flock]}" -n "$LOCK_FD"
  if ((CAP_RC != 0)); then
    fail locked "already running: another run of $PLAN_HOST holds $LOCK_FILE; nothing was changed"
  fi
  # Marks this run directory as one that held the lock: a later run may sweep it if it is left over.
  : >"$RUN_DIR/locked"
}

# find_leftovers: what earlier runs of this host left, for check_leftovers (which reports it) and
# sweep_orphans (which removes it), so that the two always agree. LEFTOVER_LVS = the LVs tagged
# rlvm_host_<host> ("VG/LV"; a run removes its snapshots before it ends), or LEFTOVER_LV_PROBLEM says
# why they could not be listed. LEFTOVER_DIRS = the run directories next to ours whose `host` file
# names this host and that carry the `locked` marker. acquire_lock writes the marker once its run
# holds the host's lock, which stays held until that run and any restic it started are gone: while
# the lock is free or ours, a marked directory's run is over. A directory without the marker belongs
# to a run that never held the lock (ping, check, status, or a backup that has not got there yet),
# which may be running now: it is never a leftover.
find_leftovers() {
  local parent dir line
  local -a entries=()
  LEFTOVER_LVS=() LEFTOVER_DIRS=() LEFTOVER_LV_PROBLEM=""
  if have_tool lvs; then
    lvm_call lvs --noheadings -o vg_name,lv_name "@rlvm_host_$PLAN_HOST"
    if ((CAP_RC == 0)); then
      split_lines "$CAP_OUT"
      for line in "${LINES[@]}"; do
        split_words "$line"
        if ((${#WORDS[@]} == 2)); then LEFTOVER_LVS+=("${WORDS[0]}/${WORDS[1]}"); fi
      done
    else
      first_meaningful_line "$CAP_ERR"
      LEFTOVER_LV_PROBLEM="could not list LVs tagged rlvm_host_$PLAN_HOST${REPLY:+: $REPLY}"
    fi
  fi
  parent=${RUN_DIR%/*}
  if [[ -z $parent ]]; then parent=/; fi
  shopt -s nullglob
  entries=("$parent"/*)
  shopt -u nullglob
  for dir in "${entries[@]}"; do
    if [[ $dir -ef $RUN_DIR || -L $dir || ! -d $dir || ! -O $dir ]]; then continue; fi
    if [[ -L $dir/locked || ! -f $dir/locked || -L $dir/host || ! -f $dir/host || ! -O $dir/host ]]; then continue; fi
    line=""
    IFS= read -r -n 256 line <"$dir/host" || true
    if [[ $line == "$PLAN_HOST" ]]; then LEFTOVER_DIRS+=("$dir"); fi
  done
}

# sweep_orphans: remove what find_leftovers finds. We hold the host's lock, so no run that could be
# using them is alive.
sweep_orphans() {
  local entry
  find_leftovers
  if have_tool lvremove; then
    for entry in "${LEFTOVER_LVS[@]}"; do
      lvm_call lvremove -f "$entry"
      if ((CAP_RC == 0)); then
        emit orphan_removed kind s:snapshot name "s:$entry"
      else
        first_meaningful_line "$CAP_ERR"
        emit warning code s:orphan_stuck message "s:could not remove the leftover snapshot $entry: $REPLY"
      fi
    done
  fi
  for entry in "${LEFTOVER_DIRS[@]}"; do
    # Never follow a mount: a leftover directory holds none outside a dead run's namespace, but be sure.
    if run "${TOOL[rm]}" -rf --one-file-system -- "$entry"; then
      emit orphan_removed kind s:run_dir name "s:$entry"
    fi
  done
}

# cleanup_all: whatever ends the run, before the result is sent. Signals wait until it is done.
cleanup_all() {
  local i
  if ((CLEANED_UP)); then return 0; fi
  CLEANED_UP=1
  trap '' INT TERM HUP PIPE
  stop_child
  if [[ -n $SAMPLER_PID ]]; then kill -KILL "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; fi
  if [[ -n $WATCHER_PID ]]; then kill -KILL "$WATCHER_PID" 2>/dev/null || true; fi
  for ((i = ${#JOB_NAME[@]} - 1; i >= 0; i--)); do release_job "$i"; done
  remove_restore_dir
  for i in "${INSTALL_TEMPS[@]}"; do "${TOOL[rm]:-rm}" -f -- "$i" </dev/null 2>/dev/null || true; done
}

# watch_controller: the controller keeps our stdin open for the whole run; EOF means it is gone (its
# connection dropped, it was killed). No SIGHUP arrives in that case, so this turns EOF into SIGTERM.
watch_controller() {
  local agent=$BASHPID
  (
    trap - ERR EXIT INT TERM HUP
    set +e
    while IFS= read -r _; do :; done
    kill -TERM "$agent" 2>/dev/null
  ) 3>&- &
  WATCHER_PID=$!
  disown "$WATCHER_PID"
  exec 0</dev/null
}

# enter_private_namespace: as root, run this script again in a private mount namespace, so every mount
# of the run is invisible to the host and vanishes with the agent however it ends. The plan, read from
# stdin already, is handed over in RUN_DIR/plan (root's 0700 directory); stdin stays the controller's,
# for watch_controller. If the kernel or the container refuses, carry on without one: backup then
# refuses the jobs that mount snapshots.
enter_private_namespace() {
  find_tool unshare
  find_tool true
  if ! have_tool unshare || ! have_tool true; then return 0; fi
  if ! "${TOOL[unshare]}" --mount --propagation private -- "${TOOL[true]}" </dev/null >/dev/null 2>&1; then
    log "cannot create a private mount namespace; continuing without one"
    return 0
  fi
  printf '%s' "$PLAN_RAW" >"$RUN_DIR/plan"
  # main already moved the event stream to fd 3: give the new agent its original stdout back.
  exec "${TOOL[unshare]}" --mount --propagation private -- "$BASH" "$0" "$RUN_DIR" --in-private-namespace >&3 3>&-
}

# --- ping -----------------------------------------------------------------------------------------

cmd_ping() {
  gather_facts
  emit_agent_start
  finish pong
}

# --- preflight (check) ----------------------------------------------------------------------------

cmd_preflight() {
  gather_facts
  emit_agent_start
  check_bash
  check_restic
  check_volumes_and_secrets
  check_repos
  probe_lock
  check_leftovers
  check_lock
  warn_other_sudo_rules
  # Which checks failed the controller sees in their events; it decides what that makes the host.
  finish "$CHECK_TOTAL checks run, ${#CHECK_FAILED[@]} failed"
}

# --- backup ---------------------------------------------------------------------------------------
#
# Order (DESIGN §5): lock; sweep this host's orphans; the checks that would make the run pointless;
# every LV snapshot first (one consistent set); then per job: restic into every repository, the job's
# snapshot removed as soon as its last repository is done; then copy_to. Every side effect is recorded
# in per-job state that release_job() and cleanup_all() undo, whatever ends the run. Mounts only ever
# exist in this process's private mount namespace, so they vanish with it even after a SIGKILL.

declare -a RESTIC_PREFIX=()
declare -a RESTIC_REPO_AT=() RESTIC_PW_AT=() REPO_OK=() REPO_SNAP=() REPO_MS=()
declare -a REPO_READ_VALID=()   # repo index -> 1: its LVM snapshot was still valid when restic exited
JOB_PREP_ERROR="" RESTIC_CACHE=""

# backup_preflight: the checks without which no snapshot may be taken.
backup_preflight() {
  check_restic
  if plan_has_lv_jobs && ((IN_PRIVATE_NS == 0)); then
    check mount_namespace false "no private mount namespace (unshare failed or is missing)" \
      "the agent needs root and util-linux's unshare to mount snapshots without touching the host's mounts"
  fi
  check_volumes_and_secrets
  if ((${#CHECK_FAILED[@]} > 0)); then
    join_by ", " "${CHECK_FAILED[@]}"
    fail preflight "nothing was changed: ${#CHECK_FAILED[@]} check(s) failed: $REPLY"
  fi
}

# prepare_view JOB: the job's view prepared (bound snapshot or chroot), for restic_exec view:
# RESTIC_PREFIX = how restic runs in it (restic, or chroot ROOT restic); RESTIC_REPO_AT/PW_AT map
# repository index -> the path restic sees (differs only in the chroot).
prepare_view() {
  local i=$1 mp root r k
  RESTIC_PREFIX=("${TOOL[restic]}")
  RESTIC_CACHE=""
  case ${JOB_CATEGORY[i]} in
    standard_path)
      if [[ ${JOB_REMOUNT_RO[i]-} == 1 ]]; then
        if ! origin_mount "$i"; then fail agent_error "cannot find the mount of ${JOB_SOURCE[i]}"; fi
        mp=$REPLY
        capture "${TOOL[findmnt]}" -n -r -o OPTIONS --mountpoint "$mp"
        if [[ ,$CAP_OUT, != *,ro,* ]]; then
          if ! run "${TOOL[mount]}" -o remount,ro -- "$mp"; then
            first_meaningful_line "$CAP_ERR"
            JOB_PREP_ERROR="cannot remount $mp read-only (remount_readonly): $REPLY"
            return 1
          fi
          JOB_REMOUNTED[i]=$mp
        fi
      fi
      ;;
    logical_volume_nonroot)
      # The snapshot goes over the original mount point, so restic stores /data/... and finds its parent.
      mp=${ORIGIN_MP[i]}
      if ! run "${TOOL[mount]}" --bind -- "${SNAP_MNT[i]}" "$mp"; then
        JOB_PREP_ERROR="cannot bind the snapshot over $mp: $CAP_ERR"
        return 1
      fi
      JOB_VIEW[i]=$mp
      ;;
    logical_volume_root)
      root=${SNAP_MNT[i]}
      # A tmpfs over the snapshot's /run holds what restic needs from the live system: itself, the
      # repositories, the password files and its cache. /run, /dev, /proc and /sys are other
      # filesystems, which --one-file-system never crosses.
      JOB_VIEW[i]=$root/run
      run "${TOOL[mount]}" -t tmpfs -o mode=0700,size=16m rlvm-fleet "$root/run" || {
        JOB_VIEW[i]=""
        JOB_PREP_ERROR="cannot mount a tmpfs on the snapshot's /run: $CAP_ERR"
        return 1
      }
      for k in dev proc sys; do
        run "${TOOL[mount]}" --bind -- "/$k" "$root/$k" || {
          JOB_PREP_ERROR="cannot bind /$k into the snapshot: $CAP_ERR"
          return 1
        }
        CHROOT_BINDS[i]+=" $k"
      done
      JOB_VIEW[i]=$root
      run "${TOOL[mkdir]}" -p -- "$root/run/rlvm/cache" || return 1
      run "${TOOL[touch]}" -- "$root/run/rlvm/restic" || return 1
      run "${TOOL[mount]}" --bind -- "${TOOL[restic]}" "$root/run/rlvm/restic" || return 1
      run "${TOOL[mkdir]}" -p -- /root/.cache/restic || true
      run "${TOOL[mount]}" --bind -- /root/.cache/restic "$root/run/rlvm/cache" || return 1
      # restic writes its temporary pack files to $TMPDIR (default /tmp), which in the
      # chroot is the read-only snapshot: give it a writable directory of the live system.
      run "${TOOL[mkdir]}" -p -m 0700 -- "$RUN_DIR/tmp" "$root/run/rlvm/tmp" || return 1
      run "${TOOL[mount]}" --bind -- "$RUN_DIR/tmp" "$root/run/rlvm/tmp" || return 1
      for r in "${!REPO_ID[@]}"; do
        if ((REPO_JOB[r] != i)); then continue; fi
        RESTIC_PW_AT[r]=/run/rlvm/pw-$r
        run "${TOOL[touch]}" -- "$root${RESTIC_PW_AT[r]}" || return 1
        run "${TOOL[mount]}" --bind -- "${REPO_PWFILE[r]}" "$root${RESTIC_PW_AT[r]}" || return 1
        if [[ ${REPO_URL[r]} == /* || ${REPO_URL[r]} == local:/* ]]; then
          RESTIC_REPO_AT[r]=/run/rlvm/repo-$r
          run "${TOOL[mkdir]}" -p -- "$root${RESTIC_REPO_AT[r]}" || return 1
          run "${TOOL[mount]}" --bind -- "${REPO_URL[r]#local:}" "$root${RESTIC_REPO_AT[r]}" || {
            JOB_PREP_ERROR="cannot bind the repository ${REPO_LABEL[r]} into the snapshot: $CAP_ERR"
            return 1
          }
        fi
      done
      # Name resolution for remote repositories: a resolv.conf that points into /run needs its target.
      if [[ -L $root/etc/resolv.conf && -f /etc/resolv.conf ]]; then
        capture "${TOOL[readlink]}" -f /etc/resolv.conf
        if ((CAP_RC == 0)) && [[ $CAP_OUT == /run/* ]]; then
          if run "${TOOL[mkdir]}" -p -- "$root${CAP_OUT%/*}"; then run "${TOOL[cp]}" -- "$CAP_OUT" "$root$CAP_OUT" || true; fi
        fi
      fi
      RESTIC_PREFIX=("${TOOL[chroot]}" "$root" /run/rlvm/restic)
      RESTIC_CACHE=/run/rlvm/cache
      ;;
  esac
}

# backup_repo JOB REPO_INDEX: one `restic backup`, reported as repo_done or repo_failed.
backup_repo() {
  local i=$1 r=$2 start end out err line summary="" e code
  local -a args=(backup --json --host "$PLAN_HOST" --tag rlvm-fleet --tag "job:${JOB_NAME[i]}")
  if [[ ${JOB_CATEGORY[i]} == logical_volume_root ]]; then
    args+=(--one-file-system)
    # restic's cache (bound in, but also on the snapshotted root itself) and local
    # repositories on the root filesystem are never part of a backup of /.
    args+=(--exclude /root/.cache/restic)
    # the bound /proc, /sys, /dev and the tmpfs on /run: excluded by name, so restic never
    # lstat()s their entries (a process that exits between readdir and lstat made restic exit 3).
    args+=(--exclude '/proc/*' --exclude '/sys/*' --exclude '/dev/*' --exclude '/run/*')
    local rr
    for rr in "${!REPO_ID[@]}"; do
      if [[ ${REPO_URL[rr]} == /* ]] && path_is_under "${REPO_URL[rr]}" "${JOB_SOURCE[i]}"; then args+=(--exclude "${REPO_URL[rr]}"); fi
    done
  fi
  for e in "${!EXCLUDE_JOB[@]}"; do
    if ((EXCLUDE_JOB[e] == i)); then args+=(--exclude "${EXCLUDE_PATH[e]}"); fi
  done
  args+=(-- "${JOB_SOURCE[i]}")
  out="$RUN_DIR/restic.${REPO_ID[r]}.out" err="$RUN_DIR/restic.${REPO_ID[r]}.err"
  now_ms
  start=$REPLY
  # restic writes --json status lines up to 60 times a second when not told otherwise: one every
  # 2 s is what the progress events need, and keeps the file small. A restic_env_file value wins.
  RESTIC_PROGRESS_FPS=0.5 run_restic_progress "$out" "$err" "$i" "$r" restic_exec view "$r" 0 "${args[@]}"
  local rc=$REPLY
  # Still valid once restic has exited: everything it read came from the intact snapshot.
  if [[ -n ${SNAP_NAME[i]-} ]]; then
    read_cow "$i" # its last lvs sets CAP_RC: a failed lvs proves nothing
    if ((CAP_RC == 0)) && [[ -z ${SNAP_INVALID[i]-} ]]; then REPO_READ_VALID[r]=1; fi
  fi
  now_ms
  end=$REPLY
  while IFS= read -r line; do
    if [[ $line == '{"message_type":"summary"'*'}' ]]; then summary=$line; fi
  done <"$out"
  if ((rc == 0 || rc == 3)) && [[ -n $summary ]]; then
    REPO_MS[r]=$((end - start)) REPO_SNAP[r]=""
    if [[ $summary =~ \"snapshot_id\":\"([0-9a-f]+)\" ]]; then REPO_SNAP[r]=${BASH_REMATCH[1]}; fi
    emit repo_done job "s:${JOB_NAME[i]}" repo "s:${REPO_ID[r]}" exit_code "n:$rc" \
      duration_ms "n:$((end - start))" summary "j:$summary"
    return 0
  fi
  restic_code_field "$rc" "$err"
  code=$REPLY
  error_line "$err" "${REPO_URL[r]}" "${REPO_LABEL[r]}"
  emit repo_failed job "s:${JOB_NAME[i]}" repo "s:${REPO_ID[r]}" exit_code "n:$rc" \
    duration_ms "n:$((end - start))" message "s:restic backup failed (exit $rc): ${REPLY:-no output}" code "$code"
  return 1
}

# run_restic_progress OUT ERR JOB REPO_INDEX FUNC ARG...: run_restic_bg for `restic backup --json`,
# forwarding its latest status line as a progress event at most every 2 s while it runs. OUT is read
# from where the last look stopped (an open descriptor keeps the offset) and only the newest status
# line is kept, so memory stays bounded however long the backup runs. REPLY = the exit status.
run_restic_progress() {
  local out=$1 err=$2 i=$3 r=$4 rc=0 fd="" line partial="" latest="" ticks=0
  shift 4
  CHILD_CMD=("$@")
  "$@" </dev/null >"$out" 2>"$err" 3>&- &
  CHILD_PID=$!
  while kill -0 "$CHILD_PID" 2>/dev/null; do
    # In the foreground like reap's: a signal's trap runs within 0.25 s, restic's end is seen as soon.
    "${TOOL[sleep]}" 0.25 </dev/null || true
    ticks=$((ticks + 1))
    if ((ticks < 8)); then continue; fi
    ticks=0
    if [[ -z $fd ]]; then exec {fd}<"$out" || break; fi
    # Complete lines only: a line cut at the end of what restic wrote so far waits for its rest.
    while IFS= read -r -u "$fd" line; do
      line=$partial$line partial=""
      if [[ $line == '{"message_type":"status"'*'}' ]]; then latest=$line; fi
    done
    partial+=$line
    if ((${#partial} > 65536)); then partial=""; fi # a line this long is no status line
    if [[ -n $latest ]]; then emit_progress "$i" "$r" "$latest"; fi
    latest=""
  done
  if [[ -n $fd ]]; then exec {fd}<&-; fi
  wait "$CHILD_PID" || rc=$?
  CHILD_PID=""
  if ((rc > 128)); then unlock_after_child "$@"; fi
  REPLY=$rc
}

# emit_progress JOB REPO_INDEX STATUS_LINE: one progress event from a restic status line. Each value is
# passed on only in the plain form restic writes it (digits, a decimal fraction), else as null.
emit_progress() {
  local line=$3 key value
  local -a fields=()
  for key in percent_done:fraction total_bytes:bytes_total bytes_done:bytes_done \
    total_files:files_total files_done:files_done seconds_remaining:eta_s; do
    value=z:
    if [[ ${key%%:*} == percent_done ]]; then
      if [[ $line =~ \"percent_done\":([0-9](\.[0-9]{1,20})?)[,}] ]]; then value=j:${BASH_REMATCH[1]}; fi
    elif [[ $line =~ \"${key%%:*}\":([0-9]{1,15})[,}] ]]; then
      value=n:${BASH_REMATCH[1]}
    fi
    fields+=("${key#*:}" "$value")
  done
  emit progress job "s:${JOB_NAME[$1]}" repo "s:${REPO_ID[$2]}" "${fields[@]}"
}

# discard_job_backups JOB: the job's LVM snapshot overflowed. A backup whose restic exited while the
# snapshot was still valid is complete and kept; any other may have read from the invalidated
# snapshot, so it is not the point-in-time copy it claims to be: forget it, so that it never becomes
# the newest snapshot, the next run's parent, a copy, or the one snapshot retention keeps.
# REPLY = how many backups were discarded.
discard_job_backups() {
  local i=$1 r id message discarded=0
  for r in "${!REPO_ID[@]}"; do
    if ((REPO_JOB[r] != i)) || [[ ${REPO_OK[r]-} != 1 || ${REPO_READ_VALID[r]-} == 1 ]]; then continue; fi
    REPO_OK[r]=0
    discarded=$((discarded + 1))
    id=${REPO_SNAP[r]-}
    message="the LVM snapshot overflowed while restic read it"
    if [[ -z $id ]]; then
      message+="; restic reported no snapshot id"
    else
      restic_locked_retry "$RUN_DIR/discard.${REPO_ID[r]}.out" "$RUN_DIR/discard.${REPO_ID[r]}.err" \
        restic_exec repo "$r" 0 forget -- "$id"
      if ((REPLY == 0)); then
        message+="; its restic snapshot ${id:0:8} was forgotten"
      else
        error_line "$RUN_DIR/discard.${REPO_ID[r]}.err" "${REPO_URL[r]}" "${REPO_LABEL[r]}"
        message+="; forgetting its restic snapshot failed (${REPLY:-no output}): run restic forget $id"
      fi
    fi
    emit repo_failed job "s:${JOB_NAME[i]}" repo "s:${REPO_ID[r]}" exit_code n:-1 \
      duration_ms "n:${REPO_MS[r]:-0}" message "s:$message" code z:
  done
  REPLY=$discarded
}

# backup_sample JOB: backup --verify-sample: the snapshot just written into the job's first repository
# that took it, sampled, restored and compared byte for byte with what restic read: the LVM snapshot,
# still mounted (which lengthens its life by the sample's duration), or a standard_path job's live path.
backup_sample() {
  local i=$1 r first="" mode=frozen root=""
  for r in "${!REPO_ID[@]}"; do
    if ((REPO_JOB[r] != i)); then continue; fi
    first=${first:-$r}
    if [[ ${REPO_OK[r]-} != 1 || -z ${REPO_SNAP[r]-} ]]; then continue; fi
    if [[ -n ${SNAP_INVALID[i]-} ]]; then
      now_ms
      restore_failed "$i" "$r" "$REPLY" "${REPO_SNAP[r]:0:8}" "not run: the LVM snapshot overflowed"
      return 0
    fi
    case ${JOB_CATEGORY[i]} in
      standard_path) mode=live ;;
      logical_volume_root) root=${SNAP_MNT[i]} ;;
    esac
    sample_snapshot "$i" "$r" "${REPO_SNAP[r]}" "$root" "$mode"
    return 0
  done
  if [[ -n $first ]]; then
    now_ms
    restore_failed "$i" "$first" "$REPLY" "" "not run: no backup of this job was written"
  fi
}

# run_copy COPY_INDEX: this host's snapshots of the job, from the source repository into the destination.
run_copy() {
  local c=$1 r i start end
  r=${COPY_FROM[c]}
  i=${COPY_JOB[c]}
  if [[ ${REPO_OK[r]-} != 1 ]]; then
    emit copy_failed job "s:${JOB_NAME[i]}" copy "s:${COPY_ID[c]}" duration_ms n:0 \
      message "s:not run: the backup into ${REPO_LABEL[r]} failed in this run" code z:
    return 1
  fi
  now_ms
  start=$REPLY
  run_restic_bg "$RUN_DIR/copy.${COPY_ID[c]}.out" "$RUN_DIR/copy.${COPY_ID[c]}.err" \
    restic_exec copy_from "$c" 0 copy --host "$PLAN_HOST" --tag "job:${JOB_NAME[i]}"
  local rc=$REPLY
  now_ms
  end=$REPLY
  if ((rc == 0)); then
    emit copy_done job "s:${JOB_NAME[i]}" copy "s:${COPY_ID[c]}" duration_ms "n:$((end - start))"
    return 0
  fi
  # The code names the repository restic could not open: source and destination share this stderr.
  restic_code_field "$rc" "$RUN_DIR/copy.${COPY_ID[c]}.err"
  local code=$REPLY
  error_line "$RUN_DIR/copy.${COPY_ID[c]}.err" "${COPY_URL[c]}" "${COPY_LABEL[c]}" "${REPO_URL[r]}" "${REPO_LABEL[r]}"
  emit copy_failed job "s:${JOB_NAME[i]}" copy "s:${COPY_ID[c]}" duration_ms "n:$((end - start))" \
    message "s:restic copy failed (exit $rc): ${REPLY:-no output}" code "$code"
  return 1
}

cmd_backup() {
  local i r c copies_failed=0
  gather_facts
  emit_agent_start
  acquire_lock
  sweep_orphans
  backup_preflight
  watch_controller
  # Before any snapshot exists, so that reading the ids adds nothing to a snapshot's lifetime.
  list_targets
  emit_repo_identities
  take_snapshots
  mount_snapshots
  start_cow_sampler
  for i in "${!JOB_NAME[@]}"; do
    emit job_start job "s:${JOB_NAME[i]}"
    JOB_PREP_ERROR=""
    if prepare_view "$i"; then
      for r in "${!REPO_ID[@]}"; do
        if ((REPO_JOB[r] != i)); then continue; fi
        if backup_repo "$i" "$r"; then REPO_OK[r]=1; fi
      done
    else
      for r in "${!REPO_ID[@]}"; do
        if ((REPO_JOB[r] != i)); then continue; fi
        emit repo_failed job "s:${JOB_NAME[i]}" repo "s:${REPO_ID[r]}" exit_code n:-1 duration_ms n:0 \
          message "s:not run: ${JOB_PREP_ERROR:-the job could not be prepared}" code z:
      done
    fi
    if ((PLAN_RESTORE_SAMPLE > 0)); then backup_sample "$i"; fi
    # The snapshot goes as soon as the job's last repository is done. What restic read from a snapshot
    # that overflowed meanwhile is forgotten again here; the controller decides what it means for the job.
    release_job "$i"
    if [[ -n ${SNAP_INVALID[i]-} ]]; then discard_job_backups "$i"; fi
    emit job_end job "s:${JOB_NAME[i]}"
  done
  if [[ -n $SAMPLER_PID ]]; then kill -KILL "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=""; fi
  for c in "${!COPY_ID[@]}"; do
    run_copy "$c" || copies_failed=$((copies_failed + 1))
  done
  finish "${#JOB_NAME[@]} jobs run, $copies_failed copies failed"
}

# --- prune ----------------------------------------------------------------------------------------

FORGET_RC=0 FORGET_MS=0 # timed_forget's exit status and duration
declare -A FORGOT_IN=()  # maintained index -> "ok" once a forget there succeeded, "failed" before

# cmd_prune: phase 1 of the fleet-wide prune: per repository and copy destination, `restic forget`
# with that entry's keep values and --keep-tag protected, scoped to this host and job (with dry_run,
# `forget --dry-run` only: nothing is deleted; the controller's phase 1 is always that preview). Then,
# on one host per repository, a plan of maintained records: every host's forgets there, run one after
# another by this one host (no lock contention), and one `restic prune`.
cmd_prune() {
  repository_preflight changed
  if ((${#MAINT_ID[@]} > 0)); then
    forget_for_hosts
    prune_repositories
  else
    forget_snapshots
  fi
}

# repository_preflight WHAT: the start of a command that works on repositories only (prune, verify):
# the lock, the orphan sweep, restic, the password and env files checked ("nothing was WHAT" if one
# fails), then each repository's identity read.
repository_preflight() {
  gather_facts
  emit_agent_start
  acquire_lock
  sweep_orphans
  check_restic
  check_password_files
  if [[ -n $PLAN_ENV_FILE ]]; then check_env_file; fi
  if ((${#CHECK_FAILED[@]} > 0)); then
    join_by ", " "${CHECK_FAILED[@]}"
    fail preflight "nothing was $1: ${#CHECK_FAILED[@]} check(s) failed: $REPLY"
  fi
  watch_controller
  list_targets
  emit_repo_identities
}

# forget_for_hosts: on a maintenance host, the forget_for records' forgets in the maintained repository,
# scoped to each host and job with its keep values, and only where the repository here has the id the
# backed-up hosts read: maintenance_url may be a typo that opens another repository. The records of one
# repository, job and keep values are one `restic forget --host H1 --host H2 ...`: --group-by host,paths
# applies the keep values to each host's snapshots alone, as its own forget would.
forget_for_hosts() {
  local f g r t rc out err ms json key hosts
  local -A batch_of=()
  local -a batch_first=() batch_hosts=() for_hosts=()
  for f in "${!FORGET_FOR_HOST[@]}"; do
    key="${FORGET_FOR_REPO[f]} ${FORGET_FOR_JOB[f]} ${FORGET_FOR_KEEP[f]}"
    if [[ -z ${batch_of[$key]+set} ]]; then
      batch_of[$key]=${#batch_first[@]}
      batch_first+=("$f") batch_hosts+=("")
    fi
    g=${batch_of[$key]}
    batch_hosts[g]+=" ${FORGET_FOR_HOST[f]}"
  done
  for g in "${!batch_first[@]}"; do
    f=${batch_first[g]}
    r=${FORGET_FOR_REPO[f]}
    split_words "${batch_hosts[g]}"
    for_hosts=("${WORDS[@]}")
    # Host names match [A-Za-z0-9._-]+ (read_plan): they need no JSON escaping.
    hosts=$(printf ',"%s"' "${for_hosts[@]}")
    hosts="[${hosts:1}]"
    for t in "${!TARGET_ID[@]}"; do
      if [[ ${TARGET_KIND[t]} == maintained && ${TARGET_INDEX[t]} == "$r" ]]; then break; fi
    done
    if [[ ${TARGET_REPO_ID[t]-} != "${MAINT_REPO_ID[r]}" ]]; then
      emit forget_for_done repo "s:${MAINT_ID[r]}" for_hosts "j:$hosts" \
        job "s:${FORGET_FOR_JOB[f]}" ok b:false dry_run "b:$PLAN_DRY_RUN" forget "j:[]" duration_ms n:0 \
        message "s:not forgotten: the repository here is not the one the hosts back up into (its id is ${TARGET_REPO_ID[t]:-unreadable})"
      continue
    fi
    if [[ ${FORGOT_IN[$r]-} != ok ]]; then FORGOT_IN[$r]=failed; fi
    forget_args "${FORGET_FOR_JOB[f]}" "${FORGET_FOR_KEEP[f]}" "${for_hosts[@]}"
    out="$RUN_DIR/forget.${MAINT_ID[r]}.$g.out" err="$RUN_DIR/forget.${MAINT_ID[r]}.$g.err"
    timed_forget "$out" "$err" maintained "$r"
    json=$REPLY rc=$FORGET_RC ms=$FORGET_MS
    if [[ -n $json ]]; then
      FORGOT_IN[$r]=ok
      emit forget_for_done repo "s:${MAINT_ID[r]}" for_hosts "j:$hosts" \
        job "s:${FORGET_FOR_JOB[f]}" ok b:true dry_run "b:$PLAN_DRY_RUN" forget "j:$json" duration_ms "n:$ms" message s:
    else
      restic_error_text "$err" "$t"
      emit forget_for_done repo "s:${MAINT_ID[r]}" for_hosts "j:$hosts" \
        job "s:${FORGET_FOR_JOB[f]}" ok b:false dry_run "b:$PLAN_DRY_RUN" forget "j:[]" duration_ms "n:$ms" \
        message "s:restic forget failed (exit $rc): ${REPLY:-no output}"
    fi
  done
}

# forget_args JOB KEEP HOST...: REPLY_ARGS = restic forget's arguments for those hosts' snapshots of
# that job with the keep values "last daily weekly monthly yearly" (0: not used), applied to each
# host's alone; protected snapshots are always kept.
forget_args() {
  local k h
  local -a keep_names=(last daily weekly monthly yearly)
  REPLY_ARGS=(forget --json)
  for h in "${@:3}"; do REPLY_ARGS+=(--host "$h"); done
  REPLY_ARGS+=(--tag "job:$1" --group-by "host,paths" --keep-tag protected)
  split_words "$2"
  for k in 0 1 2 3 4; do
    if ((10#${WORDS[k]} > 0)); then REPLY_ARGS+=("--keep-${keep_names[k]}" "$((10#${WORDS[k]}))"); fi
  done
  # A dry run only reads: no lock, so it never waits for (or blocks) another host's prune.
  if [[ $PLAN_DRY_RUN == true ]]; then REPLY_ARGS+=(--dry-run --no-lock); fi
}

# timed_forget OUT ERR KIND INDEX: `restic forget REPLY_ARGS...` in that target, again while another
# restic holds its lock; FORGET_RC = its exit status, FORGET_MS = how long it took, REPLY = its JSON
# (forget_json).
timed_forget() {
  local started
  now_ms
  started=$REPLY
  restic_locked_retry "$1" "$2" restic_exec "$3" "$4" 0 "${REPLY_ARGS[@]}"
  FORGET_RC=$REPLY
  now_ms
  FORGET_MS=$((REPLY - started))
  forget_json "$FORGET_RC" "$1"
  # Nothing was forgotten when the backend refused the deletes, whatever restic's exit status says.
  if [[ -n $REPLY ]] && restic_delete_refused "$2"; then REPLY=""; fi
}

# forget_json RC OUT: REPLY = restic forget's JSON (a list) when it succeeded, else "". restic prints
# nothing at all when no snapshot of this host and job is there (a new host, a new copy destination):
# nothing to forget is success.
forget_json() {
  REPLY=""
  if [[ -f $2 ]]; then IFS= read -r REPLY <"$2" || true; fi
  if (($1 == 0)) && [[ -z $REPLY || $REPLY == null ]]; then REPLY="[]"; fi
  if (($1 != 0)) || [[ $REPLY != '['*']' ]]; then REPLY=""; fi
}

# forget_snapshots: phase 1, every target's scoped forget.
forget_snapshots() {
  local t id job out err failed=0 skipped=0 rc ms json code
  for t in "${!TARGET_ID[@]}"; do
    id=${TARGET_ID[t]}
    job=${JOB_NAME[${TARGET_JOB[t]}]}
    if [[ -z ${RETENTION[$id]-} ]]; then
      emit prune_done job "s:$job" repo "s:$id" dry_run "b:$PLAN_DRY_RUN" skipped b:true forget "j:[]" duration_ms n:0
      skipped=$((skipped + 1))
      continue
    fi
    forget_args "$job" "${RETENTION[$id]}" "$PLAN_HOST"
    out="$RUN_DIR/forget.$id.out" err="$RUN_DIR/forget.$id.err"
    timed_forget "$out" "$err" "${TARGET_KIND[t]}" "${TARGET_INDEX[t]}"
    json=$REPLY rc=$FORGET_RC ms=$FORGET_MS
    if [[ -n $json ]]; then
      emit prune_done job "s:$job" repo "s:$id" dry_run "b:$PLAN_DRY_RUN" skipped b:false forget "j:$json" \
        duration_ms "n:$ms"
    else
      restic_code_field "$rc" "$err"
      code=$REPLY
      restic_error_text "$err" "$t"
      emit prune_failed job "s:$job" repo "s:$id" dry_run "b:$PLAN_DRY_RUN" \
        message "s:restic forget failed (exit $rc): ${REPLY:-no output}" duration_ms "n:$ms" code "$code"
      failed=$((failed + 1))
    fi
  done
  finish "${#TARGET_ID[@]} repositories and copy destinations processed ($failed failed, $skipped without retention)"
}

# prune_repositories: `restic prune` of each maintained repository a prune record names, once per
# repository URL, and only if the repository there still has the id the controller grouped it by.
prune_repositories() {
  local t out err rc failed=0 count=0 started ms code
  local -A pruned=()
  for t in "${!TARGET_ID[@]}"; do
    if [[ -z ${PRUNE_REPO_ID[${TARGET_ID[t]}]-} || -n ${pruned[${TARGET_URL[t]}]-} ]]; then continue; fi
    pruned[${TARGET_URL[t]}]=1
    count=$((count + 1))
    if [[ ${TARGET_REPO_ID[t]-} != "${PRUNE_REPO_ID[${TARGET_ID[t]}]}" ]]; then
      emit repo_pruned repo "s:${TARGET_ID[t]}" ok b:false duration_ms n:0 \
        message "s:not pruned: the repository here is not the one the forgets ran in (its id is ${TARGET_REPO_ID[t]:-unreadable})" code z:
      failed=$((failed + 1))
      continue
    fi
    # Every forget there failed (an append-only backend refuses deletes): nothing new to prune.
    if [[ ${FORGOT_IN[${TARGET_INDEX[t]}]-} == failed ]]; then
      emit repo_pruned repo "s:${TARGET_ID[t]}" ok b:false duration_ms n:0 \
        message "s:not pruned: none of its forgets succeeded" code z:
      failed=$((failed + 1))
      continue
    fi
    out="$RUN_DIR/prune.${TARGET_ID[t]}.out" err="$RUN_DIR/prune.${TARGET_ID[t]}.err"
    now_ms
    started=$REPLY
    restic_locked_retry "$out" "$err" restic_exec "${TARGET_KIND[t]}" "${TARGET_INDEX[t]}" 0 prune
    rc=$REPLY
    now_ms
    ms=$((REPLY - started))
    if ((rc == 0)); then
      emit repo_pruned repo "s:${TARGET_ID[t]}" ok b:true duration_ms "n:$ms" message s: code z:
    else
      restic_code_field "$rc" "$err"
      code=$REPLY
      restic_error_text "$err" "$t"
      emit repo_pruned repo "s:${TARGET_ID[t]}" ok b:false duration_ms "n:$ms" \
        message "s:restic prune failed (exit $rc): ${REPLY:-no output}" code "$code"
      failed=$((failed + 1))
    fi
  done
  finish "$count repositories pruned ($failed failed)"
}

# --- status ---------------------------------------------------------------------------------------

# cmd_status: read-only (--no-lock) snapshot lists, one `restic snapshots` per repository of the fleet.
# The controller assigns each shared repository to one host (read records): that host reads it whole,
# every host's snapshots of the jobs that use it, and the controller splits the list per host and job.
# The other hosts only report each repository's identity. A repository this host could not identify
# is read here for this host and job alone, as before: restic's error then says why. restic's JSON goes
# to the controller as is; it computes ages.
cmd_status() {
  local t id out err rc json failed=0 count=0 started ms name code
  local -a args=()
  local -A read_url=()
  gather_facts
  emit_agent_start
  if ! restic_usable; then
    check_restic
    fail preflight "restic is not usable: ${RESTIC_PROBLEM:-too old}"
  fi
  if [[ -n $PLAN_ENV_FILE ]]; then
    check_env_file
    if ((${#CHECK_FAILED[@]} > 0)); then fail preflight "the restic_env_file is not usable"; fi
  fi
  watch_controller
  list_targets
  emit_repo_identities
  for t in "${!TARGET_ID[@]}"; do
    id=${TARGET_ID[t]}
    if [[ -n ${READ_JOBS[$id]-} ]]; then
      # Once per URL, whatever entries name it here.
      if [[ -n ${read_url[${TARGET_URL[t]}]-} ]]; then continue; fi
      read_url[${TARGET_URL[t]}]=1
      args=(snapshots --json --no-lock)
      split_words "${READ_JOBS[$id]}"
      for name in "${WORDS[@]}"; do args+=(--tag "job:$name"); done
    elif [[ -z ${TARGET_REPO_ID[t]-} ]]; then
      args=(snapshots --json --no-lock --host "$PLAN_HOST" --tag "job:${JOB_NAME[${TARGET_JOB[t]}]}")
    else
      continue
    fi
    count=$((count + 1))
    out="$RUN_DIR/status.$id.out" err="$RUN_DIR/status.$id.err"
    now_ms
    started=$REPLY
    run_restic_bg "$out" "$err" restic_exec "${TARGET_KIND[t]}" "${TARGET_INDEX[t]}" 0 "${args[@]}"
    rc=$REPLY
    now_ms
    ms=$((REPLY - started))
    json=""
    if [[ -f $out ]]; then IFS= read -r json <"$out" || true; fi
    if ((rc == 0)) && [[ $json == '['*']' ]]; then
      emit repo_snapshots repo "s:$id" snapshots "j:$json" duration_ms "n:$ms"
    else
      restic_code_field "$rc" "$err"
      code=$REPLY
      restic_error_text "$err" "$t"
      emit repo_snapshots_failed repo "s:$id" duration_ms "n:$ms" \
        message "s:cannot read the repository (exit $rc): ${REPLY:-no output}" code "$code"
      failed=$((failed + 1))
    fi
  done
  finish "$count repositories read ($failed could not be read)"
}

# --- verify (and backup --verify-sample) ----------------------------------------------------------

RESTORE_DIR=""                  # the restore drill's temporary directory while it exists (cleanup_all removes it)
declare -a SAMPLE_PATHS=()      # the sampler: the paths it holds, then (sample_finish) the sample

# cmd_verify: phase 1 of verify: read each repository's id (the controller picks one host per
# repository for `restic check`), then the restore drill of every job (restore_drill). In phase 2
# (maintain) only `restic check` of the repositories the check records name. A dry run reads the ids only.
cmd_verify() {
  local i
  repository_preflight read
  if [[ $PLAN_MAINTAIN == true ]]; then check_repositories; fi
  if [[ $PLAN_DRY_RUN == true ]] || ((PLAN_RESTORE_SAMPLE == 0)); then
    finish "${#TARGET_ID[@]} repositories opened; no restore drill"
  fi
  for i in "${!JOB_NAME[@]}"; do restore_drill "$i"; done
  finish "restore drill of ${#JOB_NAME[@]} job(s) done"
}

# check_repositories: phase 2, `restic check --read-data-subset` of each target a check record names,
# once per repository URL, and only if the repository there still has the id the controller grouped it by.
check_repositories() {
  local t out err rc failed=0 count=0 started ms errors
  local -a json=()
  local -A checked=()
  if restic_check_json; then json=(--json); fi
  for t in "${!TARGET_ID[@]}"; do
    if [[ -z ${CHECK_REPO_ID[${TARGET_ID[t]}]-} || -n ${checked[${TARGET_URL[t]}]-} ]]; then continue; fi
    checked[${TARGET_URL[t]}]=1
    count=$((count + 1))
    if [[ ${TARGET_REPO_ID[t]-} != "${CHECK_REPO_ID[${TARGET_ID[t]}]}" ]]; then
      emit repo_checked repo "s:${TARGET_ID[t]}" ok b:false duration_ms n:0 subset "s:$PLAN_SUBSET" \
        message "s:not checked: the repository here is not the one the controller chose (its id is ${TARGET_REPO_ID[t]:-unreadable})" \
        errors z: broken_packs "j:[]"
      failed=$((failed + 1))
      continue
    fi
    out="$RUN_DIR/check.${TARGET_ID[t]}.out" err="$RUN_DIR/check.${TARGET_ID[t]}.err"
    now_ms
    started=$REPLY
    restic_locked_retry "$out" "$err" restic_exec "${TARGET_KIND[t]}" "${TARGET_INDEX[t]}" 0 \
      check "${json[@]}" --read-data-subset "$PLAN_SUBSET"
    rc=$REPLY
    now_ms
    ms=$((REPLY - started))
    check_summary "$out"
    errors=$REPLY
    if ((rc == 0)); then
      emit repo_checked repo "s:${TARGET_ID[t]}" ok b:true duration_ms "n:$ms" subset "s:$PLAN_SUBSET" message s: \
        errors "$errors" broken_packs "j:$PACKS_JSON"
    else
      error_tail "$err" "${TARGET_URL[t]}" "${TARGET_LABEL[t]}"
      emit repo_checked repo "s:${TARGET_ID[t]}" ok b:false duration_ms "n:$ms" subset "s:$PLAN_SUBSET" \
        message "s:restic check failed (exit $rc): ${REPLY:-no output}" errors "$errors" broken_packs "j:$PACKS_JSON"
      failed=$((failed + 1))
    fi
  done
  finish "$count repositories checked ($failed failed)"
}

# error_tail ERR_FILE [URL LABEL]...: REPLY = restic's reason from its stderr: the first two lines that
# name a damage (0.14: "Pack ID does not match…"; 0.18: "pack … contains N errors: …"), then its last
# line (the final "Fatal:"); the last 3 lines when none does. Each line is masked, then cut to 160
# characters (so the last one always fits), joined by " | ", and the whole cut.
error_tail() {
  local text="" line i
  local -a lines=() named=()
  if [[ -f $1 ]]; then text=$(<"$1"); fi
  restic_plain_stderr "$text"
  split_lines "$REPLY"
  for line in "${LINES[@]}"; do
    line=${line#"${line%%[![:space:]]*}"}
    if [[ -z $line ]]; then continue; fi
    sanitize_restic_text "$line" "${@:2}"
    line=$REPLY
    if ((${#line} > 160)); then line="${line:0:160}..."; fi
    lines+=("$line")
  done
  for ((i = 0; i + 1 < ${#lines[@]} && ${#named[@]} < 2; i++)); do
    line=${lines[i]}
    if [[ $line == *[Ee]rror* || $line == *"does not match"* || $line == *damaged* ]]; then named+=("$line"); fi
  done
  if ((${#named[@]} > 0)); then
    lines=("${named[@]}" "${lines[-1]}")
  elif ((${#lines[@]} > 3)); then
    lines=("${lines[@]: -3}")
  fi
  join_by " | " "${lines[@]}"
  cut_line "$REPLY"
}

# sample_candidate LINE SOURCE: REPLY = the path of a `restic ls --json` line when it is a regular file
# below SOURCE whose path restic wrote without any JSON escape (so it is the path as it is) and without
# a glob character (restic restore --include takes patterns); "" otherwise.
sample_candidate() {
  local line=$1 source=$2 re='"path":"([^"\\]*)"' path
  REPLY=""
  if [[ $line != *'"type":"file"'* || $line != *'"struct_type":"node"'* ]]; then return 0; fi
  if [[ ! $line =~ $re ]]; then return 0; fi
  path=${BASH_REMATCH[1]}
  if [[ $path == *[*?[]* || $path != /* ]]; then return 0; fi
  if [[ $source != / ]] && ! path_is_under "$path" "$source"; then return 0; fi
  REPLY=$path
}

# The restore drill's sampler: it sees the snapshot's candidates one by one (sample_offer) and holds at
# most 2N of them, so a listing of millions of files costs no more memory than one of ten.
SAMPLE_N=0 SAMPLE_DAY=0 SAMPLE_STEP=1 SAMPLE_SEEN=0
declare -a SAMPLE_INDEX=()      # the position of each held path in the listing

# sample_reset N DAY: a new sample of N paths, its start moved by DAY (the UTC day number).
sample_reset() {
  SAMPLE_N=$1 SAMPLE_DAY=$2 SAMPLE_STEP=1 SAMPLE_SEEN=0
  SAMPLE_PATHS=() SAMPLE_INDEX=()
}

# sample_offer PATH: the next candidate. Held when its position plus the day is a multiple of
# SAMPLE_STEP; at 2N held, the step doubles and every other one is let go, so the held paths stay
# evenly spaced through everything seen so far, deterministically. SAMPLE_SEEN counts the candidates.
sample_offer() {
  local k
  local -a paths=() index=()
  if (((SAMPLE_SEEN + SAMPLE_DAY) % SAMPLE_STEP == 0)); then
    SAMPLE_PATHS+=("$1") SAMPLE_INDEX+=("$SAMPLE_SEEN")
    if ((${#SAMPLE_PATHS[@]} >= 2 * SAMPLE_N)); then
      SAMPLE_STEP=$((SAMPLE_STEP * 2))
      for k in "${!SAMPLE_PATHS[@]}"; do
        if (((SAMPLE_INDEX[k] + SAMPLE_DAY) % SAMPLE_STEP == 0)); then
          paths+=("${SAMPLE_PATHS[k]}") index+=("${SAMPLE_INDEX[k]}")
        fi
      done
      SAMPLE_PATHS=("${paths[@]}") SAMPLE_INDEX=("${index[@]}")
    fi
  fi
  SAMPLE_SEEN=$((SAMPLE_SEEN + 1))
}

# sample_finish: SAMPLE_PATHS = N of the held paths, evenly spaced among them (all when N or fewer).
sample_finish() {
  local count=${#SAMPLE_PATHS[@]} k
  local -a held=("${SAMPLE_PATHS[@]}")
  if ((count <= SAMPLE_N)); then return 0; fi
  SAMPLE_PATHS=()
  for ((k = 0; k < SAMPLE_N; k++)); do SAMPLE_PATHS+=("${held[k * count / SAMPLE_N]}"); done
}

# file_state PATH: REPLY = "SIZE MTIME" (mtime to the nanosecond), or "" when PATH is not a regular file.
file_state() {
  REPLY=""
  if [[ ! -f $1 || -L $1 ]]; then return 0; fi
  capture "${TOOL[stat]}" -c '%s %.9Y' -- "$1"
  if ((CAP_RC == 0)); then REPLY=$CAP_OUT; fi
}

# file_digest PATH: REPLY = the sha256 of PATH's bytes, or "" when it cannot be read.
file_digest() {
  REPLY=""
  capture "${TOOL[sha256sum]}" -b -- "$1"
  if ((CAP_RC == 0)); then REPLY=${CAP_OUT%% *}; fi
}

# restore_drill JOB: verify's drill of JOB: its latest snapshot in its first repository, compared with
# the live files, which have the snapshot's paths for every category (an LV snapshot is backed up at
# its origin's mount point, or chrooted into for /).
restore_drill() {
  local r
  for r in "${!REPO_ID[@]}"; do
    if ((REPO_JOB[r] == $1)); then
      sample_snapshot "$1" "$r" latest "" live
      return 0
    fi
  done
}

# sample_snapshot JOB REPO_INDEX SNAPSHOT ROOT MODE: restore PLAN_RESTORE_SAMPLE sampled files of SNAPSHOT
# (a restic snapshot id, or `latest`: this host's newest of the job) into RESTORE_DIR (below the run
# directory; cleanup_all removes it however the run ends) and compare each with its source, ROOT followed
# by its path. MODE live: the source is live, so only a file whose size and mtime are those of the
# snapshot is compared byte for byte (the others changed since the backup: information). MODE frozen:
# the source is what restic read (a still mounted LVM snapshot), so every file is compared byte for byte.
# Emits restore_sample.
sample_snapshot() {
  local i=$1 r=$2 root=$4 mode=$5 fifo err rc line snapshot="" started ms day p source restored state
  local matched=0 changed=0 mismatched=0 unrestored=0 re='"short_id":"([0-9a-f]+)"'
  local -a args=() which=("$3") mismatch_list=() changed_list=() missing_list=()
  local job=${JOB_NAME[i]}
  if [[ $3 == latest ]]; then which=(--host "$PLAN_HOST" --tag "job:$job" latest); fi
  now_ms
  started=$REPLY
  capture "${TOOL[date]}" -u +%s
  day=$((10#${CAP_OUT:-0} / 86400))
  sample_reset "$PLAN_RESTORE_SAMPLE" "$day"
  # restic's listing is read as it comes, through a FIFO in the run directory: a snapshot of millions
  # of files never lands in a file (the run directory is often on a tmpfs).
  fifo="$RUN_DIR/ls.${REPO_ID[r]}.fifo" err="$RUN_DIR/ls.${REPO_ID[r]}.err"
  run "${TOOL[mkfifo]}" -m 0600 -- "$fifo" || {
    restore_failed "$i" "$r" "$started" "" "cannot create a FIFO in the run directory: $CAP_ERR"
    return 0
  }
  CHILD_CMD=(restic_exec repo "$r" 0 ls --json --no-lock "${which[@]}")
  "${CHILD_CMD[@]}" </dev/null >"$fifo" 2>"$err" 3>&- &
  CHILD_PID=$!
  while IFS= read -r line; do
    if [[ -z $snapshot && $line == *'"struct_type":"snapshot"'* && $line =~ $re ]]; then
      snapshot=${BASH_REMATCH[1]}
      continue
    fi
    sample_candidate "$line" "${JOB_SOURCE[i]}"
    if [[ -n $REPLY ]]; then sample_offer "$REPLY"; fi
  done <"$fifo"
  rc=0
  wait "$CHILD_PID" || rc=$?
  CHILD_PID=""
  "${TOOL[rm]}" -f -- "$fifo" </dev/null 2>/dev/null || true
  if ((rc != 0)); then
    error_line "$err" "${REPO_URL[r]}" "${REPO_LABEL[r]}"
    restore_failed "$i" "$r" "$started" "" "cannot list the snapshot (exit $rc): ${REPLY:-no output}"
    return 0
  fi
  if [[ -z $snapshot ]]; then
    restore_failed "$i" "$r" "$started" "" "no snapshot of job $job on this host in ${REPO_LABEL[r]}"
    return 0
  fi
  sample_finish
  if ((${#SAMPLE_PATHS[@]} > 0)); then
    RESTORE_DIR="$RUN_DIR/restore.$i"
    run "${TOOL[mkdir]}" -m 0700 -- "$RESTORE_DIR" || {
      RESTORE_DIR=""
      restore_failed "$i" "$r" "$started" "$snapshot" "cannot create the restore directory: $CAP_ERR"
      return 0
    }
    args=(restore "$snapshot" --no-lock --target "$RESTORE_DIR")
    for p in "${SAMPLE_PATHS[@]}"; do args+=(--include "$p"); done
    err="$RUN_DIR/restore.${REPO_ID[r]}.err"
    run_restic_bg /dev/null "$err" restic_exec repo "$r" 0 "${args[@]}"
    rc=$REPLY
    if ((rc != 0)); then
      error_line "$err" "${REPO_URL[r]}" "${REPO_LABEL[r]}"
      remove_restore_dir
      restore_failed "$i" "$r" "$started" "$snapshot" "restic restore failed (exit $rc): ${REPLY:-no output}"
      return 0
    fi
    for p in "${SAMPLE_PATHS[@]}"; do
      restored=$RESTORE_DIR$p source=$root$p
      file_state "$restored"
      if [[ -z $REPLY ]]; then
        unrestored=$((unrestored + 1)) missing_list+=("$p")
        continue
      fi
      state=$REPLY
      if [[ $mode == live ]]; then
        file_state "$source"
        if [[ $REPLY != "$state" ]]; then
          changed=$((changed + 1)) changed_list+=("$p")
          continue
        fi
      fi
      file_digest "$restored"
      state=$REPLY
      file_digest "$source"
      if [[ -n $state && $REPLY == "$state" ]]; then
        matched=$((matched + 1))
      else
        mismatched=$((mismatched + 1)) mismatch_list+=("$p")
      fi
    done
    remove_restore_dir
  fi
  now_ms
  ms=$((REPLY - started))
  json_array "${mismatch_list[@]}"
  local mismatches=$REPLY
  json_array "${changed_list[@]}"
  local changes=$REPLY
  json_array "${missing_list[@]}"
  local missing_json=$REPLY
  json_array "${SAMPLE_PATHS[@]}"
  emit restore_sample job "s:$job" repo "s:${REPO_ID[r]}" snapshot "s:$snapshot" sampled "n:${#SAMPLE_PATHS[@]}" \
    candidates "n:$SAMPLE_SEEN" matched "n:$matched" changed "n:$changed" mismatched "n:$mismatched" \
    missing "n:$unrestored" mismatch_paths "j:$mismatches" changed_paths "j:$changes" missing_paths "j:$missing_json" \
    sampled_paths "j:$REPLY" duration_ms "n:$ms" message s:
}

# restore_failed JOB REPO_INDEX STARTED_MS SNAPSHOT MESSAGE: the drill of JOB could not run to its end.
restore_failed() {
  local ms
  now_ms
  ms=$((REPLY - $3))
  emit restore_sample job "s:${JOB_NAME[$1]}" repo "s:${REPO_ID[$2]}" snapshot "s:$4" sampled n:0 candidates n:0 \
    matched n:0 changed n:0 mismatched n:0 missing n:0 mismatch_paths "j:[]" changed_paths "j:[]" \
    missing_paths "j:[]" sampled_paths "j:[]" duration_ms "n:$ms" message "s:$5"
}

# remove_restore_dir: the undo of the drill's mkdir (cleanup_all calls it too, for a run cut short).
remove_restore_dir() {
  if [[ -n $RESTORE_DIR ]]; then
    "${TOOL[rm]:-rm}" -rf -- "$RESTORE_DIR" </dev/null 2>/dev/null || true
    RESTORE_DIR=""
  fi
}

# json_array VALUE...: REPLY = the values as a JSON array of strings.
json_array() {
  local out="" sep="" v
  for v in "$@"; do
    json_string "$v"
    out+="$sep$REPLY"
    sep=","
  done
  REPLY="[$out]"
}

# --- the installed agent: its entry, and the host's repository allow-list -------------------------

# run_installed installed RUN_ID HOST: the entry of the installed agent, `sudo -n INSTALLED_AGENT
# installed RUN_ID HOST`, the only form its sudo rule allows. It does for itself what the bootstrap
# (src/agent/deliver.ts) does for an uploaded agent, with the bootstrap's exit codes: a private run
# directory below root's /run/rlvm-fleet, the ready line, stdin skipped up to the start marker (a
# password sudo did not read), then this script on that directory, removed however it ends. Its
# arguments are names only; nothing the login user passes becomes a path of its own choosing.
run_installed() {
  local run_id=${2-} host=${3-} dir line="" status=0
  if (($# != 3)) || [[ ! $run_id =~ $NAME_RE || ! $host =~ $NAME_RE ]] ||
    [[ $run_id == . || $run_id == .. || $host == . || $host == .. ]]; then
    echo "usage: rlvm-agent.sh installed RUN_ID HOST (plan on stdin)" >&2
    exit 2
  fi
  if ((EUID != 0)); then
    echo "rlvm-fleet: the installed agent runs as root, through its sudo rule" >&2
    exit 2
  fi
  export PATH=$RESTIC_PATH
  trap 'exit 130' INT
  trap 'exit 143' TERM HUP
  if [[ ! -d $ROOT_LOCK_PARENT ]]; then mkdir -p -- "$ROOT_LOCK_PARENT"; fi
  if [[ -L $ROOT_LOCK_PARENT || ! -O $ROOT_LOCK_PARENT ]]; then
    echo "rlvm-fleet: $ROOT_LOCK_PARENT is not a directory owned by root" >&2
    exit 97
  fi
  chmod 0755 -- "$ROOT_LOCK_PARENT"
  dir=$ROOT_LOCK_PARENT/$run_id.$host
  mkdir -m 0700 -- "$dir"
  # shellcheck disable=SC2064 # dir is fixed now, and a name without quotes or spaces
  trap "rm -rf -- '$dir'" EXIT
  printf '%s\n' "$host" >"$dir/host"
  printf '%s %s\n' "$READY_LINE" "$run_id"
  while IFS= read -r line; do
    if [[ $line == "RLVM-FLEET-AGENT $run_id" ]]; then break; fi
  done
  if [[ $line != "RLVM-FLEET-AGENT $run_id" ]]; then
    echo "rlvm-fleet: stdin ended before the plan" >&2
    exit 99
  fi
  "$BASH" "$0" "$dir" || status=$?
  exit "$status"
}

# root_file_problem PATH KIND: REPLY = why PATH (a regular file or a directory, KIND f or d) cannot be
# trusted as root's own: not root's, a symlink, or writable by group or others; "" when it can.
root_file_problem() {
  local path=$1 kind=$2
  REPLY=""
  if [[ -L $path ]]; then
    REPLY="$path is a symlink"
  elif [[ $kind == f && ! -f $path ]] || [[ $kind == d && ! -d $path ]]; then
    REPLY="$path is not a $([[ $kind == f ]] && echo regular file || echo directory)"
  elif ! have_tool stat; then
    REPLY="cannot check $path: stat (coreutils) not found"
  else
    capture "${TOOL[stat]}" -c '%u %a' -- "$path"
    if ((CAP_RC != 0)) || [[ ! $CAP_OUT =~ ^([0-9]+)\ ([0-7]+)$ ]]; then
      REPLY="cannot stat $path"
    elif ((BASH_REMATCH[1] != 0)); then
      REPLY="$path is owned by uid ${BASH_REMATCH[1]}, not root"
    elif (((8#${BASH_REMATCH[2]} & 8#022) != 0)); then
      printf -v REPLY '%s has mode %04o: group or others may write to it' "$path" "$((8#${BASH_REMATCH[2]}))"
    fi
  fi
}

# repository_hash REPOSITORY: REPLY = the sha256 of the repository string. The string reaches
# sha256sum on its stdin, never in an argv.
repository_hash() {
  local out
  out=$(printf '%s' "$1" | "${TOOL[sha256sum]}")
  REPLY=${out%% *}
}

# check_allow_list: the installed agent lets restic open only the repositories in the host's
# allow-list, ALLOW_LIST_DIR/HOST.repositories, written by rlvm-fleet install-agent. The plan names the
# repositories; whoever can run the installed agent (a stolen controller key, the login user) could
# name one of their own (the host's data out), or an rclone remote whose options start a program as
# root. The list is the host's own word on where its data may go, so without one the installed agent
# runs nothing. Its lines are "SHA256 LABEL", the sha256 of a repository string and its masked label
# (no credential is stored on the host); a line "any" allows every repository (--any-repository).
# The uploaded agent keeps to no list: whoever uploads it decides what runs as root anyway.
check_allow_list() {
  local list="$ALLOW_LIST_DIR/$PLAN_HOST.repositories" i hash
  local -A allowed=()
  if [[ $0 != "$INSTALLED_AGENT" ]]; then return 0; fi
  if [[ ! -e $list && ! -L $list ]]; then
    fail repository_not_allowed "there is no repository allow-list for $PLAN_HOST ($list), so the installed agent runs nothing"
  fi
  root_file_problem "$ALLOW_LIST_DIR" d
  if [[ -z $REPLY ]]; then root_file_problem "$list" f; fi
  if [[ -n $REPLY ]]; then
    fail repository_not_allowed "the repository allow-list is not safe to trust: $REPLY"
  fi
  if ! have_tool sha256sum; then
    fail repository_not_allowed "cannot check the repository allow-list $list: sha256sum (coreutils) not found"
  fi
  while IFS=' ' read -r hash _ || [[ -n $hash ]]; do
    if [[ $hash == any ]]; then return 0; fi
    if [[ $hash =~ $SHA256_RE ]]; then allowed[$hash]=1; fi
  done <"$list"
  list_targets
  for i in "${!TARGET_URL[@]}"; do
    repository_hash "${TARGET_URL[i]}"
    if [[ -z ${allowed[$REPLY]-} ]]; then
      if [[ ${TARGET_KIND[i]} == maintained ]]; then REPLY="maintained here"; else REPLY="job ${JOB_NAME[TARGET_JOB[i]]}"; fi
      fail repository_not_allowed "the repository ${TARGET_LABEL[i]} ($REPLY) is not in this host's allow-list $list"
    fi
  done
}

# warn_other_sudo_rules: in check, through the installed agent. Its sudo rule is least privilege only
# while the login user has no other way to root, so every other rule `sudo -l -U USER` lists for that
# user (root may ask) is reported as the warning sudo_broad, which leaves the host ok: it is advice for
# a rollout that is not finished (the broad rule install-agent went through is still there).
warn_other_sudo_rules() {
  local user=${SUDO_USER-} line
  local -a rules=()
  if [[ $0 != "$INSTALLED_AGENT" || ! $user =~ $SUDO_USER_RE ]]; then return 0; fi
  find_tool sudo
  if ! have_tool sudo; then return 0; fi
  capture "${TOOL[sudo]}" -n -l -U "$user"
  if ((CAP_RC != 0)); then return 0; fi
  while IFS= read -r line; do
    if [[ ! $line =~ ^[[:space:]]+\( ]]; then continue; fi
    line=${line#"${line%%[![:space:]]*}"}
    if [[ $line == *" $INSTALLED_AGENT installed *" ]]; then continue; fi
    rules+=("$line")
  done <<<"$CAP_OUT"
  if ((${#rules[@]} > 0)); then
    emit warning code s:sudo_broad message "s:$user may also run through sudo: ${rules[*]}; the installed agent's rule is least privilege only once the other rules are removed (visudo)"
  fi
}

# --- install (rlvm-fleet install-agent) -----------------------------------------------------------

# Files written beside their targets (under a dot name that sudo and the agent skip), removed by
# cleanup_all unless they were renamed over their target.
declare -a INSTALL_TEMPS=()
INSTALL_OK=1

# ensure_root_dirs DIR...: each DIR, outermost first, is a directory of root's that group and others
# cannot write to; a missing one is made, 0755 (not in a dry run). REPLY = the first problem, or "".
ensure_root_dirs() {
  local dir
  for dir in "$@"; do
    if [[ ! -e $dir && ! -L $dir ]]; then
      if [[ $PLAN_DRY_RUN == true ]]; then continue; fi
      if ! "${TOOL[mkdir]}" -m 0755 -- "$dir" </dev/null 2>/dev/null; then
        REPLY="cannot create $dir"
        return 0
      fi
    fi
    root_file_problem "$dir" d
    if [[ -n $REPLY ]]; then return 0; fi
  done
  REPLY=""
}

# new_beside TARGET: REPLY = a new empty file (0600) in TARGET's directory, named .TARGET.XXXXXX, so a
# rename puts it in place at once; in a dry run, a file in the run directory instead.
new_beside() {
  local dir=${1%/*} base=${1##*/}
  if [[ $PLAN_DRY_RUN == true ]]; then dir=$RUN_DIR; fi
  capture "${TOOL[mktemp]}" -- "$dir/.$base.XXXXXX"
  if ((CAP_RC != 0)) || [[ $CAP_OUT != "$dir/.$base."* ]]; then
    first_meaningful_line "$CAP_ERR"
    REPLY="cannot create a file in $dir: $REPLY"
    return 1
  fi
  INSTALL_TEMPS+=("$CAP_OUT")
  REPLY=$CAP_OUT
}

# put_in_place TEMP TARGET MODE: TEMP gets MODE and replaces TARGET in one rename (a dry run keeps it).
put_in_place() {
  if ! "${TOOL[chmod]}" "$3" -- "$1" </dev/null; then return 1; fi
  if [[ $PLAN_DRY_RUN == true ]]; then return 0; fi
  "${TOOL[mv]}" -f -- "$1" "$2" </dev/null
}

# install_step NAME OK DETAIL HINT: one step's check event; a failed step stops the install.
install_step() {
  check "install:$1" "$2" "$3" "$4"
  if [[ $2 != true ]]; then INSTALL_OK=0; fi
}

# install_agent_file: this agent, the uploaded copy the bootstrap checked, as INSTALLED_AGENT (root's,
# 0755). Other versions in INSTALL_DIR are removed: the new sudo rule names this one only.
install_agent_file() {
  local tmp sha would="" old
  ensure_root_dirs / /usr /usr/local /usr/local/libexec "$INSTALL_DIR"
  if [[ -n $REPLY ]]; then
    install_step agent false "$REPLY" "make each directory of $INSTALL_DIR root's and not writable by group or others"
    return 0
  fi
  capture "${TOOL[sha256sum]}" -- "$0"
  sha=${CAP_OUT%% *}
  if ! new_beside "$INSTALLED_AGENT"; then
    install_step agent false "$REPLY" "check the file system of $INSTALL_DIR (full, read-only?)"
    return 0
  fi
  tmp=$REPLY
  if ! "${TOOL[cp]}" -- "$0" "$tmp" </dev/null || ! put_in_place "$tmp" "$INSTALLED_AGENT" 0755; then
    install_step agent false "cannot write $INSTALLED_AGENT" "check the file system of $INSTALL_DIR (full, read-only?)"
    return 0
  fi
  if [[ $PLAN_DRY_RUN == true ]]; then
    would="would install "
  else
    for old in "$INSTALL_DIR"/rlvm-agent-*.sh; do
      if [[ $old != "$INSTALLED_AGENT" && -f $old && ! -L $old ]]; then "${TOOL[rm]}" -f -- "$old" </dev/null; fi
    done
  fi
  install_step agent true "$would$INSTALLED_AGENT (sha256 $sha)" ""
}

# install_allow_list: the host's allow-list (see check_allow_list) from the plan's allow_repository
# records, or "any" with allow_any_repository. Root's, 0644: it holds sha256 values and masked labels.
install_allow_list() {
  local list="$ALLOW_LIST_DIR/$PLAN_HOST.repositories" tmp i would="" what
  if [[ $PLAN_DRY_RUN == true ]]; then would="would write "; fi
  ensure_root_dirs /etc "$ALLOW_LIST_DIR"
  if [[ -n $REPLY ]]; then
    install_step allow_list false "$REPLY" "make $ALLOW_LIST_DIR root's and not writable by group or others"
    return 0
  fi
  if ! new_beside "$list"; then
    install_step allow_list false "$REPLY" "check the file system of $ALLOW_LIST_DIR"
    return 0
  fi
  tmp=$REPLY
  {
    printf '%s\n' "# Written by rlvm-fleet install-agent: the repositories this host's runs may use." \
      "# Each line: the sha256 of the repository string, then its label (credentials masked)."
    if ((INSTALL_ANY_REPOSITORY)); then echo any; fi
    for i in "${!ALLOW_HASH[@]}"; do printf '%s %s\n' "${ALLOW_HASH[i]}" "${ALLOW_LABEL[i]}"; done
  } >"$tmp"
  if ! put_in_place "$tmp" "$list" 0644; then
    install_step allow_list false "cannot write $list" "check the file system of $ALLOW_LIST_DIR"
    return 0
  fi
  what="${#ALLOW_HASH[@]} repositories"
  if ((INSTALL_ANY_REPOSITORY)); then what="any repository (--any-repository)"; fi
  install_step allow_list true "$would$list: $what" ""
}

# install_sudoers: the drop-in that lets the login user run INSTALLED_AGENT's entry as root and
# nothing else, checked with visudo -cf before it is renamed into place.
install_sudoers() {
  local file="$SUDOERS_DIR/rlvm-fleet-$INSTALL_USER" tag="" rule tmp would=""
  if [[ $INSTALL_SUDO == nopasswd ]]; then tag="NOPASSWD: "; fi
  rule="$INSTALL_USER ALL=(root) $tag$INSTALLED_AGENT installed *"
  root_file_problem "$SUDOERS_DIR" d
  if [[ -n $REPLY ]]; then
    install_step sudoers false "$REPLY" "sudo reads drop-ins from $SUDOERS_DIR: it must be root's"
    return 0
  fi
  find_tool visudo
  if ! have_tool visudo; then
    install_step sudoers false "visudo not found" "install sudo"
    return 0
  fi
  if ! new_beside "$file"; then
    install_step sudoers false "$REPLY" "check the file system of $SUDOERS_DIR"
    return 0
  fi
  tmp=$REPLY
  printf '%s\n' "# Written by rlvm-fleet install-agent: $INSTALL_USER may run the installed agent as root, and nothing else." \
    "$rule" >"$tmp"
  capture "${TOOL[visudo]}" -c -q -f "$tmp"
  if ((CAP_RC != 0)); then
    first_meaningful_line "$CAP_ERR${CAP_ERR:+$'\n'}$CAP_OUT"
    install_step sudoers false "visudo -c refused the rule '$rule': $REPLY" "check the host's sudo version and its sudoers"
    return 0
  fi
  if ! put_in_place "$tmp" "$file" 0440; then
    install_step sudoers false "cannot write $file" "check the file system of $SUDOERS_DIR"
    return 0
  fi
  if [[ $PLAN_DRY_RUN == true ]]; then would="would write "; fi
  install_step sudoers true "$would$file: $rule (visudo -c: ok)" ""
}

# cmd_install: the agent, the repository allow-list and the sudo rule, in that order, so the rule
# exists only once what it allows is in place. Only an uploaded agent installs (the bootstrap checked
# its sha256): the installed one refuses, so its own sudo rule can never widen itself or the list.
cmd_install() {
  gather_facts
  emit_agent_start
  if [[ $0 != "$RUN_DIR/rlvm-agent.sh" ]]; then
    fail agent_unsupported "the installed agent does not install; rlvm-fleet install-agent uploads the one it installs"
  fi
  if ((EUID != 0)); then
    fail install_failed "installing needs root: the agent runs as $FACT_USER"
  fi
  install_agent_file
  if ((INSTALL_OK)); then install_allow_list; fi
  if ((INSTALL_OK)); then install_sudoers; fi
  if ((!INSTALL_OK)); then
    fail install_failed "the install stopped at ${CHECK_FAILED[*]}; nothing after it was changed"
  fi
  if [[ $PLAN_DRY_RUN == true ]]; then finish "dry run: nothing was changed"; fi
  finish "installed $INSTALLED_AGENT for $INSTALL_USER"
}

# --- main -----------------------------------------------------------------------------------------

main() {
  # The installed agent's entry (its sudo rule allows only this form): it makes the run directory and
  # runs this script again on it, below.
  if [[ ${1-} == installed ]]; then run_installed "$@"; fi
  # The event stream moves to fd 3; fd 1 becomes stderr, so a tool that prints by mistake can never
  # put a non-event line on the controller's stream.
  exec 3>&1 1>&2
  trap 'on_err "$?" "$LINENO"' ERR
  trap on_exit EXIT
  trap 'on_signal INT' INT
  trap 'on_signal TERM' TERM
  trap 'on_signal HUP' HUP
  if ((BASH_VERSINFO[0] < 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] < 4))); then
    fail agent_unsupported "bash $BASH_VERSION is too old: the agent needs bash 4.4 or newer"
  fi
  # A controller that went away must not kill us mid-cleanup with SIGPIPE: writes just fail.
  trap '' PIPE
  if (($# == 2)) && [[ $2 == --in-private-namespace ]]; then
    IN_PRIVATE_NS=1
  elif (($# != 1)); then
    fail agent_protocol "usage: rlvm-agent.sh RUN_DIR, or rlvm-agent.sh installed RUN_ID HOST (plan on stdin)"
  fi
  strip_trailing_slashes "$1"
  RUN_DIR=$REPLY
  if [[ $RUN_DIR != /* || ! -d $RUN_DIR || ! -O $RUN_DIR ]]; then
    fail agent_protocol "RUN_DIR must be an absolute path to a directory owned by the running user"
  fi
  if ((IN_PRIVATE_NS)); then read_plan <"$RUN_DIR/plan"; else read_plan; fi
  # Only backup mounts anything: the other commands spare each host the namespace and a second bash.
  if ((EUID == 0 && !IN_PRIVATE_NS)) && [[ $PLAN_COMMAND == backup ]]; then enter_private_namespace; fi
  init_tools
  log "agent $AGENT_VERSION: $PLAN_COMMAND for $PLAN_HOST, run $PLAN_RUN_ID"
  # install writes the allow-list; every other command keeps to it.
  if [[ $PLAN_COMMAND != install ]]; then check_allow_list; fi
  case $PLAN_COMMAND in
    ping) cmd_ping ;;
    preflight) cmd_preflight ;;
    backup) cmd_backup ;;
    prune) cmd_prune ;;
    status) cmd_status ;;
    verify) cmd_verify ;;
    install) cmd_install ;;
    *) fail agent_unsupported "agent $AGENT_VERSION does not implement '$PLAN_COMMAND' yet" ;;
  esac
}

main "$@"
}
