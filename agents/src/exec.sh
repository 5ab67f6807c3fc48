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
