# --- LVM, mounts, and the snapshots' lifecycle ----------------------------------------------------

# backup state: per job index, what exists now and must be undone (release_job, cleanup_all)
declare -a SNAP_NAME=() SNAP_BORN=() SNAP_PEAK=() SNAP_MNT=() SNAP_INVALID=() ORIGIN_MP=()
declare -a JOB_VIEW=() JOB_REMOUNTED=() CHROOT_BINDS=()
SAMPLER_PID="" ORIGIN_FSTYPE=""

# lvm_call TOOL ARG...: capture an LVM tool under the preflight timeout, without fd-leak warnings.
# (VG and LV names never start with "-": read_plan checks them against LVM_NAME_RE.)
lvm_call() {
  local tool=$1
  shift
  LVM_SUPPRESS_FD_WARNINGS=1 capture with_timeout "$PREFLIGHT_TIMEOUT" "${TOOL[$tool]}" "$@"
}

# unescape_findmnt TEXT: REPLY = a findmnt -r field with its \xHH escapes decoded.
unescape_findmnt() {
  REPLY=$1
  if [[ $1 == *\\* && $1 =~ $FINDMNT_ESCAPED_RE ]]; then printf -v REPLY '%b' "$1"; fi
}

# dev_is_lv MAJ:MIN SOURCE VG LV_MAJ:MIN: true if a mount (its MAJ:MIN and SOURCE from findmnt) is the
# LV. MAJ:MIN decides; for btrfs, whose MAJ:MIN is anonymous, the source device's number decides.
dev_is_lv() {
  local mm=$1 src=${2%%\[*} vg=$3 lv_mm=$4
  if [[ $mm == "$lv_mm" ]]; then return 0; fi
  case $src in
    /dev/mapper/* | /dev/dm-* | "/dev/$vg/"*) ;;
    *) return 1 ;;
  esac
  if [[ ! -b $src ]] || ! have_tool stat; then return 1; fi
  capture "${TOOL[stat]}" -L -c '%t:%T' -- "$src"
  if ((CAP_RC != 0)) || [[ ! $CAP_OUT =~ ^([0-9a-f]+):([0-9a-f]+)$ ]]; then return 1; fi
  [[ "$((16#${BASH_REMATCH[1]})):$((16#${BASH_REMATCH[2]}))" == "$lv_mm" ]]
}

# mount_of PATH: MNT_MM, MNT_SRC, MNT_TGT of the filesystem PATH lies on (findmnt --target).
mount_of() {
  MNT_MM="" MNT_SRC="" MNT_TGT=""
  if ! have_tool findmnt; then return 1; fi
  capture with_timeout "$PREFLIGHT_TIMEOUT" "${TOOL[findmnt]}" -n -r -o MAJ:MIN,SOURCE,TARGET --target "$1"
  split_lines "$CAP_OUT"
  if ((CAP_RC != 0 || ${#LINES[@]} == 0)); then return 1; fi
  split_words "${LINES[0]}"
  if ((${#WORDS[@]} != 3)); then return 1; fi
  MNT_MM=${WORDS[0]}
  unescape_findmnt "${WORDS[1]}"
  MNT_SRC=$REPLY
  unescape_findmnt "${WORDS[2]}"
  MNT_TGT=$REPLY
}

# lv_mountpoints VG LV_MAJ:MIN: MOUNTS = where the LV is mounted (every mount, bind mounts included).
lv_mountpoints() {
  local vg=$1 lv_mm=$2 line
  MOUNTS=()
  if ! have_tool findmnt; then return 1; fi
  capture with_timeout "$PREFLIGHT_TIMEOUT" "${TOOL[findmnt]}" -n -r -o MAJ:MIN,SOURCE,TARGET
  if ((CAP_RC != 0)); then return 1; fi
  split_lines "$CAP_OUT"
  for line in "${LINES[@]}"; do
    split_words "$line"
    if ((${#WORDS[@]} != 3)); then continue; fi
    unescape_findmnt "${WORDS[1]}"
    if dev_is_lv "${WORDS[0]}" "$REPLY" "$vg" "$lv_mm"; then
      unescape_findmnt "${WORDS[2]}"
      MOUNTS+=("$REPLY")
    fi
  done
}

# take_snapshots: every LV snapshot of the run, back to back, before any restic call.
take_snapshots() {
  local i name
  for i in "${!JOB_NAME[@]}"; do
    if ! is_lv_job "$i"; then continue; fi
    name="${JOB_LV[i]}_rlvm_$PLAN_RUN_ID"
    lvm_call lvcreate --snapshot --size "${JOB_SIZE[i]}b" --name "$name" \
      --addtag rlvm_fleet --addtag "rlvm_host_$PLAN_HOST" "${JOB_VG[i]}/${JOB_LV[i]}"
    if ((CAP_RC != 0)); then
      first_meaningful_line "$CAP_ERR"
      fail snapshot_failed "lvcreate of a snapshot of ${JOB_VG[i]}/${JOB_LV[i]} failed: $REPLY"
    fi
    now_ms
    SNAP_NAME[i]=$name
    SNAP_BORN[i]=$REPLY
    SNAP_PEAK[i]=""
    emit snapshot_created job "s:${JOB_NAME[i]}" snapshot "s:${JOB_VG[i]}/$name"
  done
}

# origin_mount JOB: REPLY = where the job's LV is mounted (the mount that holds its source), FSTYPE too.
origin_mount() {
  local i=$1
  capture "${TOOL[findmnt]}" -n -r -o TARGET,FSTYPE --target "${JOB_SOURCE[i]}"
  split_words "$CAP_OUT"
  if ((CAP_RC != 0 || ${#WORDS[@]} != 2)); then return 1; fi
  unescape_findmnt "${WORDS[0]}"
  ORIGIN_FSTYPE=${WORDS[1]}
}

# mount_snapshots: each snapshot read-only under RUN_DIR/mnt/JOB (nouuid for XFS: the snapshot has
# its origin's UUID, which XFS refuses to mount twice).
mount_snapshots() {
  local i dir options
  for i in "${!JOB_NAME[@]}"; do
    if [[ -z ${SNAP_NAME[i]-} ]]; then continue; fi
    if ! origin_mount "$i"; then fail agent_error "cannot find the mount of ${JOB_SOURCE[i]}"; fi
    ORIGIN_MP[i]=$REPLY
    options=ro
    if [[ $ORIGIN_FSTYPE == xfs ]]; then options+=",nouuid"; fi
    dir="$RUN_DIR/mnt/${JOB_NAME[i]}"
    run "${TOOL[mkdir]}" -p -- "$dir" || fail agent_error "cannot create $dir"
    if ! run "${TOOL[mount]}" -o "$options" -- "/dev/${JOB_VG[i]}/${SNAP_NAME[i]}" "$dir"; then
      first_meaningful_line "$CAP_ERR"
      fail snapshot_failed "cannot mount the snapshot of ${JOB_VG[i]}/${JOB_LV[i]} read-only: $REPLY"
    fi
    SNAP_MNT[i]=$dir
  done
}

# sample_cow JOB: SNAP_PEAK = the highest COW use seen so far; SNAP_INVALID = 1 once LVM dropped it.
sample_cow() {
  local i=$1 attr pct
  lvm_call lvs --noheadings -o lv_attr,snap_percent "${JOB_VG[i]}/${SNAP_NAME[i]}"
  split_words "$CAP_OUT"
  if ((CAP_RC != 0 || ${#WORDS[@]} < 1)); then return 0; fi
  attr=${WORDS[0]}
  # lv_attr's 5th character: I = invalid (overflowed) snapshot.
  if [[ ${attr:4:1} == I ]]; then
    SNAP_INVALID[i]=1
    SNAP_PEAK[i]=100
    return 0
  fi
  pct=${WORDS[1]-}
  if [[ $pct =~ ^[0-9]+([.][0-9]+)?$ ]]; then
    pct=${pct%%.*}
    if [[ -z ${SNAP_PEAK[i]} ]] || ((10#$pct > 10#${SNAP_PEAK[i]})); then SNAP_PEAK[i]=$((10#$pct)); fi
  fi
}

# start_cow_sampler: a background process that records each live snapshot's COW use every 2 s into
# RUN_DIR/cow.JOB, so the peak is known even for a snapshot that lives through one long restic run.
start_cow_sampler() {
  local i any=0
  for i in "${!SNAP_NAME[@]}"; do any=1; done
  if ((any == 0)); then return 0; fi
  (
    trap - ERR EXIT INT TERM HUP
    set +e
    while :; do
      for i in "${!SNAP_NAME[@]}"; do
        if [[ -e $RUN_DIR/released.$i ]]; then continue; fi
        sample_cow "$i"
        printf '%s %s\n' "${SNAP_PEAK[i]:-}" "${SNAP_INVALID[i]:-0}" >"$RUN_DIR/cow.$i"
      done
      "${TOOL[sleep]}" 2 </dev/null
    done
  ) </dev/null 3>&- &
  SAMPLER_PID=$!
}

# read_cow JOB: merge what the sampler saw with one last sample.
read_cow() {
  local i=$1 peak="" invalid=0
  if [[ -f $RUN_DIR/cow.$i ]]; then
    read -r peak invalid <"$RUN_DIR/cow.$i" || true
    if [[ $peak =~ ^[0-9]+$ ]] && { [[ -z ${SNAP_PEAK[i]} ]] || ((peak > SNAP_PEAK[i])); }; then SNAP_PEAK[i]=$peak; fi
    if [[ $invalid == 1 ]]; then SNAP_INVALID[i]=1; fi
  fi
  sample_cow "$i"
}

# release_job JOB: undo what the job set up, newest first: its bind or chroot mounts, the snapshot's
# mount, the snapshot itself (reporting its lifetime and peak COW), a read-only remount. Idempotent.
release_job() {
  local i=$1 lifetime peak_value="z:" invalid=false
  if [[ -n ${JOB_VIEW[i]-} ]]; then
    run "${TOOL[umount]}" -R -- "${JOB_VIEW[i]}" || run "${TOOL[umount]}" -l -R -- "${JOB_VIEW[i]}" || true
    JOB_VIEW[i]=""
  fi
  if [[ -n ${SNAP_MNT[i]-} ]]; then
    run "${TOOL[umount]}" -R -- "${SNAP_MNT[i]}" || run "${TOOL[umount]}" -l -R -- "${SNAP_MNT[i]}" || true
    SNAP_MNT[i]=""
  fi
  if [[ -n ${SNAP_NAME[i]-} ]]; then
    : >"$RUN_DIR/released.$i"
    read_cow "$i"
    lvm_call lvremove -f "${JOB_VG[i]}/${SNAP_NAME[i]}"
    if ((CAP_RC != 0)); then
      # Retry once: udev may still hold the device right after the unmount.
      "${TOOL[sleep]}" 1 </dev/null || true
      lvm_call lvremove -f "${JOB_VG[i]}/${SNAP_NAME[i]}"
    fi
    if ((CAP_RC != 0)); then
      first_meaningful_line "$CAP_ERR"
      emit warning code s:snapshot_not_removed message "s:could not remove ${JOB_VG[i]}/${SNAP_NAME[i]}: $REPLY (the next run removes it)"
    fi
    now_ms
    lifetime=$((REPLY - SNAP_BORN[i]))
    if [[ -n ${SNAP_PEAK[i]} ]]; then peak_value="n:${SNAP_PEAK[i]}"; fi
    if [[ -n ${SNAP_INVALID[i]-} ]]; then invalid=true; fi
    emit snapshot_removed job "s:${JOB_NAME[i]}" snapshot "s:${JOB_VG[i]}/${SNAP_NAME[i]}" \
      lifetime_ms "n:$lifetime" cow_peak_percent "$peak_value" invalid "b:$invalid"
    SNAP_NAME[i]=""
  fi
  if [[ -n ${JOB_REMOUNTED[i]-} ]]; then
    if ! run "${TOOL[mount]}" -o remount,rw -- "${JOB_REMOUNTED[i]}"; then
      emit warning code s:remount_failed message "s:could not remount ${JOB_REMOUNTED[i]} read-write again: $CAP_ERR"
    fi
    JOB_REMOUNTED[i]=""
  fi
}
