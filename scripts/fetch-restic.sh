#!/usr/bin/env bash
# Fetch Debian 13 (trixie)'s restic for the integration tier's second pass (scripts/test.mjs binds it
# over /usr/bin/restic in a private mount namespace):
#
#     scripts/fetch-restic.sh [CACHE_DIR]      default: ~/.cache/rlvm-fleet/restic-trixie
#
# CACHE_DIR/restic is the binary. The package comes from deb.debian.org through apt with a private
# configuration of its own (sources list, state, cache, no sources.list.d, no preferences), trusted by
# /usr/share/keyrings/debian-archive-keyring.gpg: the machine's own apt sources, lists and cache are
# never read or changed. A CACHE_DIR/restic that already reports 0.18 is kept. Prints its path.
set -Eeuo pipefail
export LC_ALL=C

readonly SUITE="trixie"
readonly MIRROR="${RLVM_RESTIC_MIRROR:-http://deb.debian.org/debian}"
readonly KEYRING="/usr/share/keyrings/debian-archive-keyring.gpg"
readonly WANT_RE='^restic 0\.18\.[0-9]+ '

main() {
  local cache=${1:-${HOME:?}/.cache/rlvm-fleet/restic-trixie} work deb
  if [[ -x $cache/restic ]] && [[ $("$cache/restic" version 2>/dev/null) =~ $WANT_RE ]]; then
    printf '%s\n' "$cache/restic"
    return 0
  fi
  if [[ ! -r $KEYRING ]]; then
    printf 'fetch-restic: %s is missing: apt-get install debian-archive-keyring\n' "$KEYRING" >&2
    return 1
  fi
  mkdir -p -- "$cache"
  work=$(mktemp -d "$cache/.fetch.XXXXXX")
  # shellcheck disable=SC2064 # the path is fixed now
  trap "rm -rf -- '$work'" EXIT
  mkdir -p -- "$work/state/lists/partial" "$work/cache/archives/partial" "$work/parts" "$work/prefs" \
    "$work/download" "$work/root"
  : >"$work/state/status"
  printf 'deb [signed-by=%s] %s %s main\n' "$KEYRING" "$MIRROR" "$SUITE" >"$work/sources.list"
  local -a apt=(
    -o "Dir::Etc::sourcelist=$work/sources.list"
    -o "Dir::Etc::sourceparts=$work/parts"
    -o "Dir::Etc::preferences=$work/prefs/none"
    -o "Dir::Etc::preferencesparts=$work/prefs"
    -o "Dir::State=$work/state"
    -o "Dir::State::status=$work/state/status"
    -o "Dir::Cache=$work/cache"
    # root's apt would hand the downloads to _apt, which cannot write into a private directory of root.
    -o "APT::Sandbox::User=$(id -un)"
    -o "Acquire::Languages=none"
    -q
  )
  apt-get "${apt[@]}" update >&2
  (cd "$work/download" && apt-get "${apt[@]}" download restic >&2)
  deb=$(find "$work/download" -maxdepth 1 -name 'restic_*.deb' -print -quit)
  if [[ -z $deb ]]; then
    printf 'fetch-restic: apt-get download restic left no .deb\n' >&2
    return 1
  fi
  dpkg-deb -x "$deb" "$work/root"
  if [[ ! $("$work/root/usr/bin/restic" version) =~ $WANT_RE ]]; then
    printf 'fetch-restic: %s is not restic 0.18\n' "${deb##*/}" >&2
    return 1
  fi
  install -m 0755 -- "$work/root/usr/bin/restic" "$cache/restic.new"
  mv -f -- "$cache/restic.new" "$cache/restic"
  printf 'fetch-restic: %s -> %s\n' "${deb##*/}" "$cache/restic" >&2
  printf '%s\n' "$cache/restic"
}

main "$@"
