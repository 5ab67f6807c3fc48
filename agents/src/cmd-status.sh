# --- status ---------------------------------------------------------------------------------------

# cmd_status: the latest snapshot of this host and job in every repository and copy destination,
# read-only (--no-lock). restic's JSON goes to the controller as is; it computes ages.
cmd_status() {
  local t id job out err rc json failed=0 code
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
    job=${JOB_NAME[${TARGET_JOB[t]}]}
    out="$RUN_DIR/status.$id.out" err="$RUN_DIR/status.$id.err"
    run_restic_bg "$out" "$err" restic_exec "${TARGET_KIND[t]}" "${TARGET_INDEX[t]}" 0 \
      snapshots --json --no-lock --host "$PLAN_HOST" --tag "job:$job"
    rc=$REPLY
    json=""
    if [[ -f $out ]]; then IFS= read -r json <"$out" || true; fi
    if ((rc == 0)) && [[ $json == '['*']' ]]; then
      emit latest job "s:$job" repo "s:$id" snapshots "j:$json"
    else
      restic_code_field "$rc" "$err"
      code=$REPLY
      restic_error_text "$err" "$t"
      emit latest_failed job "s:$job" repo "s:$id" message "s:cannot read the repository (exit $rc): ${REPLY:-no output}" \
        code "$code"
      failed=$((failed + 1))
    fi
  done
  finish "${#TARGET_ID[@]} repositories read ($failed could not be read)"
}
