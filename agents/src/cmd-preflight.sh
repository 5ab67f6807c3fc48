# --- preflight (check) ----------------------------------------------------------------------------

cmd_preflight() {
  gather_facts
  emit_agent_start
  check_bash
  check_restic
  check_volumes_and_secrets
  check_repos
  probe_lock
  check_leftovers
  check_lock
  if ((${#CHECK_FAILED[@]} == 0)); then
    finish ok "" "all $CHECK_TOTAL checks passed"
  fi
  join_by ", " "${CHECK_FAILED[@]}"
  fail preflight "${#CHECK_FAILED[@]} of $CHECK_TOTAL checks failed: $REPLY"
}
