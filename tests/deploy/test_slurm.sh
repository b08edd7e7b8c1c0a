#!/usr/bin/env bash
# Slurm for real: a one-node cluster on localhost (munged, slurmctld, slurmd; tests/deploy/slurm_cluster.sh),
# deploy/slurm/submit.sh submits the 3-task extraction array and the dependent merge job over a corpus
# rendered here (6 recordings), one task's `mess extract` is killed with SIGKILL while it runs, and the
# test checks that Slurm ran that task again (requeue, attempt 2), that the merge job ran after every task,
# and that the merged data root equals a single-machine run (tests/deploy/compare_runs.py).
# Every task and the merge job share one PostgreSQL catalog (MESS_CATALOG): while shard 1 waits for its
# retry, `mess runs shards --check` (the merge job's check) must refuse, naming shard 1/3 as running; at
# the end the catalog must hold the three shards done (shard 1 in 2 attempts, its killed run closed as
# interrupted), the counts of every shard and the six tracks' states (tests/deploy/check_shards.py).
# Needs slurmctld, slurmd, slurm-client, munge (scripts/setup deploy), postgresql (scripts/setup). About 25 s.
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

log "starting PostgreSQL (the catalog of every task) and a one-node Slurm cluster"
start_postgres
start_slurm
export MESS MESS_DATA_ROOT=$WORK/cluster MESS_DATASET_ARGS="${dataset[*]}" MESS_MODEL=dsp MESS_MAX_RETRIES=2 \
  MESS_CATALOG=$CATALOG_URL
# Shard 1's first attempt is killed with SIGKILL after the catalog shows it running and before it records
# its end, however fast the machine is: a session holds an exclusive lock on the tracks' extraction states,
# so every task waits in its last write (after its reports), and shard 1's waits when it is killed.
"$MESS" runs list > /dev/null  # creates the catalog's tables
lock_url="$CATALOG_URL&application_name=mess-test-lock"
start pglock psql "$lock_url" -v ON_ERROR_STOP=1 -c "BEGIN; LOCK TABLE extractions IN EXCLUSIVE MODE; SELECT pg_sleep(600);"
locked() { [[ $(psql "$CATALOG_URL" -Atc "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                WHERE c.relname = 'extractions' AND l.mode = 'ExclusiveLock' AND l.granted") == 1 ]]; }
wait_for 20 locked || { cat "$WORK/pglock.log"; fail "could not lock the extraction states"; }
cat > "$WORK/mess-victim" <<WRAP
#!/usr/bin/env bash
if [[ \${SLURM_ARRAY_TASK_ID:-} == 1 && \${SLURM_RESTART_COUNT:-0} == 0 && \$1 == extract ]]; then
  "$MESS" "\$@" &
  echo \$! > "$WORK/victim.pid"
  wait \$!
  exit \$?
fi
exec "$MESS" "\$@"
WRAP
chmod +x "$WORK/mess-victim"
MESS=$WORK/mess-victim
read -r array merge < <("$SRC/deploy/slurm/submit.sh" 3 --output="$WORK/job-%A_%a.out")
log "submitted array $array, merge $merge"
wait_for 90 test -s "$MESS_DATA_ROOT/embeddings/tiny-emb/extract_report.shard1of3.json" || fail "shard 1 never wrote its report"
victim=$(cat "$WORK/victim.pid")
kill -KILL "$victim" 2>/dev/null || fail "shard 1's mess extract (pid $victim) had already ended: nothing to kill"
log "killed shard 1's mess extract (pid $victim) while it waited to record its end"
psql "$CATALOG_URL" -Atc "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'mess-test-lock'" > /dev/null
# Slurm makes a requeued job eligible again only after a delay (reason BeginTime, about 2 min); bring it
# forward so that the test does not wait.
requeued() { squeue -h -r -j "$array" -o '%i %r' | grep -q "_1 BeginTime"; }
wait_for 30 requeued || { squeue -r; cat "$WORK/job-${array}_1.out"; fail "shard 1 was not requeued"; }
# The merge job's check, now: shard 1's killed attempt never recorded its end.
if "$MESS" runs shards "${dataset[@]}" --model dsp --count 3 --check > /dev/null 2> "$WORK/check-early.log"; then
  fail "runs shards --check passed while shard 1 waited for its retry"
fi
grep -q "shard 1/3 running since" "$WORK/check-early.log" || { cat "$WORK/check-early.log"; fail "the check did not name shard 1/3"; }
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
"$MESS" runs shards "${dataset[@]}" --model dsp --count 3 --check --json > "$WORK/shards.json" || fail "runs shards --check after the merge"
"$MESS" runs list --kind extract --limit 0 --json > "$WORK/runs.json"
"$MESS" runs shards "${dataset[@]}" --model dsp --count 4 --check > /dev/null 2> "$WORK/check-4.log" && fail "--count 4 passed"
grep -q "shard 3/4 missing" "$WORK/check-4.log" || { cat "$WORK/check-4.log"; fail "the check did not name a missing shard"; }
$PY "$SRC/tests/deploy/check_shards.py" "$WORK/shards.json" "$WORK/runs.json" --tracks 6 --killed 1
"$MESS" runs shards "${dataset[@]}" --model dsp
log "PASS: Slurm array with a killed and requeued task, shard states in PostgreSQL, merge equals the single-machine run"
