# --- what the host's restic offers ------------------------------------------------------------------
#
# RESTIC_VERSION (gather_facts) says which restic runs; each difference between the versions the agent
# supports (0.14 on Debian 12 to 0.18 on Debian 13) is one function here, which the commands call
# instead of asking for a version themselves.

# How long a restic that must lock a repository waits for another restic's lock: the total of
# restic_locked_retry's own delays (lock_retry_delay for attempts 1 to LOCK_RETRY_ATTEMPTS).
readonly LOCK_RETRY_ATTEMPTS=30
readonly LOCK_WAIT_SECONDS=280

# restic_at_least MAJOR MINOR [PATCH]: true if the host's restic is that version or newer ("0.17.1",
# "0.18.0", also "0.16.4-dev"); false when its version is unknown.
restic_at_least() {
  local re='^([0-9]+)\.([0-9]+)(\.([0-9]+))?' have want i
  [[ ${RESTIC_VERSION-} =~ $re ]] || return 1
  have=("$((10#${BASH_REMATCH[1]}))" "$((10#${BASH_REMATCH[2]}))" "$((10#${BASH_REMATCH[4]:-0}))")
  want=("$1" "$2" "${3:-0}")
  for i in 0 1 2; do
    if ((have[i] != want[i])); then ((have[i] > want[i])); return; fi
  done
  return 0
}

# lock_retry_delay ATTEMPT: REPLY = the seconds restic_locked_retry waits before attempt ATTEMPT + 1.
lock_retry_delay() {
  REPLY=$(($1 < 5 ? $1 * 2 : 10))
}

# restic_retry_lock_argv FUNC ARG...: restic 0.16 and later wait for another restic's lock themselves
# (--retry-lock): RETRY_ARGV = the call with that flag, for LOCK_WAIT_SECONDS, placed among restic's
# global flags before its command (restic_exec KIND INDEX TIMEOUT --retry-lock 280s COMMAND ...). False,
# and RETRY_ARGV empty, on an older restic and for a call that takes no lock (--no-lock), which the
# caller then retries itself.
declare -a RETRY_ARGV=()
restic_retry_lock_argv() {
  RETRY_ARGV=()
  if [[ $1 != restic_exec ]] || (($# < 5)) || ! restic_at_least 0 16; then return 1; fi
  local arg
  for arg in "${@:5}"; do
    if [[ $arg == --no-lock ]]; then return 1; fi
    if [[ $arg == -- ]]; then break; fi
  done
  RETRY_ARGV=("${@:1:4}" --retry-lock "${LOCK_WAIT_SECONDS}s" "${@:5}")
}

# restic_failure_code STATUS STDERR: REPLY = why restic failed, when it is one of the failures the
# report names precisely: repo_missing (no repository at that location), repo_locked (another restic
# holds its lock), repo_wrong_password (the password opens no key); "" for any other failure. restic
# 0.17 says so in its exit status (10, 11; 12 from 0.17.1); before, each is status 1 and only the
# words on its stderr tell.
restic_failure_code() {
  local rc=$1 text=$2
  REPLY=""
  if restic_at_least 0 17; then
    case $rc in
      10) REPLY=repo_missing ;;
      11) REPLY=repo_locked ;;
      12) REPLY=repo_wrong_password ;;
    esac
    if [[ -n $REPLY ]] || restic_at_least 0 17 1; then return 0; fi
  fi
  if ((rc != 1)); then return 0; fi
  # restic 0.14 asks "Is there a repository ...?" after any failure to open the config file (also an
  # unreachable backend): missing only when the backend said so (local and sftp: no such file; rest,
  # s3 and the others: does not exist).
  case $text in
    *"Is there a repository at the following location?"*)
      if [[ $text == *"no such file or directory"* || $text == *"does not exist"* ]]; then REPLY=repo_missing; fi
      ;;
    *"wrong password or no key found"*) REPLY=repo_wrong_password ;;
    *"repository is already locked"*) REPLY=repo_locked ;;
  esac
}

# restic_code_field STATUS ERR_FILE: REPLY = restic_failure_code of that call as an event's `code` value.
restic_code_field() {
  local text=""
  if [[ -f $2 ]]; then text=$(<"$2"); fi
  restic_failure_code "$1" "$text"
  if [[ -n $REPLY ]]; then REPLY="s:$REPLY"; else REPLY="z:"; fi
}

