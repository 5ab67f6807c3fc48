# --- prune ----------------------------------------------------------------------------------------

FORGET_RC=0 FORGET_MS=0 # timed_forget's exit status and duration
declare -A FORGOT_IN=()  # maintained index -> "ok" once a forget there succeeded, "failed" before

# cmd_prune: phase 1 of the fleet-wide prune: per repository and copy destination, `restic forget`
# with that entry's keep values and --keep-tag protected, scoped to this host and job (with dry_run,
# `forget --dry-run` only: nothing is deleted; the controller's phase 1 is always that preview). Then,
# on one host per repository, a plan of maintained records: every host's forgets there, run one after
# another by this one host (no lock contention), and one `restic prune`.
cmd_prune() {
  repository_preflight changed
  if ((${#MAINT_ID[@]} > 0)); then
    forget_for_hosts
    prune_repositories
  else
    forget_snapshots
  fi
}

# repository_preflight WHAT: the start of a command that works on repositories only (prune, verify):
# the lock, the orphan sweep, restic, the password and env files checked ("nothing was WHAT" if one
# fails), then each repository's identity read.
repository_preflight() {
  gather_facts
  emit_agent_start
  acquire_lock
  sweep_orphans
  check_restic
  check_password_files
  if [[ -n $PLAN_ENV_FILE ]]; then check_env_file; fi
  if ((${#CHECK_FAILED[@]} > 0)); then
    join_by ", " "${CHECK_FAILED[@]}"
    fail preflight "nothing was $1: ${#CHECK_FAILED[@]} check(s) failed: $REPLY"
  fi
  watch_controller
  list_targets
  emit_repo_identities
}

# forget_for_hosts: on a maintenance host, the forget_for records' forgets in the maintained repository,
# scoped to each host and job with its keep values, and only where the repository here has the id the
# backed-up hosts read: maintenance_url may be a typo that opens another repository. The records of one
# repository, job and keep values are one `restic forget --host H1 --host H2 ...`: --group-by host,paths
# applies the keep values to each host's snapshots alone, as its own forget would.
forget_for_hosts() {
  local f g r t rc out err ms json key hosts
  local -A batch_of=()
  local -a batch_first=() batch_hosts=() for_hosts=()
  for f in "${!FORGET_FOR_HOST[@]}"; do
    key="${FORGET_FOR_REPO[f]} ${FORGET_FOR_JOB[f]} ${FORGET_FOR_KEEP[f]}"
    if [[ -z ${batch_of[$key]+set} ]]; then
      batch_of[$key]=${#batch_first[@]}
      batch_first+=("$f") batch_hosts+=("")
    fi
    g=${batch_of[$key]}
    batch_hosts[g]+=" ${FORGET_FOR_HOST[f]}"
  done
  for g in "${!batch_first[@]}"; do
    f=${batch_first[g]}
    r=${FORGET_FOR_REPO[f]}
    split_words "${batch_hosts[g]}"
    for_hosts=("${WORDS[@]}")
    # Host names match [A-Za-z0-9._-]+ (read_plan): they need no JSON escaping.
    hosts=$(printf ',"%s"' "${for_hosts[@]}")
    hosts="[${hosts:1}]"
    for t in "${!TARGET_ID[@]}"; do
      if [[ ${TARGET_KIND[t]} == maintained && ${TARGET_INDEX[t]} == "$r" ]]; then break; fi
    done
    if [[ ${TARGET_REPO_ID[t]-} != "${MAINT_REPO_ID[r]}" ]]; then
      emit forget_for_done repo "s:${MAINT_ID[r]}" for_hosts "j:$hosts" \
        job "s:${FORGET_FOR_JOB[f]}" ok b:false dry_run "b:$PLAN_DRY_RUN" forget "j:[]" duration_ms n:0 \
        message "s:not forgotten: the repository here is not the one the hosts back up into (its id is ${TARGET_REPO_ID[t]:-unreadable})"
      continue
    fi
    if [[ ${FORGOT_IN[$r]-} != ok ]]; then FORGOT_IN[$r]=failed; fi
    forget_args "${FORGET_FOR_JOB[f]}" "${FORGET_FOR_KEEP[f]}" "${for_hosts[@]}"
    out="$RUN_DIR/forget.${MAINT_ID[r]}.$g.out" err="$RUN_DIR/forget.${MAINT_ID[r]}.$g.err"
    timed_forget "$out" "$err" maintained "$r"
    json=$REPLY rc=$FORGET_RC ms=$FORGET_MS
    if [[ -n $json ]]; then
      FORGOT_IN[$r]=ok
      emit forget_for_done repo "s:${MAINT_ID[r]}" for_hosts "j:$hosts" \
        job "s:${FORGET_FOR_JOB[f]}" ok b:true dry_run "b:$PLAN_DRY_RUN" forget "j:$json" duration_ms "n:$ms" message s:
    else
      restic_error_text "$err" "$t"
      emit forget_for_done repo "s:${MAINT_ID[r]}" for_hosts "j:$hosts" \
        job "s:${FORGET_FOR_JOB[f]}" ok b:false dry_run "b:$PLAN_DRY_RUN" forget "j:[]" duration_ms "n:$ms" \
        message "s:restic forget failed (exit $rc): ${REPLY:-no output}"
    fi
  done
}

# forget_args JOB KEEP HOST...: REPLY_ARGS = restic forget's arguments for those hosts' snapshots of
# that job with the keep values "last daily weekly monthly yearly" (0: not used), applied to each
# host's alone; protected snapshots are always kept.
forget_args() {
  local k h
  local -a keep_names=(last daily weekly monthly yearly)
  REPLY_ARGS=(forget --json)
  for h in "${@:3}"; do REPLY_ARGS+=(--host "$h"); done
  REPLY_ARGS+=(--tag "job:$1" --group-by "host,paths" --keep-tag protected)
  split_words "$2"
  for k in 0 1 2 3 4; do
    if ((10#${WORDS[k]} > 0)); then REPLY_ARGS+=("--keep-${keep_names[k]}" "$((10#${WORDS[k]}))"); fi
  done
  # A dry run only reads: no lock, so it never waits for (or blocks) another host's prune.
  if [[ $PLAN_DRY_RUN == true ]]; then REPLY_ARGS+=(--dry-run --no-lock); fi
}

# timed_forget OUT ERR KIND INDEX: `restic forget REPLY_ARGS...` in that target, again while another
# restic holds its lock; FORGET_RC = its exit status, FORGET_MS = how long it took, REPLY = its JSON
# (forget_json).
timed_forget() {
  local started
  now_ms
  started=$REPLY
  restic_locked_retry "$1" "$2" restic_exec "$3" "$4" 0 "${REPLY_ARGS[@]}"
  FORGET_RC=$REPLY
  now_ms
  FORGET_MS=$((REPLY - started))
  forget_json "$FORGET_RC" "$1"
  # Nothing was forgotten when the backend refused the deletes, whatever restic's exit status says.
  if [[ -n $REPLY ]] && restic_delete_refused "$2"; then REPLY=""; fi
}

# forget_json RC OUT: REPLY = restic forget's JSON (a list) when it succeeded, else "". restic prints
# nothing at all when no snapshot of this host and job is there (a new host, a new copy destination):
# nothing to forget is success.
forget_json() {
  REPLY=""
  if [[ -f $2 ]]; then IFS= read -r REPLY <"$2" || true; fi
  if (($1 == 0)) && [[ -z $REPLY || $REPLY == null ]]; then REPLY="[]"; fi
  if (($1 != 0)) || [[ $REPLY != '['*']' ]]; then REPLY=""; fi
}

# forget_snapshots: phase 1, every target's scoped forget.
forget_snapshots() {
  local t id job out err failed=0 skipped=0 rc ms json code
  for t in "${!TARGET_ID[@]}"; do
    id=${TARGET_ID[t]}
    job=${JOB_NAME[${TARGET_JOB[t]}]}
    if [[ -z ${RETENTION[$id]-} ]]; then
      emit prune_done job "s:$job" repo "s:$id" dry_run "b:$PLAN_DRY_RUN" skipped b:true forget "j:[]" duration_ms n:0
      skipped=$((skipped + 1))
      continue
    fi
    forget_args "$job" "${RETENTION[$id]}" "$PLAN_HOST"
    out="$RUN_DIR/forget.$id.out" err="$RUN_DIR/forget.$id.err"
    timed_forget "$out" "$err" "${TARGET_KIND[t]}" "${TARGET_INDEX[t]}"
    json=$REPLY rc=$FORGET_RC ms=$FORGET_MS
    if [[ -n $json ]]; then
      emit prune_done job "s:$job" repo "s:$id" dry_run "b:$PLAN_DRY_RUN" skipped b:false forget "j:$json" \
        duration_ms "n:$ms"
    else
      restic_code_field "$rc" "$err"
      code=$REPLY
      restic_error_text "$err" "$t"
      emit prune_failed job "s:$job" repo "s:$id" dry_run "b:$PLAN_DRY_RUN" \
        message "s:restic forget failed (exit $rc): ${REPLY:-no output}" duration_ms "n:$ms" code "$code"
      failed=$((failed + 1))
    fi
  done
  finish "${#TARGET_ID[@]} repositories and copy destinations processed ($failed failed, $skipped without retention)"
}

# prune_repositories: `restic prune` of each maintained repository a prune record names, once per
# repository URL, and only if the repository there still has the id the controller grouped it by.
prune_repositories() {
  local t out err rc failed=0 count=0 started ms code
  local -A pruned=()
  for t in "${!TARGET_ID[@]}"; do
    if [[ -z ${PRUNE_REPO_ID[${TARGET_ID[t]}]-} || -n ${pruned[${TARGET_URL[t]}]-} ]]; then continue; fi
    pruned[${TARGET_URL[t]}]=1
    count=$((count + 1))
    if [[ ${TARGET_REPO_ID[t]-} != "${PRUNE_REPO_ID[${TARGET_ID[t]}]}" ]]; then
      emit repo_pruned repo "s:${TARGET_ID[t]}" ok b:false duration_ms n:0 \
        message "s:not pruned: the repository here is not the one the forgets ran in (its id is ${TARGET_REPO_ID[t]:-unreadable})" code z:
      failed=$((failed + 1))
      continue
    fi
    # Every forget there failed (an append-only backend refuses deletes): nothing new to prune.
    if [[ ${FORGOT_IN[${TARGET_INDEX[t]}]-} == failed ]]; then
      emit repo_pruned repo "s:${TARGET_ID[t]}" ok b:false duration_ms n:0 \
        message "s:not pruned: none of its forgets succeeded" code z:
      failed=$((failed + 1))
      continue
    fi
    out="$RUN_DIR/prune.${TARGET_ID[t]}.out" err="$RUN_DIR/prune.${TARGET_ID[t]}.err"
    now_ms
    started=$REPLY
    restic_locked_retry "$out" "$err" restic_exec "${TARGET_KIND[t]}" "${TARGET_INDEX[t]}" 0 prune
    rc=$REPLY
    now_ms
    ms=$((REPLY - started))
    if ((rc == 0)); then
      emit repo_pruned repo "s:${TARGET_ID[t]}" ok b:true duration_ms "n:$ms" message s: code z:
    else
      restic_code_field "$rc" "$err"
      code=$REPLY
      restic_error_text "$err" "$t"
      emit repo_pruned repo "s:${TARGET_ID[t]}" ok b:false duration_ms "n:$ms" \
        message "s:restic prune failed (exit $rc): ${REPLY:-no output}" code "$code"
      failed=$((failed + 1))
    fi
  done
  finish "$count repositories pruned ($failed failed)"
}
