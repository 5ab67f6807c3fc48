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
