#!/usr/bin/env bash
# The container image for real, without a registry: a Debian 12 root filesystem made by debootstrap from
# Debian's packages is imported as the base image (once; kept as localhost/mess-debian:12), the
# Containerfile is built with podman (both stages: the build stage compiles mess, so a first run takes as
# long as a release build of mess, 20-60 min on 2 cores), and the image is run as its non-root user over
# an index built here; the test gets /health/ready from the server inside the container, runs the image's
# HEALTHCHECK and checks the user the server runs as.
# `test_container.sh --prebuilt` replaces the build stage by an image holding $MESS (built on this Debian 12
# machine) and builds the Containerfile's runtime stage over it: a few minutes.
# Needs podman, runc, debootstrap (scripts/setup deploy) and Debian's mirror (MESS_DEBIAN_MIRROR, default
# http://deb.debian.org/debian). podman runs with runc, --network host and the ulimits this process has:
# crun refuses hybrid cgroup hierarchies and raising RLIMIT_NPROC/NOFILE without CAP_SYS_RESOURCE.
source "$(dirname "$0")/lib.sh"
for tool in podman runc debootstrap; do command -v $tool > /dev/null || fail "$tool missing: run scripts/setup deploy"; done
pod=(podman --runtime runc)
limits=(--ulimit "nofile=$(ulimit -n):$(ulimit -Hn)" --ulimit "nproc=4096:4096")
base=localhost/mess-debian:12
if ! "${pod[@]}" image exists "$base"; then
  log "debootstrap bookworm (minbase)"
  debootstrap --variant=minbase bookworm "$WORK/rootfs" "${MESS_DEBIAN_MIRROR:-http://deb.debian.org/debian}" > "$WORK/debootstrap.log" 2>&1 ||
    { tail -20 "$WORK/debootstrap.log"; fail "debootstrap"; }
  tar -C "$WORK/rootfs" -c . | "${pod[@]}" import --change 'CMD ["/bin/bash"]' - "$base" > /dev/null
  rm -rf "$WORK/rootfs"
fi
containerfile=$SRC/Containerfile
if [[ ${1:-} == --prebuilt ]]; then
  # The build stage replaced by an image holding $MESS (built on this Debian 12 machine) at the paths the
  # build stage leaves it; the runtime stage is the Containerfile's own, unchanged.
  log "podman build, the build stage replaced by $MESS (--prebuilt)"
  mkdir -p "$WORK/bin/build/apps/mess" "$WORK/bin/out/web"
  cp "$MESS" "$WORK/bin/build/apps/mess/mess"
  [[ -d $SRC/web/dist ]] && cp -r "$SRC/web/dist/." "$WORK/bin/out/web/"
  tar -C "$WORK/bin" -c . | "${pod[@]}" import - localhost/mess-binaries:test > /dev/null
  awk '/^FROM .* AS build$/ {print "FROM localhost/mess-binaries:test AS build"; skip = 1; next}
       /^FROM / {skip = 0} !skip' "$SRC/Containerfile" > "$WORK/Containerfile"
  grep -q '^FROM localhost/mess-binaries:test AS build$' "$WORK/Containerfile" || fail "no build stage to replace in the Containerfile"
  containerfile=$WORK/Containerfile
else
  log "podman build (the build stage compiles mess)"
fi
"${pod[@]}" build --format docker --network host "${limits[@]}" --build-arg "BASE=$base" -t localhost/mess:test -f "$containerfile" "$SRC" \
  > "$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; fail "podman build"; }
user=$("${pod[@]}" image inspect localhost/mess:test --format '{{.Config.User}}')
[[ $user == 10001:10001 ]] || fail "image user is '$user'"
health=$("${pod[@]}" image inspect localhost/mess:test --format '{{json .Config.Healthcheck}}' 2>/dev/null || true)
env=$("${pod[@]}" image inspect localhost/mess:test --format "{{json .Config.Env}}")
[[ $health == *MESS_HEALTH_URL* && $env == *MESS_HEALTH_URL=http://127.0.0.1:8080/health/ready* ]] || fail "the image has no health check on /health/ready: $health $env"

log "an index to serve"
make_corpus "$WORK/corpus" 2 2
"$MESS" --data-root "$WORK/data" extract --audio-dir "$WORK/corpus/audio" --dataset-id tiny --model dsp --threads 1 > "$WORK/extract.log" 2>&1
"$MESS" --data-root "$WORK/data" index build --audio-dir "$WORK/corpus/audio" --dataset-id tiny --kind track --no-media > "$WORK/index.log" 2>&1
chmod -R a+rX "$WORK/data"
port=$(free_port)
name=mess-test-$$
"${pod[@]}" run -d --rm --name "$name" --network host "${limits[@]}" -e "MESS_HEALTH_URL=http://127.0.0.1:$port/health/ready" -v "$WORK/data:/srv/data:ro" localhost/mess:test \
  serve --host 127.0.0.1 --port "$port" --index /srv/data/indices > /dev/null
trap '"${pod[@]}" rm -f "$name" > /dev/null 2>&1 || true; cleanup' EXIT
wait_for 60 http_ok "http://127.0.0.1:$port/health/ready" || { "${pod[@]}" logs "$name" | tail -20; fail "no /health/ready from the container"; }
curl -fsS "http://127.0.0.1:$port/health/ready"
echo
# The image's HEALTHCHECK, run once by hand (podman schedules it with systemd timers, absent here).
"${pod[@]}" healthcheck run "$name" || fail "the image's health check fails on a ready server"
uid=$("${pod[@]}" exec "$name" id -u)
[[ $uid == 10001 ]] || fail "the server runs as uid $uid"
log "PASS: image built from a debootstrap base, server ready in the container as uid $uid"
