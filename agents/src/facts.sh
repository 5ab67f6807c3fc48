# --- facts ----------------------------------------------------------------------------------------

# Host facts (gather_facts).
FACT_HOSTNAME="" FACT_KERNEL="" FACT_OS="" FACT_USER="" RESTIC_VERSION="" RESTIC_PROBLEM="" LVM_VERSION=""

gather_facts() {
  local line re
  # The kernel's own files first: on every host of a run, each program started costs a fork and an exec.
  FACT_HOSTNAME="" FACT_KERNEL=""
  if [[ -r /proc/sys/kernel/hostname ]]; then IFS= read -r FACT_HOSTNAME </proc/sys/kernel/hostname || true; fi
  if [[ -r /proc/sys/kernel/osrelease ]]; then IFS= read -r FACT_KERNEL </proc/sys/kernel/osrelease || true; fi
  if [[ -z $FACT_HOSTNAME || -z $FACT_KERNEL ]] && have_tool uname; then
    capture "${TOOL[uname]}" -n
    if ((CAP_RC == 0)) && [[ -n $CAP_OUT ]]; then FACT_HOSTNAME=$CAP_OUT; fi
    capture "${TOOL[uname]}" -r
    if ((CAP_RC == 0)); then FACT_KERNEL=$CAP_OUT; fi
  fi
  if [[ -z $FACT_HOSTNAME ]]; then FACT_HOSTNAME=${HOSTNAME-}; fi
  os_release_name
  FACT_OS=$REPLY
  passwd_name "$EUID"
  FACT_USER=$REPLY
  if [[ -z $FACT_USER ]] && have_tool id; then
    capture "${TOOL[id]}" -un
    if ((CAP_RC == 0)) && [[ -n $CAP_OUT ]]; then FACT_USER=$CAP_OUT; fi
  fi
  if [[ -z $FACT_USER ]]; then FACT_USER="uid $EUID"; fi

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

# passwd_name UID: REPLY = the first name /etc/passwd gives UID, or "" (a user only NSS knows, e.g.
# from LDAP, is left to `id -un`). Read, never sourced.
passwd_name() {
  local name rest uid
  REPLY=""
  [[ -f /etc/passwd && -r /etc/passwd ]] || return 0
  while IFS=: read -r name rest uid rest; do
    if [[ $uid == "$1" && $name =~ ^[A-Za-z0-9._][A-Za-z0-9._-]{0,31}$ ]]; then
      REPLY=$name
      return 0
    fi
  done </etc/passwd
  return 0
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
