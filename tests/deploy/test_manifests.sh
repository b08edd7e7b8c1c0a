#!/usr/bin/env bash
# The deployment files without a cluster or a container engine (default suite, about 1 s): the Kubernetes
# manifests pass the schema check (check_k8s.py) with probe paths that the server routes, the Containerfile
# passes the structural check (check_containerfile.py), and each checker refuses a broken copy, naming the
# problem (a misspelt field, a rule of admission, a missing route, a root user, no health check).
set -euo pipefail
SRC=${MESS_SOURCE_DIR:?set MESS_SOURCE_DIR}
PY=/usr/bin/python3
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mess-manifests.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
routes=$SRC/src/server/server.cpp
$PY "$SRC/tests/deploy/check_k8s.py" "$SRC/deploy/k8s" "$routes"
$PY "$SRC/tests/deploy/check_containerfile.py" "$SRC/Containerfile"
# refuses FILE SED EXPECTED: a copy of deploy/k8s with FILE edited by SED must fail with EXPECTED in the output
refuses() {
  rm -rf "$WORK/k8s" && cp -r "$SRC/deploy/k8s" "$WORK/k8s"
  sed -i "$2" "$WORK/k8s/$1"
  local out
  if out=$($PY "$SRC/tests/deploy/check_k8s.py" "$WORK/k8s" "$routes" 2>&1); then fail "check_k8s.py accepted $1 edited by '$2'"; fi
  [[ $out == *"$3"* ]] || fail "check_k8s.py on $1 edited by '$2' did not say '$3': $out"
}
refuses api.yaml 's/readinessProbe:/readinesProbe:/' "unknown field 'readinesProbe'"
refuses api.yaml 's|path: /health/ready|path: /health/redy|' "no route /health/redy"
refuses api.yaml 's/port: http}/port: web}/' "is not a container port"
refuses api.yaml 's/replicas: 3/replicas: "3"/' "is not a integer"
refuses extract-job.yaml 's/restartPolicy: Never/restartPolicy: OnFailure/' "needs template.spec.restartPolicy Never"
refuses extract-job.yaml 's/completionMode: Indexed/completionMode: Indexd/' "is not one of"
refuses extract-job.yaml 's/completions: 8/completions: 6/' "--shard-count differs"
refuses storage.yaml 's/ReadWriteMany/ReadWriteAll/' "is not one of"
# containerfile_refuses SED EXPECTED
containerfile_refuses() {
  sed "$1" "$SRC/Containerfile" > "$WORK/Containerfile"
  local out
  if out=$($PY "$SRC/tests/deploy/check_containerfile.py" "$WORK/Containerfile" 2>&1); then fail "check_containerfile.py accepted '$1'"; fi
  [[ $out == *"$2"* ]] || fail "check_containerfile.py with '$1' did not say '$2': $out"
}
containerfile_refuses 's/^USER 10001:10001/USER root/' "non-root USER"
containerfile_refuses '/^HEALTHCHECK/,/^  CMD/d' "no HEALTHCHECK"
containerfile_refuses 's/--from=build /--from=builder /' "names no earlier stage"
containerfile_refuses 's/ --no-install-recommends//' "without --no-install-recommends"
containerfile_refuses 's/^ENTRYPOINT .*/ENTRYPOINT mess/' "shell form"
echo "PASS: manifests and Containerfile valid; 13 broken copies refused"
