# --- output: log, JSON, events, the result ---------------------------------------------------------

RESULT_EMITTED=0
# Most functions return their value here.
REPLY=""
# Warning codes emitted so far (backup's result lists them).

log() {
  printf 'rlvm-agent: %s\n' "$*" >&2 2>/dev/null || true
}

# json_string VALUE: REPLY = VALUE as a JSON string literal (quotes included). Backslash, quote and
# every control character 0x01-0x1f are escaped; NUL cannot occur in a bash string.
json_string() {
  local s=$1 bs=$'\\' q='"' c hex i
  s=${s//"$bs"/"$bs$bs"}
  s=${s//"$q"/"$bs$q"}
  s=${s//$'\n'/"${bs}n"}
  s=${s//$'\r'/"${bs}r"}
  s=${s//$'\t'/"${bs}t"}
  if [[ $s == *[$'\001'-$'\037']* ]]; then
    for ((i = 1; i < 32; i++)); do
      printf -v hex '%02x' "$i"
      printf -v c '%b' "\\x$hex"
      s=${s//"$c"/"${bs}u00$hex"}
    done
  fi
  REPLY="\"$s\""
}

# json_fields KEY TYPED [KEY TYPED]...: REPLY = `"KEY":VALUE,...`. TYPED is one of s:STRING,
# n:INTEGER, b:true, b:false, z: (null), j:JSON (already encoded). Keys are the script's own constants.
json_fields() {
  local out="" sep="" key val
  while (($# >= 2)); do
    key=$1 val=$2
    shift 2
    case $val in
      s:*)
        json_string "${val#s:}"
        val=$REPLY
        ;;
      n:*)
        val=${val#n:}
        if [[ ! $val =~ ^-?[0-9]+$ ]]; then val=null; fi
        ;;
      b:true | b:false) val=${val#b:} ;;
      z:) val=null ;;
      j:*) val=${val#j:} ;;
      *)
        log "internal error: json_fields: bad value for $key"
        return 1
        ;;
    esac
    out+="$sep\"$key\":$val"
    sep=","
  done
  REPLY=$out
}

# emit EVENT [KEY TYPED]...: one event line on the event stream (fd 3, the agent's real stdout).
emit() {
  local event=$1
  shift
  json_fields "$@"
  # The controller may be gone: a failed write must never abort the cleanup that follows.
  printf '{"v":%d,"event":"%s"%s}\n' "$PROTOCOL_VERSION" "$event" "${REPLY:+,$REPLY}" >&3 2>/dev/null || true
}

# finish MESSAGE: the command ran to its end. Emit the one result event (code null) and exit 0. What
# the run means (ok, partial, failed) the controller decides from the events.
finish() {
  emit_result "" "$1"
}

# fail CODE MESSAGE: the agent cannot go on. Emit the one result event with CODE and exit 1.
fail() {
  emit_result "$1" "$2"
}

emit_result() {
  local code=$1 message=$2 code_value="z:"
  if [[ -n $code ]]; then code_value="s:$code"; fi
  cleanup_all
  RESULT_EMITTED=1
  log "result: ${code:-done}: $message"
  emit result code "$code_value" message "s:$message"
  if [[ -n $code ]]; then exit 1; fi
  exit 0
}
