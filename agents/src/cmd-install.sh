# --- install (rlvm-fleet install-agent) -----------------------------------------------------------

# Files written beside their targets (under a dot name that sudo and the agent skip), removed by
# cleanup_all unless they were renamed over their target.
declare -a INSTALL_TEMPS=()
INSTALL_OK=1

# ensure_root_dirs DIR...: each DIR, outermost first, is a directory of root's that group and others
# cannot write to; a missing one is made, 0755 (not in a dry run). REPLY = the first problem, or "".
ensure_root_dirs() {
  local dir
  for dir in "$@"; do
    if [[ ! -e $dir && ! -L $dir ]]; then
      if [[ $PLAN_DRY_RUN == true ]]; then continue; fi
      if ! "${TOOL[mkdir]}" -m 0755 -- "$dir" </dev/null 2>/dev/null; then
        REPLY="cannot create $dir"
        return 0
      fi
    fi
    root_file_problem "$dir" d
    if [[ -n $REPLY ]]; then return 0; fi
  done
  REPLY=""
}

# new_beside TARGET: REPLY = a new empty file (0600) in TARGET's directory, named .TARGET.XXXXXX, so a
# rename puts it in place at once; in a dry run, a file in the run directory instead.
new_beside() {
  local dir=${1%/*} base=${1##*/}
  if [[ $PLAN_DRY_RUN == true ]]; then dir=$RUN_DIR; fi
  capture "${TOOL[mktemp]}" -- "$dir/.$base.XXXXXX"
  if ((CAP_RC != 0)) || [[ $CAP_OUT != "$dir/.$base."* ]]; then
    first_meaningful_line "$CAP_ERR"
    REPLY="cannot create a file in $dir: $REPLY"
    return 1
  fi
  INSTALL_TEMPS+=("$CAP_OUT")
  REPLY=$CAP_OUT
}

# put_in_place TEMP TARGET MODE: TEMP gets MODE and replaces TARGET in one rename (a dry run keeps it).
put_in_place() {
  if ! "${TOOL[chmod]}" "$3" -- "$1" </dev/null; then return 1; fi
  if [[ $PLAN_DRY_RUN == true ]]; then return 0; fi
  "${TOOL[mv]}" -f -- "$1" "$2" </dev/null
}

# install_step NAME OK DETAIL HINT: one step's check event; a failed step stops the install.
install_step() {
  check "install:$1" "$2" "$3" "$4"
  if [[ $2 != true ]]; then INSTALL_OK=0; fi
}

# install_agent_file: this agent, the uploaded copy the bootstrap checked, as INSTALLED_AGENT (root's,
# 0755). Other versions in INSTALL_DIR are removed: the new sudo rule names this one only.
install_agent_file() {
  local tmp sha would="" old
  ensure_root_dirs / /usr /usr/local /usr/local/libexec "$INSTALL_DIR"
  if [[ -n $REPLY ]]; then
    install_step agent false "$REPLY" "make each directory of $INSTALL_DIR root's and not writable by group or others"
    return 0
  fi
  capture "${TOOL[sha256sum]}" -- "$0"
  sha=${CAP_OUT%% *}
  if ! new_beside "$INSTALLED_AGENT"; then
    install_step agent false "$REPLY" "check the file system of $INSTALL_DIR (full, read-only?)"
    return 0
  fi
  tmp=$REPLY
  if ! "${TOOL[cp]}" -- "$0" "$tmp" </dev/null || ! put_in_place "$tmp" "$INSTALLED_AGENT" 0755; then
    install_step agent false "cannot write $INSTALLED_AGENT" "check the file system of $INSTALL_DIR (full, read-only?)"
    return 0
  fi
  if [[ $PLAN_DRY_RUN == true ]]; then
    would="would install "
  else
    for old in "$INSTALL_DIR"/rlvm-agent-*.sh; do
      if [[ $old != "$INSTALLED_AGENT" && -f $old && ! -L $old ]]; then "${TOOL[rm]}" -f -- "$old" </dev/null; fi
    done
  fi
  install_step agent true "$would$INSTALLED_AGENT (sha256 $sha)" ""
}

