"""`python -m framecast.runner serve | run --request FILE | tiny build|pin|lora | reference`.

stdout carries protocol lines only: the real stdout is kept for events and file
descriptor 1 is pointed at stderr, so a library that prints cannot corrupt the stream.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from pathlib import Path
from typing import BinaryIO

# Offline always, and cuBLAS determinism needs its workspace before CUDA starts.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
#: Set by the process runtime to the node's pid: the runner stops when that parent is gone.
PARENT_PID_ENV = "FRAMECAST_RUNNER_PARENT_PID"


def _protocol_stdout() -> BinaryIO:
    events = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return events


def main(argv: list[str] | None = None) -> int:
    """Entry point of the runner image."""
    parser = argparse.ArgumentParser(prog="python -m framecast.runner")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="serve RunRequests from stdin (JSON lines)")
    run = sub.add_parser("run", help="run one request file (debugging)")
    run.add_argument("--request", type=Path, required=True)
    tiny = sub.add_parser("tiny", help="tiny random-weight models for tests and the demo")
    tiny_sub = tiny.add_subparsers(dest="tiny_command", required=True)
    build = tiny_sub.add_parser("build", help="build a tiny pipeline with save_pretrained")
    build.add_argument("--family", required=True)
    build.add_argument("--out", type=Path, required=True)
    build.add_argument("--seed", type=int, default=0)
    tiny_sub.add_parser("pin", help="rebuild every tiny model and rewrite its manifest")
    lora = tiny_sub.add_parser("lora", help="write a style's tiny LoRA into MODEL_DIR/loras/")
    lora.add_argument("--style", required=True)
    lora.add_argument("--model-dir", type=Path, required=True)
    lora.add_argument("--seed", type=int, default=0)
    reference = sub.add_parser(
        "reference", help="build the CogVideoX-2b architecture with random weights (GPU check)"
    )
    reference.add_argument("--out", type=Path, required=True)
    reference.add_argument("--smoke", action="store_true", help="narrowed widths, for CPU")
    reference.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    reference.add_argument(
        "--pin", action="store_true", help="write its manifest as the catalog entry's (local pin)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("FRAMECAST_LOG_LEVEL", "INFO"),
        stream=sys.stderr,
        format="%(asctime)s runner %(levelname)s %(message)s",
    )

    if args.command == "tiny":
        # Deferred: the environment above must be set before torch is imported.
        from framecast.runner import tiny as tiny_models

        if args.tiny_command == "build":
            print(tiny_models.build_tiny(args.family, args.out, seed=args.seed))
            return 0
        if args.tiny_command == "lora":
            print(tiny_models.build_tiny_lora(args.style, args.model_dir, seed=args.seed))
            return 0
        for entry_id, path in tiny_models.pin_manifests().items():
            print(f"{entry_id}: {path}")
        return 0

    if args.command == "reference":
        from framecast.runner import reference as reference_model

        out = reference_model.save_cogvideox_2b(args.out, args.device, smoke=args.smoke)
        print(out)
        if args.pin:
            print(reference_model.pin_local(out))
        return 0

    if args.command == "serve":
        # Before the heavy imports below: a node killed while its runner loads torch and
        # the model must not leave it running (docs/protocol.md §5, "Lifetime").
        from framecast.runner.lifeline import start_watchdog

        parent = os.environ.get(PARENT_PID_ENV, "")
        start_watchdog(int(parent) if parent.isdigit() else None, stdin_fd=sys.stdin.fileno())

    events = _protocol_stdout()
    lock = threading.Lock()

    # Deferred: stdout is redirected and the environment set before torch is imported.
    from framecast.runner.environment import configure_determinism
    from framecast.runner.serve import JobRunner, serve
    from framecast.shared.runner_protocol import (
        RunnerEvent,
        RunRequest,
        encode_line,
    )

    def emit(event: RunnerEvent) -> None:
        with lock:
            events.write(encode_line(event))

    configure_determinism()
    runner = JobRunner()
    if args.command == "run":
        request = RunRequest.model_validate_json(args.request.read_bytes())
        terminal = runner.execute(request, emit)
        return 0 if terminal.status == "succeeded" else 1
    return serve(sys.stdin.buffer, emit, runner)


if __name__ == "__main__":
    raise SystemExit(main())
