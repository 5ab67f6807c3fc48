# --- small helpers --------------------------------------------------------------------------------

declare -a WORDS=() LINES=() REPLY_ARGS=()

# split_words STRING: WORDS = STRING split on blanks and newlines, without globbing.
split_words() {
  local -
  set -f
  local IFS=$' \t\n'
  # shellcheck disable=SC2206 # deliberate word splitting; globbing is off (set -f, local to here)
  WORDS=($1)
}

# split_lines STRING: LINES = the non-empty lines of STRING, without globbing.
split_lines() {
  local -
  set -f
  local IFS=$'\n'
  # shellcheck disable=SC2206 # deliberate line splitting; globbing is off (set -f, local to here)
  LINES=($1)
}

# meaningful_line TEXT: REPLY = the first line starting with "Fatal:" (restic's error), else the
# last non-blank line, trimmed, whole: whatever holds repository text is masked before cut_line cuts it.
meaningful_line() {
  local line found=""
  split_lines "$1"
  for line in "${LINES[@]}"; do
    line=${line#"${line%%[![:space:]]*}"}
    if [[ -z $line ]]; then continue; fi
    if [[ $line == Fatal:* ]]; then
      found=$line
      break
    fi
    found=$line
  done
  REPLY=$found
}

# cut_line TEXT: REPLY = TEXT, at most 400 characters ("..." marks a cut).
cut_line() {
  local s=$1
  if ((${#s} > 400)); then s="${s:0:400}..."; fi
  REPLY=$s
}

# first_meaningful_line TEXT: REPLY = meaningful_line, cut to 400 characters (text with no secret in it).
first_meaningful_line() {
  meaningful_line "$1"
  cut_line "$REPLY"
}

# human_bytes BYTES: REPLY = e.g. "1.5 GiB".
human_bytes() {
  local bytes=$1 div=1 i=0
  local -a units=(B KiB MiB GiB TiB PiB)
  if ((bytes < 1024)); then
    REPLY="$bytes B"
    return 0
  fi
  while ((bytes >= div * 1024 && i < 5)); do
    div=$((div * 1024))
    i=$((i + 1))
  done
  REPLY="$((bytes / div)).$(((bytes % div) * 10 / div)) ${units[i]}"
}

# version_at_least VERSION MIN: true if VERSION (e.g. 0.16.4-dev) >= MIN (MAJOR.MINOR).
version_at_least() {
  local re='^([0-9]+)\.([0-9]+)'
  [[ $1 =~ $re ]] || return 1
  local major=$((10#${BASH_REMATCH[1]})) minor=$((10#${BASH_REMATCH[2]}))
  [[ $2 =~ $re ]] || return 1
  local want_major=$((10#${BASH_REMATCH[1]})) want_minor=$((10#${BASH_REMATCH[2]}))
  ((major > want_major || (major == want_major && minor >= want_minor)))
}

# join_by SEPARATOR [ITEM]...: REPLY = the items joined.
join_by() {
  local sep=$1 out="" item first=1
  shift
  for item in "$@"; do
    if ((first)); then out=$item first=0; else out+="$sep$item"; fi
  done
  REPLY=$out
}

# shell_quote VALUE: REPLY = VALUE quoted for a human to paste into a shell (hints only).
shell_quote() {
  printf -v REPLY '%q' "$1"
}

# strip_trailing_slashes PATH: REPLY = PATH without trailing slashes ("/" stays "/").
strip_trailing_slashes() {
  local p=$1
  while [[ $p == */ && $p != / ]]; do p=${p%/}; done
  REPLY=$p
}

# path_is_under PATH DIR: true if PATH is DIR or lies below it (by name; both absolute).
path_is_under() {
  local p dir
  strip_trailing_slashes "$1"
  p=$REPLY
  strip_trailing_slashes "$2"
  dir=$REPLY
  [[ $dir == / || $p == "$dir" || $p == "$dir"/* ]]
}
