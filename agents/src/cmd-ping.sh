# --- ping -----------------------------------------------------------------------------------------

cmd_ping() {
  gather_facts
  emit_agent_start
  finish pong
}
