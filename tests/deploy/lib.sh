# Shared helpers of the deployment tests (sourced): temporary directory, free ports, waiting, a small
# rendered corpus. Every process a test starts is recorded and ended by its pid on exit.
set -euo pipefail
MESS=${MESS:?set MESS to the mess binary}
SRC=${MESS_SOURCE_DIR:?set MESS_SOURCE_DIR to the source tree}
PY=/usr/bin/python3
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mess-deploy.XXXXXX")
PIDS=()
ON_EXIT=()  # commands run after the recorded processes ended (stopping servers that are not our children)
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for c in "${ON_EXIT[@]}"; do eval "$c" > /dev/null 2>&1 || true; done
  if ((rc == 0)) && [[ -z ${KEEP:-} ]]; then rm -rf "$WORK"; else echo "left $WORK for inspection" >&2; fi
}
trap cleanup EXIT
log() { echo "[$(date +%T)] $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
# start NAME command... : runs it in the background, output in $WORK/NAME.log; sets LAST_PID
start() {
  local name=$1
  shift
  "$@" > "$WORK/$name.log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_for SECONDS command... : retries the command every 0.2 s until it succeeds
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" > /dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}
http_ok() { curl -fsS --max-time 2 "$1" > /dev/null; }
# make_corpus DIR PIECES VARIANTS: MIDI melodies written by make_midi.py, rendered by `mess corpus render`
make_corpus() {
  $PY "$SRC/tests/deploy/make_midi.py" "$1/midi" "$2"
  "$MESS" corpus render --midi "$1/midi" --out "$1" --variants "$3" --max-seconds 12 --sample-rate 16000 > "$WORK/render.log" 2>&1 ||
    { cat "$WORK/render.log"; fail "corpus render"; }
}
# start_postgres: a PostgreSQL server of Debian's package (scripts/setup installs postgresql) in $WORK/pg:
# initdb, a Unix socket only (no TCP), fsync off; run as the postgres account when the test runs as root
# (initdb refuses root). Sets CATALOG_URL, the catalog URL of a fresh database (mess/db.hpp).
start_postgres() {
  local d=$WORK/pg bindir port run_as=()
  bindir=$(pg_config --bindir 2>/dev/null || true)
  [[ -x $bindir/initdb ]] || bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [[ -x $bindir/initdb ]] || fail "PostgreSQL server programs missing: run scripts/setup"
  mkdir -p "$d/socket"
  echo secret > "$d/pw"
  if ((EUID == 0)); then
    chmod 711 "$WORK"
    chown -R postgres "$d"
    run_as=(runuser -u postgres --)
  fi
  "${run_as[@]}" "$bindir/initdb" -D "$d/data" -U mess --auth=scram-sha-256 --pwfile="$d/pw" --no-sync -E UTF8 \
    --locale=C.UTF-8 > "$WORK/initdb.log" 2>&1 || { cat "$WORK/initdb.log"; fail "initdb"; }
  port=$(free_port)
  "${run_as[@]}" "$bindir/pg_ctl" -D "$d/data" -w -s -l "$d/server.log" \
    -o "-c listen_addresses='' -c fsync=off -c full_page_writes=off -p $port -k $d/socket" start ||
    { cat "$d/server.log"; fail "PostgreSQL did not start"; }
  ON_EXIT+=("${run_as[*]} '$bindir/pg_ctl' -D '$d/data' -m immediate -s stop")
  CATALOG_URL="postgresql://mess:secret@/postgres?host=$d/socket&port=$port"
}
