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
  warn_other_sudo_rules
  # Which checks failed the controller sees in their events; it decides what that makes the host.
  finish "$CHECK_TOTAL checks run, ${#CHECK_FAILED[@]} failed"
}
