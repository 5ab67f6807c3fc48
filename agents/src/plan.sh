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