# restic_delete_refused ERR_FILE: true when restic's stderr says the backend refused to remove a file
# (an append-only endpoint answers 403). restic 0.14 retries such a delete and fails; 0.17 and later
# give up on it at once and exit 0 from forget, having removed nothing.
restic_delete_refused() {
  local text=""
  if [[ -f $1 ]]; then text=$(<"$1"); fi
  [[ $text == *"unable to remove "* ]]
}

# restic_plain_stderr TEXT: REPLY = restic's stderr TEXT with the errors restic 0.17 and later write as
# JSON under --json (`{"message_type":"exit_error","code":N,"message":"..."}`, and check's
# `{"message_type":"error","message":"..."}`) decoded to their messages, as older ones print them.
# Only JSON's escapes are decoded, \u for ASCII only (Go escapes control characters and <>& that way;
# other characters come as they are); any other line stays as it is.
restic_plain_stderr() {
  local line out="" re='^\{"message_type":"(exit_)?error",.*"message":"(([^"\\]|\\.)*)"\}$'
  if ! restic_at_least 0 17; then
    REPLY=$1
    return 0
  fi
  split_lines "$1"
  for line in "${LINES[@]}"; do
    if [[ $line =~ $re ]]; then
      json_unescape "${BASH_REMATCH[2]}"
      line=${REPLY%$'\n'}
    fi
    out+=${out:+$'\n'}$line
  done
  REPLY=$out
}

# restic_check_json: true when `restic check` takes --json (0.18): its summary counts the errors and
# names the damaged packs, which the agent then reports as they are instead of only restic's text.
restic_check_json() {
  restic_at_least 0 18
}

# check_summary OUT_FILE: from restic check --json's summary line, REPLY = the number of errors as an
# emit field (n:N, or z: when there is no summary) and PACKS_JSON = the damaged packs' ids (at most
# 100, each 64 hex digits; anything else in the list is left out), as a JSON array.
PACKS_JSON="[]"
check_summary() {
  local line re='^\{"message_type":"summary","num_errors":([0-9]{1,9}),"broken_packs":(null|\[[^]]*\])' list id
  local -a ids=()
  local kept=0
  REPLY=z: PACKS_JSON="[]"
  if [[ ! -f $1 ]]; then return 0; fi
  while IFS= read -r line; do
    if [[ $line =~ $re ]]; then
      REPLY=n:$((10#${BASH_REMATCH[1]}))
      list=${BASH_REMATCH[2]}
      list=${list#[} list=${list%]}
      IFS=, read -r -a ids <<<"$list"
      PACKS_JSON="" kept=0
      for id in "${ids[@]}"; do
        if [[ $id =~ ^\"[0-9a-f]{64}\"$ ]] && ((kept < 100)); then
          PACKS_JSON+=${PACKS_JSON:+,}$id
          kept=$((kept + 1))
        fi
      done
      PACKS_JSON="[$PACKS_JSON]"
    fi
  done <"$1"
}

# json_unescape TEXT: REPLY = the JSON string body TEXT decoded (\uXXXX beyond ASCII, and \u0000, kept
# as written).
json_unescape() {
  local s=$1 out="" c hex
  while [[ -n $s ]]; do
    c=${s:0:1}
    if [[ $c != "\\" ]]; then
      out+=${s%%\\*}
      if [[ $s == *\\* ]]; then s=\\${s#*\\}; else s=""; fi
      continue
    fi
    c=${s:1:1}
    case $c in
      n) out+=$'\n' ;;
      t) out+=$'\t' ;;
      r) out+=$'\r' ;;
      b) out+=$'\b' ;;
      f) out+=$'\f' ;;
      u)
        hex=${s:2:4}
        if [[ $hex =~ ^00[0-7][0-9a-fA-F]$ && $hex != 0000 ]]; then
          printf -v c '%b' "\\x${hex:2:2}"
          out+=$c
        else
          out+="\\u$hex"
        fi
        s=${s:4}
        ;;
      *) out+=$c ;;
    esac
    s=${s:2}
  done
  REPLY=$out
}
