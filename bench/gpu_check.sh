#!/usr/bin/env bash
# One GPU check from nothing but the repository (bench/README.md, "GPU check"):
#
#   1. install: .venv with torch (the CUDA build from PyPI when nvidia-smi exists), then
#      `make setup` for everything else (framecast, diffusers, anvil);
#   2. bench/gpu_check.py: CogVideoX-2b's real architecture with random weights built on
#      the GPU (no hub), one job through a devnet, a provider node (process runtime, CUDA)
#      and a client, at reduced steps; the frames digest of a replay in a second runner
#      process must equal the delivered one;
#   3. bench/pipeline_gpu.py: seconds per video, plain / compiled / with caches (marked
#      non-replayable).
#
# Usage: bench/gpu_check.sh [--cpu]     (or FRAMECAST_GPU_CHECK_CPU=1)
#   --cpu                 the same steps on CPU with narrowed widths: proves the script
#   TORCH_INDEX_URL=URL   where the CUDA torch comes from (default PyPI, whose Linux wheel is
#                         the CUDA build; e.g. https://download.pytorch.org/whl/cu126 for
#                         the runner image's CUDA 12.6 on an older driver)
#   BENCH_STEPS=N         denoising steps of the benchmark table (default 20 on a GPU, so
#                         the whole check stays under 8 minutes; 50 is the model card's)
#   BENCH_VARIANTS=LIST   benchmark variants (default plain,compile,first-block-cache,
#                         pyramid-attention-broadcast)
set -euo pipefail
cd "$(dirname "$0")/.."

cpu="${FRAMECAST_GPU_CHECK_CPU:-0}"
for arg in "$@"; do
  case "$arg" in
    --cpu) cpu=1 ;;
    -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "error: unknown argument $arg (use --cpu or nothing)" >&2; exit 2 ;;
  esac
done
# The one torch pin, read from pyproject.toml so the two never disagree.
torch_version="$(sed -n 's/.*"torch==\([^"]*\)".*/\1/p' pyproject.toml | head -n1)"
python="${PYTHON:-python3}"
start=$SECONDS
stage() { printf '\n== %s (at %d s)\n' "$1" $((SECONDS - start)); }

stage "install"
[ -x .venv/bin/python ] || "$python" -m venv .venv
if [ "$cpu" = 1 ]; then
  device=cpu
  .venv/bin/python -c 'import torch' 2>/dev/null \
    || .venv/bin/pip install -q --disable-pip-version-check "torch==$torch_version"
else
  device=cuda
  if ! command -v nvidia-smi >/dev/null; then
    echo "error: no nvidia-smi on this host: the GPU check needs an NVIDIA GPU and driver;" \
      "run bench/gpu_check.sh --cpu for the CPU self-check" >&2
    exit 2
  fi
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  if ! .venv/bin/python -c 'import sys, torch; sys.exit(0 if torch.version.cuda else 1)' \
    2>/dev/null; then
    # A CPU wheel (what `make setup` installs on a machine without a GPU) is replaced.
    # --isolated: no pip.conf find-links or mirror may slip the CPU wheel back in.
    .venv/bin/pip uninstall -q -y torch 2>/dev/null || true
    .venv/bin/pip install -q --disable-pip-version-check --isolated \
      --index-url "${TORCH_INDEX_URL:-https://pypi.org/simple}" "torch==$torch_version"
  fi
fi
# Everything else; the torch in place satisfies the extra's torch pin, so make keeps it.
make setup
.venv/bin/python - "$device" <<'PY'
import sys, torch
device = sys.argv[1]
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), device {device}")
if device == "cuda" and not torch.cuda.is_available():
    sys.exit("error: torch has CUDA but sees no usable GPU (driver too old for CUDA "
             f"{torch.version.cuda}, or no device visible); see nvidia-smi")
if device == "cuda":
    print(f"GPU: {torch.cuda.get_device_name(0)}")
PY

stage "one job through the node, replayed in a second process"
if [ "$cpu" = 1 ]; then
  .venv/bin/python bench/gpu_check.py --cpu
else
  .venv/bin/python bench/gpu_check.py
fi

stage "seconds per video (bench/pipeline_gpu.py)"
if [ "$cpu" = 1 ]; then
  # No compile on CPU: it needs a C compiler, and the CPU table is only a self-check.
  .venv/bin/python bench/pipeline_gpu.py --smoke --repeats 1 \
    --variants "${BENCH_VARIANTS:-plain,first-block-cache,pyramid-attention-broadcast}"
else
  .venv/bin/python bench/pipeline_gpu.py --repeats 1 --steps "${BENCH_STEPS:-20}" \
    --variants "${BENCH_VARIANTS:-plain,compile,first-block-cache,pyramid-attention-broadcast}"
fi

total=$((SECONDS - start))
stage "done: gpu check passed in $total s"
if [ "$cpu" != 1 ] && [ "$total" -gt 480 ]; then
  echo "note: over the 8-minute target; lower BENCH_STEPS or trim BENCH_VARIANTS" >&2
fi
