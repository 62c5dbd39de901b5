#!/usr/bin/env bash
# Build the CPU runner test image offline (no image registry is reachable here):
#   debootstrap a Debian bookworm minbase rootfs with python3, pip-install CPU torch, the
#   pipeline libraries and the framecast runner into it, add a non-root user, `docker import`.
#
# Usage: docker/test-image/build.sh            (needs root for debootstrap and a running dockerd)
# Prints the image ID (sha256:...) on stdout; logs go to stderr. The image is tagged
# framecast-runner-cpu:<hash of the inputs>, so a rebuild with unchanged inputs is a no-op.
# The ID is also written to .cache/docker/runner-cpu.image for tests and benchmarks.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/../.." && pwd)"
CACHE="${FRAMECAST_DOCKER_CACHE:-$REPO/.cache/docker}"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
IMAGE_REPO="framecast-runner-cpu"
SUITE=bookworm
# Mirror: the host's apt source (a snapshot mirror in CI may replace it).
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# The uid the runner runs as; bind-mounted job dirs are chowned to it by the runtime.
RUNNER_UID=10001

log() { printf '[build-image %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

mkdir -p "$CACHE"
[[ -x "$PYTHON" ]] || { log "no $PYTHON: run \`make setup\` first"; exit 1; }
command -v docker >/dev/null || { log "no docker CLI: run \`make docker-setup\`"; exit 1; }
docker info >/dev/null 2>&1 || {
  log "Docker daemon not running: start it with \`dockerd --iptables=false --bridge=none &\` as root"
  exit 1
}

# Pin the image's Python packages to exactly what the host venv runs (same torch, diffusers,
# transformers), so the Docker and process runtimes execute the same library versions.
CONSTRAINTS="$CACHE/constraints.txt"
"$PYTHON" -m pip freeze --disable-pip-version-check --exclude-editable \
  | grep -v -E '^(framecast|-e )' >"$CONSTRAINTS.new"
mv "$CONSTRAINTS.new" "$CONSTRAINTS"

# Content hash of what the runner executes: this script, the package metadata, the sources
# of shared/ and the runner, and the pinned versions. (client/ and node/ get installed too,
# as part of the one framecast distribution, but never run in the image: no rebuild for them.)
input_hash() {
  {
    # Paths relative to the repo: the hash must not depend on how the script was invoked.
    (cd "$REPO" && sha256sum docker/test-image/build.sh pyproject.toml)
    sha256sum <"$CONSTRAINTS"
    (cd "$REPO" && git ls-files -co --exclude-standard -- shared docker/runner \
      | grep -E '\.(py|json|typed|txt|model)$' | LC_ALL=C sort | xargs -r sha256sum)
  } | sha256sum | cut -c1-16
}
TAG="$(input_hash)"
IMAGE="$IMAGE_REPO:$TAG"

if ID="$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null)"; then
  log "$IMAGE is up to date ($ID)"
  echo "$ID" | tee "$CACHE/runner-cpu.image"
  exit 0
fi

START=$SECONDS
# 1. Base rootfs, cached as a tarball: debootstrap is the slow, network-bound step.
BASE_TAR="$CACHE/rootfs-$SUITE-minbase-python3.tar"
if [[ ! -s "$BASE_TAR" ]]; then
  [[ $EUID -eq 0 ]] || { log "debootstrap needs root"; exit 1; }
  command -v debootstrap >/dev/null || { log "no debootstrap: run \`make docker-setup\`"; exit 1; }
  TMP_ROOT="$(mktemp -d "$CACHE/debootstrap.XXXXXX")"
  log "debootstrap $SUITE minbase + python3 from $MIRROR"
  debootstrap --variant=minbase --include=python3 "$SUITE" "$TMP_ROOT" "$MIRROR" >&2
  # Trim what a runner never reads: docs, man pages, locales, apt caches.
  rm -rf "$TMP_ROOT"/usr/share/{doc,man,info,locale}/* "$TMP_ROOT"/var/cache/apt/* \
    "$TMP_ROOT"/var/lib/apt/lists/* "$TMP_ROOT"/var/log/*
  tar -C "$TMP_ROOT" -cf "$BASE_TAR.new" .
  mv "$BASE_TAR.new" "$BASE_TAR"
  rm -rf "$TMP_ROOT"
fi

ROOT="$(mktemp -d "$CACHE/rootfs.XXXXXX")"
trap 'rm -rf "$ROOT"' EXIT
tar -C "$ROOT" -xf "$BASE_TAR"
log "base rootfs ready ($((SECONDS - START)) s)"

# 2. Python packages into /opt/framecast/site with the host pip: the host Python is 3.11 like
# bookworm's, so the wheels and the byte-compiled .pyc files fit. torch comes from the local
# CPU wheel through the host's pip config (find-links).
SITE="$ROOT/opt/framecast/site"
mkdir -p "$SITE"
"$PYTHON" -m pip install --disable-pip-version-check --no-cache-dir -q \
  --target "$SITE" --constraint "$CONSTRAINTS" "$REPO[pipelines]" 2>&1 \
  | { grep -v 'is ignored: it is neither a file nor a directory' || true; } >&2
# Not needed at run time: C++ headers (only for building extensions or torch.compile),
# pip metadata scripts, test folders of the big libraries.
rm -rf "$SITE"/torch/include "$SITE"/bin "$SITE"/torch/test "$SITE"/caffe2
find "$SITE" -depth -type d -name tests -path '*/numpy/*' -exec rm -rf {} +
log "python packages installed ($((SECONDS - START)) s)"

# 3. Non-root user, written straight into the passwd/group files (no chroot needed).
echo "runner:x:$RUNNER_UID:$RUNNER_UID:framecast runner:/tmp:/usr/sbin/nologin" >>"$ROOT/etc/passwd"
echo "runner:x:$RUNNER_UID:" >>"$ROOT/etc/group"
mkdir -p "$ROOT/weights" "$ROOT/jobs"

# 4. Import. HOME and caches point at /tmp: the root is read-only and the runtime mounts a
# tmpfs there. HF_HUB_OFFLINE because the container has no network at all.
log "docker import $IMAGE"
ID="$(tar -C "$ROOT" -c . | docker import \
  --change "USER $RUNNER_UID:$RUNNER_UID" \
  --change "WORKDIR /tmp" \
  --change "ENV PYTHONPATH=/opt/framecast/site" \
  --change "ENV PYTHONDONTWRITEBYTECODE=1" \
  --change "ENV PYTHONUNBUFFERED=1" \
  --change "ENV HOME=/tmp" \
  --change "ENV XDG_CACHE_HOME=/tmp/.cache" \
  --change "ENV HF_HUB_OFFLINE=1" \
  --change "ENV FRAMECAST_DEVICE=cpu" \
  --change "LABEL org.opencontainers.image.title=framecast-runner-cpu" \
  --change "LABEL io.framecast.inputs=$TAG" \
  --change 'ENTRYPOINT ["python3", "-m", "framecast.runner"]' \
  --change 'CMD ["serve"]' \
  - "$IMAGE")"
docker tag "$ID" "$IMAGE_REPO:latest"
# Older builds are dead weight (1.4 GB each) on CI disks; images still in use stay.
docker image ls --format '{{.Repository}}:{{.Tag}}' "$IMAGE_REPO" \
  | grep -v -x -e "$IMAGE" -e "$IMAGE_REPO:latest" \
  | xargs -r docker rmi >/dev/null 2>&1 || true
SIZE="$(docker image inspect --format '{{.Size}}' "$ID")"
log "built $IMAGE ($ID) in $((SECONDS - START)) s, $((SIZE / 1000000)) MB"
echo "$ID" | tee "$CACHE/runner-cpu.image"
