# --- main -----------------------------------------------------------------------------------------

main() {
  # The installed agent's entry (its sudo rule allows only this form): it makes the run directory and
  # runs this script again on it, below.
  if [[ ${1-} == installed ]]; then run_installed "$@"; fi
  # The event stream moves to fd 3; fd 1 becomes stderr, so a tool that prints by mistake can never
  # put a non-event line on the controller's stream.
  exec 3>&1 1>&2
  trap 'on_err "$?" "$LINENO"' ERR
  trap on_exit EXIT
  trap 'on_signal INT' INT
  trap 'on_signal TERM' TERM
  trap 'on_signal HUP' HUP
  if ((BASH_VERSINFO[0] < 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] < 4))); then
    fail agent_unsupported "bash $BASH_VERSION is too old: the agent needs bash 4.4 or newer"
  fi
  # A controller that went away must not kill us mid-cleanup with SIGPIPE: writes just fail.
  trap '' PIPE
  if (($# == 2)) && [[ $2 == --in-private-namespace ]]; then
    IN_PRIVATE_NS=1
  elif (($# != 1)); then
    fail agent_protocol "usage: rlvm-agent.sh RUN_DIR, or rlvm-agent.sh installed RUN_ID HOST (plan on stdin)"
  fi
  strip_trailing_slashes "$1"
  RUN_DIR=$REPLY
  if [[ $RUN_DIR != /* || ! -d $RUN_DIR || ! -O $RUN_DIR ]]; then
    fail agent_protocol "RUN_DIR must be an absolute path to a directory owned by the running user"
  fi
  if ((IN_PRIVATE_NS)); then read_plan <"$RUN_DIR/plan"; else read_plan; fi
  # Only backup mounts anything: the other commands spare each host the namespace and a second bash.
  if ((EUID == 0 && !IN_PRIVATE_NS)) && [[ $PLAN_COMMAND == backup ]]; then enter_private_namespace; fi
  init_tools
  log "agent $AGENT_VERSION: $PLAN_COMMAND for $PLAN_HOST, run $PLAN_RUN_ID"
  # install writes the allow-list; every other command keeps to it.
  if [[ $PLAN_COMMAND != install ]]; then check_allow_list; fi
  case $PLAN_COMMAND in
    ping) cmd_ping ;;
    preflight) cmd_preflight ;;
    backup) cmd_backup ;;
    prune) cmd_prune ;;
    status) cmd_status ;;
    verify) cmd_verify ;;
    install) cmd_install ;;
    *) fail agent_unsupported "agent $AGENT_VERSION does not implement '$PLAN_COMMAND' yet" ;;
  esac
}

main "$@"
