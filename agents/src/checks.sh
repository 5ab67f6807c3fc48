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
