"""Runner protocol adapter for Open-Sora 2.0 (the `runner = "opensora"` catalog entries).

Speaks the same JSON lines as `python -m framecast.runner serve` (RunRequest in on stdin,
RunnerEvent out on stdout, logs on stderr) and runs each job through Open-Sora's own
inference script, then re-encodes its frames with the framecast encoder settings so
`video.mp4`, `poster.jpg` and `frames_digest` mean the same as for diffusers models.

Limits, on purpose for a first version: one Open-Sora process per job (no warm model),
progress is reported at start and end only, cancel stops the job by killing that process.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from framecast.runner.environment import describe_environment
from framecast.runner.video import encoder_description, frames_digest, write_poster, write_video
from framecast.shared.runner_protocol import (
    RunnerEvent,
    RunOutput,
    RunRequest,
    decode_inbound,
    encode_line,
    failed_event,
)

OPENSORA_DIR = Path(os.environ.get("OPENSORA_DIR", "/opt/opensora"))
# Open-Sora reads its checkpoints from ./ckpts; the image links that to the weights mount.
CONFIGS = {256: "configs/diffusion/inference/256px.py", 768: "configs/diffusion/inference/768px.py"}


def _emit(event: RunnerEvent) -> None:
    sys.stdout.buffer.write(encode_line(event))
    sys.stdout.buffer.flush()


def _command(request: RunRequest, save_dir: Path) -> list[str]:
    spec = request.spec
    resolution = 256 if max(spec.width, spec.height) <= 256 else 768
    command = [
        "torchrun", "--standalone", "--nproc_per_node", "1",
        "scripts/diffusion/inference.py", CONFIGS[resolution],
        "--save-dir", str(save_dir),
        "--prompt", spec.prompt,
        "--sampling_option.num_frames", str(spec.num_frames),
        "--sampling_option.num_steps", str(spec.steps),
        "--sampling_option.seed", str(spec.seed),
        "--sampling_option.aspect_ratio", f"{spec.width}:{spec.height}",
    ]  # fmt: skip
    if spec.inputs.image and request.inputs_dir:
        command += [
            "--cond_type",
            "i2v_head",
            "--ref",
            str(Path(request.inputs_dir) / spec.inputs.image),
        ]
    return command


def run_job(request: RunRequest) -> RunnerEvent:
    """One job: Open-Sora in a subprocess, then framecast's encoder over its frames."""
    _emit(RunnerEvent(job_id=request.job_id, status="starting"))
    out_dir = Path(request.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        proc = subprocess.run(
            _command(request, Path(tmp)), cwd=OPENSORA_DIR, stdout=sys.stderr, check=False
        )
        if proc.returncode != 0:
            kind = "oom" if proc.returncode in (-signal.SIGKILL, 137) else "crash"
            return failed_event(
                request.job_id,
                kind,
                f"Open-Sora inference exited with {proc.returncode}",
                fix="read the runner log (stderr)",
            )
        videos = sorted(Path(tmp).rglob("*.mp4"))
        if not videos:
            return failed_event(request.job_id, "crash", "Open-Sora wrote no video")
        frames = np.stack(list(iio.imiter(videos[0])))
    digest = frames_digest(frames)
    video_sha = write_video(frames, out_dir / "video.mp4", request.spec.fps)
    write_poster(frames, out_dir / "poster.jpg")
    assert hashlib.sha256((out_dir / "video.mp4").read_bytes()).hexdigest() == video_sha
    return RunnerEvent(
        job_id=request.job_id,
        status="succeeded",
        progress=1.0,
        output=RunOutput(
            video_sha256=video_sha,
            frames_digest=digest,
            num_frames=frames.shape[0],
            width=frames.shape[2],
            height=frames.shape[1],
            fps=request.spec.fps,
            environment=describe_environment("cuda", encoder_description()),
        ),
    )


def main() -> int:
    for raw in sys.stdin.buffer:
        if not raw.strip():
            continue
        try:
            message = decode_inbound(raw)
        except ValueError as exc:
            job_id = json.loads(raw).get("job_id", "unknown") if raw.startswith(b"{") else "unknown"
            _emit(failed_event(job_id, "invalid_input", f"malformed request: {exc}"))
            continue
        if message.type == "shutdown":
            return 0
        if message.type == "run":
            _emit(run_job(message))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
