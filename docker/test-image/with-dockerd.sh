#!/usr/bin/env bash
# Run a command with a Docker daemon available: use the one that answers, or (as root)
# start Debian's dockerd for the duration of the command and stop it afterwards.
#   docker/test-image/with-dockerd.sh docker/test-image/build.sh
set -euo pipefail

REPO="$(cd "$(dirname "$0")/../.." && pwd)"
CACHE="${FRAMECAST_DOCKER_CACHE:-$REPO/.cache/docker}"

if docker info >/dev/null 2>&1; then
  exec "$@"
fi
if [[ $EUID -ne 0 ]] || ! command -v dockerd >/dev/null; then
  echo "no Docker daemon answers and this user cannot start one:" \
    "start it with \`dockerd --iptables=false --bridge=none &\` as root" \
    "(install with \`make docker-setup\`)" >&2
  exit 1
fi

mkdir -p "$CACHE"
# No iptables and no default bridge: the runner containers use network_mode=none, and this
# way dockerd also starts inside unprivileged CI sandboxes without netfilter.
dockerd --iptables=false --bridge=none >"$CACHE/dockerd.log" 2>&1 &
DOCKERD_PID=$!
stop() {
  kill "$DOCKERD_PID" 2>/dev/null || true
  wait "$DOCKERD_PID" 2>/dev/null || true
}
trap stop EXIT
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && break
  kill -0 "$DOCKERD_PID" 2>/dev/null || { cat "$CACHE/dockerd.log" >&2; exit 1; }
  sleep 0.5
done
docker info >/dev/null 2>&1 || { echo "dockerd did not come up; see $CACHE/dockerd.log" >&2; exit 1; }
"$@"
