"""The conformance suite every `ContainerRuntime` must pass (docs/protocol.md §5).

Use it by subclassing `RuntimeConformance` in a test module and providing a `runtime`
fixture (class scope is best: the runner stays warm across the suite) that yields a
runtime able to read host paths under pytest's temp dirs (a Docker runtime bind-mounts
them), for example::

    class TestDockerRuntime(RuntimeConformance):
        @pytest.fixture(scope="class")
        def runtime(self, tmp_path_factory):
            rt = DockerRuntime(...)  # decorate with @classmethod under @pytest.fixture
            yield rt
            rt.close()

The model is the tiny CogVideoX pipeline (random weights, pinned manifest), built once
per session by `tiny_cogvideox_dir`.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from framecast.node.runtime.base import ContainerRuntime
from framecast.runner.tiny import build_tiny
from framecast.shared.catalog import TINY_PROMPT, default_spec
from framecast.shared.runner_protocol import RunnerEvent, RunRequest
from framecast.shared.spec import GenerationSpec, parse_spec

TINY_MODEL = "tiny-cogvideox"
#: The suite's job: the tiny entry's catalog defaults (9 frames, 32×32, 2 steps, 8 fps).
TINY_SEED = 42


@pytest.fixture(scope="session")
def tiny_cogvideox_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny CogVideoX pipeline, built with `save_pretrained` once per session."""
    return build_tiny("cogvideox", tmp_path_factory.mktemp("weights") / "tiny-cogvideox")


def _tiny_fields() -> dict[str, Any]:
    return tiny_spec().model_dump(mode="json", exclude_none=True)


def tiny_spec(**changes: Any) -> GenerationSpec:
    """The suite's spec with some fields changed."""
    model = changes.pop("model", TINY_MODEL)
    prompt = changes.pop("prompt", TINY_PROMPT)
    return default_spec(model, prompt, **{"seed": TINY_SEED, **changes})


#: The same job as plain data, for tests that build requests past the catalog check.
TINY_SPEC: dict[str, Any] = _tiny_fields()


class Recorder:
    """Collects the events a runtime reports, optionally acting on them."""

    def __init__(self, action: Callable[[RunnerEvent], None] | None = None) -> None:
        self.events: list[RunnerEvent] = []
        self._action = action

    def __call__(self, event: RunnerEvent) -> None:
        self.events.append(event)
        if self._action is not None:
            self._action(event)


def make_request(job_dir: Path, model_dir: Path, spec: GenerationSpec, job_id: str) -> RunRequest:
    """A request whose output goes under `job_dir/output`."""
    return RunRequest(
        job_id=job_id,
        spec=spec,
        model_dir=str(model_dir),
        output_dir=str(job_dir / "output"),
        inputs_dir=None,
    )


