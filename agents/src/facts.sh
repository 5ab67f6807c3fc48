# --- facts ----------------------------------------------------------------------------------------

# Host facts (gather_facts).
FACT_HOSTNAME="" FACT_KERNEL="" FACT_OS="" FACT_USER="" RESTIC_VERSION="" RESTIC_PROBLEM="" LVM_VERSION=""

gather_facts() {
  local line re
  FACT_HOSTNAME=${HOSTNAME-}
  FACT_KERNEL=""
  if have_tool uname; then
    capture "${TOOL[uname]}" -n
    if ((CAP_RC == 0)) && [[ -n $CAP_OUT ]]; then FACT_HOSTNAME=$CAP_OUT; fi
    capture "${TOOL[uname]}" -r
    if ((CAP_RC == 0)); then FACT_KERNEL=$CAP_OUT; fi
  fi
  if [[ -z $FACT_KERNEL && -r /proc/sys/kernel/osrelease ]]; then
    IFS= read -r FACT_KERNEL </proc/sys/kernel/osrelease || true
  fi
  os_release_name
  FACT_OS=$REPLY
  FACT_USER="uid $EUID"
  if have_tool id; then
    capture "${TOOL[id]}" -un
    if ((CAP_RC == 0)) && [[ -n $CAP_OUT ]]; then FACT_USER=$CAP_OUT; fi
  fi

  # restic: "restic 0.14.0 compiled with go1.19.8 on linux/amd64"
  RESTIC_VERSION="" RESTIC_PROBLEM=""
  if have_tool restic; then
    capture restic_exec none - "$PREFLIGHT_TIMEOUT" version
    re='^restic ([0-9][^[:space:]]*)'
    split_lines "$CAP_OUT"
    if ((CAP_RC == 0 && ${#LINES[@]} > 0)) && [[ ${LINES[0]} =~ $re ]]; then
      RESTIC_VERSION=${BASH_REMATCH[1]}
    else
      first_meaningful_line "$CAP_ERR"
      RESTIC_PROBLEM="'${TOOL[restic]} version' failed (status $CAP_RC)${REPLY:+: $REPLY}"
    fi
  else
    RESTIC_PROBLEM="not found"
  fi

  # lvm: "  LVM version:     2.03.16(2) (2022-05-18)"
  LVM_VERSION=""
  if have_tool lvm; then
    capture with_timeout "$PREFLIGHT_TIMEOUT" "${TOOL[lvm]}" version
    re='LVM version:[[:space:]]+([^[:space:]]+)'
    split_lines "$CAP_OUT"
    for line in "${LINES[@]}"; do
      if [[ $line =~ $re ]]; then
        LVM_VERSION=${BASH_REMATCH[1]}
        break
      fi
    done
  fi
}

# os_release_name: REPLY = PRETTY_NAME of /etc/os-release ("Debian GNU/Linux 12 (bookworm)"), or "".
# Parsed, never sourced; only its first 100 lines are read, and the name is cut at 200 characters.
os_release_name() {
  local line value re='^PRETTY_NAME=(.*)$' quoted='^"(.*)"$|^'"'"'(.*)'"'"'$' n=0
  REPLY=""
  [[ -f /etc/os-release && -r /etc/os-release ]] || return 0
  while ((n++ < 100)) && IFS= read -r line; do
    [[ $line =~ $re ]] || continue
    value=${BASH_REMATCH[1]}
    if [[ $value =~ $quoted ]]; then value=${BASH_REMATCH[1]}${BASH_REMATCH[2]}; fi
    REPLY=${value:0:200}
    return 0
  done </etc/os-release
  return 0
}

emit_agent_start() {
  local restic_value="z:" lvm_value="z:" os_value="z:" facts
  if [[ -n $RESTIC_VERSION ]]; then restic_value="s:$RESTIC_VERSION"; fi
  if [[ -n $FACT_OS ]]; then os_value="s:$FACT_OS"; fi
  if [[ -n $LVM_VERSION ]]; then lvm_value="s:$LVM_VERSION"; fi
  json_fields hostname "s:$FACT_HOSTNAME" kernel "s:$FACT_KERNEL" os "$os_value" bash "s:$BASH_VERSION" \
    restic "$restic_value" lvm "$lvm_value" user "s:$FACT_USER"
  facts="{$REPLY}"
  emit agent_start agent_version "s:$AGENT_VERSION" run_id "s:$PLAN_RUN_ID" facts "j:$facts"
}
