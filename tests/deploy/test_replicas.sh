#!/usr/bin/env bash
# Three `mess serve` replicas behind nginx (deploy/nginx/mess.conf, ports replaced), index artifacts from
# the S3 test server (s3rver), one PostgreSQL catalog shared by the replicas (`--catalog`: /api/tracks
# lists and searches it), under a wrk load through nginx (count_failures.lua counts every non-2xx):
#   1. publish a new version → every replica serves it within 10 s, 0 failed requests;
#   2. publish a version and corrupt one of its objects → every replica refuses it, keeps serving the
#      last good one and stays ready, 0 failed requests;
#   3. kill -9 one replica → 0 failed requests (nginx retries on the next replica);
#   4. restart it → it is ready again and nginx sends it requests, 0 failed requests.
# During phase 1 a track's title is changed in the catalog (`mess catalog export`, edit, `import`): every
# replica must find it by text search at once (no reload), and again after the kill -9 and the restart.
# Needs nginx (scripts/setup deploy), wrk, s3rver, postgresql (scripts/setup). About 60 s.
source "$(dirname "$0")/lib.sh"
command -v nginx > /dev/null || fail "nginx missing: run scripts/setup deploy"
command -v wrk > /dev/null || fail "wrk missing: run scripts/setup"
s3rver=$SRC/tools/s3rver/node_modules/.bin/s3rver
[[ -x $s3rver ]] || fail "s3rver missing: run scripts/setup"

make_corpus "$WORK/corpus" 3 2
start_postgres
export MESS_CATALOG=$CATALOG_URL  # the builder registers the dataset's tracks there
data=$WORK/build
ds=(--audio-dir "$WORK/corpus/audio" --dataset-id tiny)
"$MESS" --data-root "$data" extract "${ds[@]}" --model dsp --threads 1 > "$WORK/extract.log" 2>&1 || { cat "$WORK/extract.log"; fail extract; }
build_version() {  # prints the new track-index artifact directory
  "$MESS" --data-root "$data" index build --json "${ds[@]}" --kind track > "$WORK/build.json" 2>> "$WORK/build.log" || { cat "$WORK/build.log"; fail "index build"; }
  find "$data/indices/track_index" -mindepth 1 -maxdepth 1 -type d ! -name '.*' | sort | tail -n 1
}
s3port=$(free_port)
start s3rver "$s3rver" --silent --address 127.0.0.1 --port "$s3port" --directory "$WORK/s3" --configure-bucket mess
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1 AWS_ENDPOINT_URL=http://127.0.0.1:$s3port
wait_for 20 bash -c "echo > /dev/tcp/127.0.0.1/$s3port" || fail "s3rver did not start"
publish() {  # publish DIR [PREFIX]: prints the version id
  "$MESS" publish --json --index "$1" --to "s3://mess/${2:-prod}" 2>> "$WORK/publish.log" | $PY -c 'import json,sys; print(json.load(sys.stdin)["version_id"])'
}
v1=$(publish "$(build_version)")
log "published $v1"

ports=() rpids=()
start_replica() {  # start_replica I: replica I on ${ports[I]}, its own data root (its pull cache)
  start "replica$1" "$MESS" --data-root "$WORK/replica$1" --catalog "$CATALOG_URL" serve --index s3://mess/prod --host 127.0.0.1 --port "${ports[$1]}" \
    --reload-interval 1 --max-client-connections 1024 --max-client-requests 64
  rpids[$1]=$LAST_PID
}
for i in 1 2 3; do ports[$i]=$(free_port); start_replica "$i"; done
proxy=$(free_port)
mkdir -p "$WORK/nginx"
sed -e "s/127.0.0.1:8080/127.0.0.1:$proxy/" -e "s/127.0.0.1:8081/127.0.0.1:${ports[1]}/" -e "s/127.0.0.1:8082/127.0.0.1:${ports[2]}/" \
    -e "s/127.0.0.1:8083/127.0.0.1:${ports[3]}/" "$SRC/deploy/nginx/mess.conf" > "$WORK/nginx/mess.conf"
cat > "$WORK/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log $WORK/nginx/access.log;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    include $WORK/nginx/mess.conf;
}
CONF
start nginx nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf"
version_of() { curl -fsS --max-time 2 "http://127.0.0.1:${ports[$1]}/health" | $PY -c 'import json,sys; print(json.load(sys.stdin)["indexes"]["track"]["version_id"])'; }
all_serve() { for i in 1 2 3; do [[ $(version_of "$i") == "$1" ]] || return 1; done; }
wait_for 60 all_serve "$v1" || { tail -5 "$WORK"/replica*.log; fail "replicas did not load $v1"; }
wait_for 10 http_ok "http://127.0.0.1:$proxy/health/ready" || { cat "$WORK/nginx/error.log"; fail "nginx does not answer"; }
track=$(curl -fsS "http://127.0.0.1:$proxy/api/tracks?limit=1" | $PY -c 'import json,sys; print(json.load(sys.stdin)["tracks"][0]["track_id"])')
export PATHS="/api/tracks?limit=5 /api/tracks?q=piece&limit=3 /api/tracks/$track/similar?k=3 /api/datasets /health/ready"
# catalog_search I TEXT: replica I's /api/tracks?q=TEXT (answered from the catalog); prints "total track_id"
catalog_search() {
  curl -fsS --max-time 2 --get --data-urlencode "q=$2" "http://127.0.0.1:${ports[$1]}/api/tracks" |
    $PY -c 'import json,sys; j=json.load(sys.stdin); print(j["total"], j["tracks"][0]["track_id"] if j["tracks"] else "-")'
}
# renamed_everywhere TRACK I...: each replica I finds TRACK, alone, by its new catalog title
renamed_everywhere() {
  local t=$1 i
  shift
  for i in "$@"; do [[ $(catalog_search "$i" "shared catalog nocturne") == "1 $t" ]] || return 1; done
}
for i in 1 2 3; do
  [[ $(catalog_search "$i" "") == "6 "* ]] || fail "replica $i does not list the catalog's 6 tracks: $(catalog_search "$i" "")"