class RuntimeConformance:
    """Behaviour every runtime shares: streaming, warm reuse, failures that leave it usable."""

    timeout_s = 120.0

    @pytest.fixture(scope="class")
    @classmethod
    def runtime(cls) -> ContainerRuntime:
        raise NotImplementedError("subclasses provide the runtime fixture")

    def _run(
        self,
        runtime: ContainerRuntime,
        tmp_path: Path,
        model_dir: Path,
        spec: GenerationSpec,
        job_id: str,
        *,
        timeout_s: float | None = None,
        action: Callable[[RunnerEvent], None] | None = None,
    ) -> tuple[RunnerEvent, Recorder, Path]:
        job_dir = tmp_path / job_id
        recorder = Recorder(action)
        terminal = runtime.run(
            make_request(job_dir, model_dir, spec, job_id),
            job_dir=job_dir,
            on_event=recorder,
            timeout_s=timeout_s or self.timeout_s,
        )
        return terminal, recorder, job_dir

    def _good_job(
        self, runtime: ContainerRuntime, tmp_path: Path, model_dir: Path, job_id: str
    ) -> RunnerEvent:
        terminal, _, _ = self._run(runtime, tmp_path, model_dir, tiny_spec(), job_id)
        assert terminal.status == "succeeded", terminal.error
        return terminal

    def test_job_streams_progress_and_writes_outputs(
        self, runtime: ContainerRuntime, tmp_path: Path, tiny_cogvideox_dir: Path
    ) -> None:
        terminal, recorder, job_dir = self._run(
            runtime, tmp_path, tiny_cogvideox_dir, tiny_spec(), "conf-ok"
        )
        assert terminal.status == "succeeded", terminal.error
        statuses = [e.status for e in recorder.events]
        assert statuses[0] == "starting" and statuses[-1] == "succeeded"
        assert statuses.count("processing") == tiny_spec().steps
        assert sum(e.terminal for e in recorder.events) == 1
        progress = [e.progress for e in recorder.events]
        assert progress == sorted(progress) and progress[-1] == 1.0
        out = terminal.output
        assert out is not None
        video = job_dir / "output" / out.video
        assert hashlib.sha256(video.read_bytes()).hexdigest() == out.video_sha256
        assert (job_dir / "output" / out.poster).read_bytes()[:2] == b"\xff\xd8"
        assert (out.num_frames, out.width, out.height, out.fps) == (9, 32, 32, 8)
        assert out.environment.deterministic_algorithms and not out.environment.tf32

    def test_warm_runner_reuses_the_model_and_repeats_bytes(
        self, runtime: ContainerRuntime, tmp_path: Path, tiny_cogvideox_dir: Path
    ) -> None:
        first = self._good_job(runtime, tmp_path, tiny_cogvideox_dir, "conf-warm-1")
        second = self._good_job(runtime, tmp_path, tiny_cogvideox_dir, "conf-warm-2")
        assert second.metrics["warm"] == 1.0
        assert first.output is not None and second.output is not None
        assert first.output.frames_digest == second.output.frames_digest
        assert first.output.video_sha256 == second.output.video_sha256
        other = self._run(runtime, tmp_path, tiny_cogvideox_dir, tiny_spec(seed=7), "conf-seed")
        assert other[0].output is not None
        assert other[0].output.frames_digest != first.output.frames_digest

    @pytest.mark.parametrize(
        "case",
        [
            ({"num_frames": 10}, "invalid_input", "num_frames"),
            ({"width": 40}, "invalid_input", "width"),
            ({"prompt": "a red cat " * 20}, "invalid_input", "tokens"),
            ({"model": "no-such-model"}, "invalid_input", "known models"),
        ],
    )
    def test_bad_input_fails_clearly_and_runner_survives(
        self,
        runtime: ContainerRuntime,
        tmp_path: Path,
        tiny_cogvideox_dir: Path,
        case: tuple[dict[str, Any], str, str],
    ) -> None:
        changes, kind, needle = case
        # Built past the catalog check on purpose: the runner must refuse it on its own.
        bad = parse_spec({**tiny_spec().model_dump(exclude_none=True), **changes})
        terminal, _, _ = self._run(runtime, tmp_path, tiny_cogvideox_dir, bad, "conf-bad")
        assert terminal.status == "failed" and terminal.error is not None
        assert terminal.error.kind == kind
        assert needle in terminal.error.message and terminal.error.fix
        self._good_job(runtime, tmp_path, tiny_cogvideox_dir, "conf-after-bad")

    def test_corrupted_weights_name_file_and_hashes(
        self, runtime: ContainerRuntime, tmp_path: Path, tiny_cogvideox_dir: Path
    ) -> None:
        broken = tmp_path / "broken-weights"
        shutil.copytree(tiny_cogvideox_dir, broken)
        target = broken / "transformer" / "diffusion_pytorch_model.safetensors"
        expected = hashlib.sha256(target.read_bytes()).hexdigest()
        data = bytearray(target.read_bytes())
        data[-1] ^= 0xFF
        target.write_bytes(bytes(data))
        actual = hashlib.sha256(bytes(data)).hexdigest()
        terminal, _, _ = self._run(runtime, tmp_path, broken, tiny_spec(), "conf-weights")
        assert terminal.error is not None and terminal.error.kind == "weights"
        message = terminal.error.message
        assert "transformer/diffusion_pytorch_model.safetensors" in message
        assert expected in message and actual in message
        self._good_job(runtime, tmp_path, tiny_cogvideox_dir, "conf-after-weights")

    @pytest.mark.slow  # the killed runner is restarted cold
    def test_timeout_fails_the_job_and_the_next_one_runs(
        self, runtime: ContainerRuntime, tmp_path: Path, tiny_cogvideox_dir: Path
    ) -> None:
        terminal, _, _ = self._run(
            runtime,
            tmp_path,
            tiny_cogvideox_dir,
            tiny_spec(steps=50),
            "conf-timeout",
            # Far below any real run (a warm tiny job takes ~0.4 s end to end): the deadline
            # must pass first whatever the machine's load, or the test would be a coin toss.
            timeout_s=0.05,
        )
        assert terminal.status == "failed" and terminal.error is not None
        assert terminal.error.kind == "timeout"
        self._good_job(runtime, tmp_path, tiny_cogvideox_dir, "conf-after-timeout")

    def test_cancel_mid_job_and_the_next_one_runs(
        self, runtime: ContainerRuntime, tmp_path: Path, tiny_cogvideox_dir: Path
    ) -> None:
        fired = threading.Event()

        def cancel_on_first_step(event: RunnerEvent) -> None:
            if event.status == "processing" and not fired.is_set():
                fired.set()
                runtime.cancel("conf-cancel")

        terminal, recorder, _ = self._run(
            runtime,
            tmp_path,
            tiny_cogvideox_dir,
            tiny_spec(steps=50),
            "conf-cancel",
            action=cancel_on_first_step,
        )
        assert fired.is_set()
        assert terminal.status == "canceled" and terminal.error is not None
        assert terminal.error.kind == "canceled"
        assert sum(e.status == "processing" for e in recorder.events) < 50
        self._good_job(runtime, tmp_path, tiny_cogvideox_dir, "conf-after-cancel")
