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
