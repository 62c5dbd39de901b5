# syntax=docker/dockerfile:1
# The production runner image: CUDA, the framecast diffusers runner, no weights.
#
#   docker build -f docker/runner.cuda.Dockerfile -t framecast/runner-diffusers .
#   docker image inspect --format '{{.Id}}' framecast/runner-diffusers   # pin this in the node
#
# Weights are never baked in: the node mounts WEIGHTS_ROOT/<model> read-only at
# /weights/<model> (`framecast node models pull`), so one image serves every catalog entry
# and a receipt names the image digest and the weights manifest hash separately.
# The container runs with no network, a read-only root, no capabilities and uid 10001
# (see node/runtime/docker.py); everything it writes goes to /tmp (tmpfs) or /jobs.

# Base pinned by digest (linux/amd64 manifest of this tag, as recorded by public projects;
# no registry is reachable from the machine this was written on: re-check before a release
# with `docker buildx imagetools inspect nvidia/cuda:12.6.3-runtime-ubuntu24.04`).
# PyTorch's CUDA wheels bundle their own CUDA libraries; the base provides the userland
# the NVIDIA container toolkit expects, and the driver comes from the host.
FROM nvidia/cuda:12.6.3-runtime-ubuntu24.04@sha256:2c8193530ecc423e0f123d0c85b68a15d1395adcddabfc943e2523dbfde172e1

# torch is pinned to the version the CPU tests run (pyproject's `pipelines` extra), from
# the CUDA wheel index matching the base; diffusers/transformers come from the same extra.
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126
ARG RUNNER_UID=10001

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# Ubuntu 24.04's python3 is 3.12 (framecast needs >= 3.11). No compilers: wheels only.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*

RUN python3 -m venv /opt/framecast \
    && /opt/framecast/bin/pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"

# Only what the package needs; the rest of the repo (contracts, node_modules, .venv) stays
# out (see runner.cuda.Dockerfile.dockerignore).
WORKDIR /src
COPY pyproject.toml constraints.txt ./
COPY shared ./shared
COPY docker/runner ./docker/runner
COPY client ./client
COPY node ./node
# The already installed CUDA torch satisfies the extra's torch==2.13.0 pin; the rest at the
# versions the suite passed with (constraints.txt: replays depend on them byte for byte).
RUN touch README.md \
    && /opt/framecast/bin/pip install -c constraints.txt ".[pipelines]" \
    && rm -rf /src

# The non-root user every runner container runs as; /weights and /jobs are mount points.
RUN groupadd --gid "${RUNNER_UID}" runner \
    && useradd --uid "${RUNNER_UID}" --gid "${RUNNER_UID}" --home-dir /tmp \
       --shell /usr/sbin/nologin --no-create-home runner \
    && mkdir -p /weights /jobs

ENV PATH=/opt/framecast/bin:$PATH \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    HF_HUB_OFFLINE=1 \
    FRAMECAST_DEVICE=cuda \
    CUBLAS_WORKSPACE_CONFIG=:4096:8

USER ${RUNNER_UID}:${RUNNER_UID}
WORKDIR /tmp
LABEL org.opencontainers.image.title="framecast-runner-diffusers" \
      org.opencontainers.image.description="framecast diffusers runner (CUDA), weights mounted at run time"
ENTRYPOINT ["python", "-m", "framecast.runner"]
CMD ["serve"]
