# Shared helpers of the deployment tests (sourced): temporary directory, free ports, waiting, a small
# rendered corpus. Every process a test starts is recorded and ended by its pid on exit.
set -euo pipefail
MESS=${MESS:?set MESS to the mess binary}
SRC=${MESS_SOURCE_DIR:?set MESS_SOURCE_DIR to the source tree}
PY=/usr/bin/python3
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mess-deploy.XXXXXX")
PIDS=()
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
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
