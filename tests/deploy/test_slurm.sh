#!/usr/bin/env bash
# Slurm for real: a one-node cluster on localhost (munged, slurmctld, slurmd; tests/deploy/slurm_cluster.sh),
# deploy/slurm/submit.sh submits the 3-task extraction array and the dependent merge job over a corpus
# rendered here (6 recordings), one task's `mess extract` is killed with SIGKILL while it runs, and the
# test checks that Slurm ran that task again (requeue, attempt 2), that the merge job ran after every task,
# and that the merged data root equals a single-machine run (tests/deploy/compare_runs.py).
# Needs slurmctld, slurmd, slurm-client, munge (scripts/setup deploy). About 30 s.
source "$(dirname "$0")/lib.sh"
source "$SRC/tests/deploy/slurm_cluster.sh"
for tool in slurmctld slurmd sbatch munged; do command -v $tool > /dev/null || fail "$tool missing: run scripts/setup deploy"; done

make_corpus "$WORK/corpus" 3 2
dataset=(--audio-dir "$WORK/corpus/audio" --dataset-id tiny)
log "single-machine run"
single=$WORK/single
for step in "extract ${dataset[*]} --model dsp --threads 1" "targets ${dataset[*]}" "index build ${dataset[*]} --kind track" \
            "index build ${dataset[*]} --kind clip"; do
  # shellcheck disable=SC2086
  "$MESS" --data-root "$single" $step > "$WORK/single.log" 2>&1 || { cat "$WORK/single.log"; fail "single run: mess $step"; }
done

log "starting a one-node Slurm cluster"
start_slurm
export MESS MESS_DATA_ROOT=$WORK/cluster MESS_DATASET_ARGS="${dataset[*]}" MESS_MODEL=dsp MESS_MAX_RETRIES=2
# A wrapper around mess for the array: shard 1's first attempt starts mess extract and freezes it at once
# (SIGSTOP), so that the SIGKILL below lands mid-run however fast the machine is.
cat > "$WORK/mess-slow-first" <<WRAP
#!/usr/bin/env bash
if [[ \${SLURM_ARRAY_TASK_ID:-} == 1 && \${SLURM_RESTART_COUNT:-0} == 0 && \$1 == extract ]]; then
  "$MESS" "\$@" &
  pid=\$!
  kill -STOP \$pid
  echo \$pid > "$WORK/victim.pid"
  wait \$pid
  exit \$?
fi
exec "$MESS" "\$@"
WRAP
chmod +x "$WORK/mess-slow-first"
MESS=$WORK/mess-slow-first
read -r array merge < <("$SRC/deploy/slurm/submit.sh" 3 --output="$WORK/job-%A_%a.out")
log "submitted array $array, merge $merge"
wait_for 60 test -s "$WORK/victim.pid" || fail "shard 1 never started"
victim=$(cat "$WORK/victim.pid")
kill -KILL "$victim" 2>/dev/null || fail "shard 1's mess extract (pid $victim) had already ended: nothing to kill"
log "killed shard 1's mess extract (pid $victim)"
# Slurm makes a requeued job eligible again only after a delay (reason BeginTime, about 2 min); bring it
# forward so that the test does not wait.
requeued() { squeue -h -r -j "$array" -o '%i %r' | grep -q "_1 BeginTime"; }
wait_for 30 requeued || { squeue -r; cat "$WORK/job-${array}_1.out"; fail "shard 1 was not requeued"; }
scontrol update JobId="${array}_1" StartTime=now
wait_for 120 bash -c "squeue -h -j $array,$merge | grep -q . && exit 1 || exit 0" || { squeue; fail "jobs still queued after 120 s"; }
out1=$WORK/job-${array}_1.out
grep -q "attempt 2" "$out1" || { cat "$out1"; fail "shard 1 was not retried"; }
grep -q "requeued" "$out1" || { cat "$out1"; fail "shard 1 did not ask for a requeue"; }
state=$(scontrol show job "$merge" | grep -o 'JobState=[A-Z]*')
[[ $state == JobState=COMPLETED ]] || { cat "$WORK/job-${merge}"*.out 2>/dev/null; fail "merge job: $state"; }
for i in 0 1 2; do
  f=$MESS_DATA_ROOT/embeddings/tiny-emb/extract_report.shard${i}of3.json
  test -s "$f" || fail "no report of shard $i"
done
$PY "$SRC/tests/deploy/compare_runs.py" "$single" "$MESS_DATA_ROOT" tiny
log "PASS: Slurm array with a killed and requeued task, merge equals the single-machine run"
