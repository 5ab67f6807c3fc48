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