done

# load SECONDS NAME: wrk through nginx in the background; check_load NAME: its result must show 0 failures
load() { start "wrk-$2" wrk -t 1 -c 4 -d "$1s" -s "$SRC/tests/deploy/count_failures.lua" "http://127.0.0.1:$proxy"; WRK_PID=$LAST_PID; }
check_load() {
  wait "$WRK_PID" || fail "wrk ($1) failed: $(cat "$WORK/wrk-$1.log")"
  local line
  line=$(grep '^requests' "$WORK/wrk-$1.log") || fail "wrk ($1) printed no summary: $(cat "$WORK/wrk-$1.log")"
  log "$1: $line"
  [[ $line =~ non2xx\ 0\ socket_errors\ 0 ]] || fail "$1: failed requests: $line"
  [[ $line =~ ^requests\ ([0-9]+) ]] && ((BASH_REMATCH[1] > 50)) || fail "$1: too few requests: $line"
}

log "1. publish a new version under load"
load 12 publish
sleep 1
t0=$SECONDS
v2=$(publish "$(build_version)")
wait_for 10 all_serve "$v2" || fail "not every replica serves $v2 10 s after its publication"
log "every replica serves $v2 after $((SECONDS - t0)) s"
renamed=$(curl -fsS "http://127.0.0.1:$proxy/api/tracks?limit=1&offset=4" | $PY -c 'import json,sys; print(json.load(sys.stdin)["tracks"][0]["track_id"])')
"$MESS" --data-root "$data" catalog export "${ds[@]}" --file "$WORK/meta.csv" > /dev/null
$PY - "$WORK/meta.csv" "$renamed" <<'EDIT'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="", encoding="utf-8")))
fields = list(rows[0].keys()) + (["title"] if "title" not in rows[0] else [])
for r in rows:
    r["title"] = "Shared catalog nocturne" if r["track_id"] == sys.argv[2] else r.get("title", "")
with open(sys.argv[1], "w", newline="", encoding="utf-8") as f:
    w = csv.DictWriter(f, fieldnames=fields)
    w.writeheader()
    w.writerows(rows)
EDIT
"$MESS" --data-root "$data" catalog import "${ds[@]}" --file "$WORK/meta.csv" > /dev/null || fail "catalog import"
renamed_everywhere "$renamed" 1 2 3 || fail "not every replica finds $renamed by its new title in the shared catalog"
log "every replica finds $renamed by the title the shared catalog gave it under load"
check_load publish

log "2. publish a corrupt version under load"
load 8 corrupt
sleep 1
# published under staging/, corrupted there, then named by prod's latest.json in one write: the replicas
# never see the version intact
v3=$(publish "$(build_version)" staging)
$PY "$SRC/tests/deploy/s3_corrupt.py" mess staging prod track_index index.faiss > /dev/null
sleep 4  # several reload intervals
for i in 1 2 3; do
  [[ $(version_of "$i") == "$v2" ]] || fail "replica $i does not serve the last good version $v2"
  http_ok "http://127.0.0.1:${ports[$i]}/health/ready" || fail "replica $i is not ready after the corrupt version"
  curl -fsS "http://127.0.0.1:${ports[$i]}/health" | grep -q "corrupt" || fail "replica $i does not report the refused version $v3: $(curl -sS "http://127.0.0.1:${ports[$i]}/health")"
done
check_load corrupt

log "3. kill -9 one replica under load"
load 6 kill
sleep 1
kill -KILL "${rpids[2]}"
sleep 1
renamed_everywhere "$renamed" 1 3 || fail "replicas 1 and 3 do not answer /api/tracks from the catalog after the kill -9"
[[ $(curl -fsS --get --data-urlencode "q=shared catalog nocturne" "http://127.0.0.1:$proxy/api/tracks" |
     $PY -c 'import json,sys; print(json.load(sys.stdin)["total"])') == 1 ]] || fail "nginx: /api/tracks after the kill -9"
check_load kill

log "4. restart it under load"
load 10 restart
sleep 1
start_replica 2
wait_for 8 http_ok "http://127.0.0.1:${ports[2]}/health/ready" || fail "replica 2 not ready after its restart"
[[ $(version_of 2) == "$v2" ]] || fail "restarted replica 2 serves $(version_of 2), not $v2"
renamed_everywhere "$renamed" 1 2 3 || fail "not every replica answers /api/tracks from the catalog after the restart"
check_load restart
served=$(curl -fsS "http://127.0.0.1:${ports[2]}/metrics" | awk '/^mess_http_requests_total/ && /code="2xx"/ && !/route="\/metrics"/ {s += $2} END {print s + 0}')
((served > 0)) || fail "nginx sent the restarted replica no request"
log "restarted replica answered $served requests"
log "PASS: replicas behind nginx sharing a PostgreSQL catalog: new version, corrupt version, kill -9 and restart without a failed request"
