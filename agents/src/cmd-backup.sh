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
