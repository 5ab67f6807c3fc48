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