# install_allow_list: the host's allow-list (see check_allow_list) from the plan's allow_repository
# records, or "any" with allow_any_repository. Root's, 0644: it holds sha256 values and masked labels.
install_allow_list() {
  local list="$ALLOW_LIST_DIR/$PLAN_HOST.repositories" tmp i would="" what
  if [[ $PLAN_DRY_RUN == true ]]; then would="would write "; fi
  ensure_root_dirs /etc "$ALLOW_LIST_DIR"
  if [[ -n $REPLY ]]; then
    install_step allow_list false "$REPLY" "make $ALLOW_LIST_DIR root's and not writable by group or others"
    return 0
  fi
  if ! new_beside "$list"; then
    install_step allow_list false "$REPLY" "check the file system of $ALLOW_LIST_DIR"
    return 0
  fi
  tmp=$REPLY
  {
    printf '%s\n' "# Written by rlvm-fleet install-agent: the repositories this host's runs may use." \
      "# Each line: the sha256 of the repository string, then its label (credentials masked)."
    if ((INSTALL_ANY_REPOSITORY)); then echo any; fi
    for i in "${!ALLOW_HASH[@]}"; do printf '%s %s\n' "${ALLOW_HASH[i]}" "${ALLOW_LABEL[i]}"; done
  } >"$tmp"
  if ! put_in_place "$tmp" "$list" 0644; then
    install_step allow_list false "cannot write $list" "check the file system of $ALLOW_LIST_DIR"
    return 0
  fi
  what="${#ALLOW_HASH[@]} repositories"
  if ((INSTALL_ANY_REPOSITORY)); then what="any repository (--any-repository)"; fi
  install_step allow_list true "$would$list: $what" ""
}

# install_sudoers: the drop-in that lets the login user run INSTALLED_AGENT's entry as root and
# nothing else, checked with visudo -cf before it is renamed into place.
install_sudoers() {
  local file="$SUDOERS_DIR/rlvm-fleet-$INSTALL_USER" tag="" rule tmp would=""
  if [[ $INSTALL_SUDO == nopasswd ]]; then tag="NOPASSWD: "; fi
  rule="$INSTALL_USER ALL=(root) $tag$INSTALLED_AGENT installed *"
  root_file_problem "$SUDOERS_DIR" d
  if [[ -n $REPLY ]]; then
    install_step sudoers false "$REPLY" "sudo reads drop-ins from $SUDOERS_DIR: it must be root's"
    return 0
  fi
  find_tool visudo
  if ! have_tool visudo; then
    install_step sudoers false "visudo not found" "install sudo"
    return 0
  fi
  if ! new_beside "$file"; then
    install_step sudoers false "$REPLY" "check the file system of $SUDOERS_DIR"
    return 0
  fi
  tmp=$REPLY
  printf '%s\n' "# Written by rlvm-fleet install-agent: $INSTALL_USER may run the installed agent as root, and nothing else." \
    "$rule" >"$tmp"
  capture "${TOOL[visudo]}" -c -q -f "$tmp"
  if ((CAP_RC != 0)); then
    first_meaningful_line "$CAP_ERR${CAP_ERR:+$'\n'}$CAP_OUT"
    install_step sudoers false "visudo -c refused the rule '$rule': $REPLY" "check the host's sudo version and its sudoers"
    return 0
  fi
  if ! put_in_place "$tmp" "$file" 0440; then
    install_step sudoers false "cannot write $file" "check the file system of $SUDOERS_DIR"
    return 0
  fi
  if [[ $PLAN_DRY_RUN == true ]]; then would="would write "; fi
  install_step sudoers true "$would$file: $rule (visudo -c: ok)" ""
}

# cmd_install: the agent, the repository allow-list and the sudo rule, in that order, so the rule
# exists only once what it allows is in place. Only an uploaded agent installs (the bootstrap checked
# its sha256): the installed one refuses, so its own sudo rule can never widen itself or the list.
cmd_install() {
  gather_facts
  emit_agent_start
  if [[ $0 != "$RUN_DIR/rlvm-agent.sh" ]]; then
    fail agent_unsupported "the installed agent does not install; rlvm-fleet install-agent uploads the one it installs"
  fi
  if ((EUID != 0)); then
    fail install_failed "installing needs root: the agent runs as $FACT_USER"
  fi
  install_agent_file
  if ((INSTALL_OK)); then install_allow_list; fi
  if ((INSTALL_OK)); then install_sudoers; fi
  if ((!INSTALL_OK)); then
    fail install_failed "the install stopped at ${CHECK_FAILED[*]}; nothing after it was changed"
  fi
  if [[ $PLAN_DRY_RUN == true ]]; then finish "dry run: nothing was changed"; fi
  finish "installed $INSTALLED_AGENT for $INSTALL_USER"
}
