# --- prune ----------------------------------------------------------------------------------------

# cmd_prune: per repository and copy destination, `restic forget` with that entry's keep values and
# --keep-tag protected, scoped to this host and job; then one `restic prune` per repository after its
# forgets. With dry_run, `forget --dry-run` only: nothing is deleted.
cmd_prune() {
  local t id job out err failed=0 skipped=0 rc k
  local -a args=() keep_names=(last daily weekly monthly yearly)
  local -A pruned=() forgot=()
  gather_facts
  emit_agent_start
  acquire_lock
  sweep_orphans
  check_restic
  check_password_files
  if [[ -n $PLAN_ENV_FILE ]]; then check_env_file; fi
  if ((${#CHECK_FAILED[@]} > 0)); then
    join_by ", " "${CHECK_FAILED[@]}"
    fail preflight "nothing was changed: ${#CHECK_FAILED[@]} check(s) failed: $REPLY"
  fi
  watch_controller
  list_targets
  emit_repo_identities
  for t in "${!TARGET_ID[@]}"; do
    id=${TARGET_ID[t]}
    job=${JOB_NAME[${TARGET_JOB[t]}]}
    if [[ -z ${RETENTION[$id]-} ]]; then
      emit prune_done job "s:$job" repo "s:$id" dry_run "b:$PLAN_DRY_RUN" skipped b:true forget "j:[]"
      skipped=$((skipped + 1))
      continue
    fi
    args=(forget --json --host "$PLAN_HOST" --tag "job:$job" --group-by "host,paths" --keep-tag protected)
    split_words "${RETENTION[$id]}"
    for k in 0 1 2 3 4; do
      if ((10#${WORDS[k]} > 0)); then
        args+=("--keep-${keep_names[k]}" "$((10#${WORDS[k]}))")
      fi
    done
    # A dry run only reads: no lock, so it never waits for (or blocks) another host's prune.
    if [[ $PLAN_DRY_RUN == true ]]; then args+=(--dry-run --no-lock); fi
    out="$RUN_DIR/forget.$id.out" err="$RUN_DIR/forget.$id.err"
    restic_locked_retry "$out" "$err" restic_exec "${TARGET_KIND[t]}" "${TARGET_INDEX[t]}" 0 "${args[@]}"
    rc=$REPLY
    local json=""
    if [[ -f $out ]]; then IFS= read -r json <"$out" || true; fi
    # restic prints nothing at all when no snapshot of this host and job is there (a new host, a new
    # copy destination): nothing to forget is success.
    if ((rc == 0)) && [[ -z $json || $json == null ]]; then json="[]"; fi
    if ((rc == 0)) && [[ $json == '['*']' ]]; then
      emit prune_done job "s:$job" repo "s:$id" dry_run "b:$PLAN_DRY_RUN" skipped b:false forget "j:$json"
      forgot[${TARGET_URL[t]}]+=" $t"
    else
      restic_error_text "$err" "$t"
      emit prune_failed job "s:$job" repo "s:$id" dry_run "b:$PLAN_DRY_RUN" \
        message "s:restic forget failed (exit $rc): ${REPLY:-no output}"
      failed=$((failed + 1))
    fi
  done
  # One prune per repository, after all its forgets (a repository shared by jobs is pruned once).
  if [[ $PLAN_DRY_RUN != true ]]; then
    for t in "${!TARGET_ID[@]}"; do
      if [[ -z ${forgot[${TARGET_URL[t]}]-} || -n ${pruned[${TARGET_URL[t]}]-} ]]; then continue; fi
      pruned[${TARGET_URL[t]}]=1
      out="$RUN_DIR/prune.${TARGET_ID[t]}.out" err="$RUN_DIR/prune.${TARGET_ID[t]}.err"
      restic_locked_retry "$out" "$err" restic_exec "${TARGET_KIND[t]}" "${TARGET_INDEX[t]}" 0 prune
      rc=$REPLY
      if ((rc == 0)); then
        emit repo_pruned repo "s:${TARGET_ID[t]}" ok b:true message s:
      else
        restic_error_text "$err" "$t"
        emit repo_pruned repo "s:${TARGET_ID[t]}" ok b:false message "s:restic prune failed (exit $rc): ${REPLY:-no output}"
        failed=$((failed + 1))
      fi
    done
  fi
  finish "${#TARGET_ID[@]} repositories and copy destinations processed ($failed failed, $skipped without retention)"
}
