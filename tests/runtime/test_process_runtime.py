"""The process runtime: conformance suite, crash/OOM mapping, restart after death."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from framecast.node.runtime.base import ContainerRuntime
from framecast.node.runtime.process import ProcessRuntime
from framecast.shared.runner_protocol import RunnerEvent

from tests.runtime.conformance import RuntimeConformance, make_request, tiny_spec


class TestProcessRuntime(RuntimeConformance):
    @pytest.fixture(scope="class")
    @classmethod
    def runtime(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ContainerRuntime]:
        runtime = ProcessRuntime(log_dir=tmp_path_factory.mktemp("runner-logs"))
        assert isinstance(runtime, ContainerRuntime)
        yield runtime
        runtime.close()


@pytest.mark.slow  # two runner starts per case
@pytest.mark.parametrize(("sig", "kind"), [(signal.SIGKILL, "oom"), (signal.SIGTERM, "crash")])
def test_runner_death_maps_to_job_state_and_restarts(
    tmp_path: Path, tiny_cogvideox_dir: Path, sig: signal.Signals, kind: str
) -> None:
    runtime = ProcessRuntime(log_dir=tmp_path / "logs")
    killed = threading.Event()

    def kill_on_first_step(event: RunnerEvent) -> None:
        if event.status == "processing" and not killed.is_set():
            killed.set()
            assert runtime.pid is not None
            os.kill(runtime.pid, sig)  # an OOM killer's SIGKILL, or a crash

    try:
        request = make_request(tmp_path / "a", tiny_cogvideox_dir, tiny_spec(steps=50), "dies")
        terminal = runtime.run(
            request, job_dir=tmp_path / "a", on_event=kill_on_first_step, timeout_s=120
        )
        assert killed.is_set()
        assert terminal.status == "failed" and terminal.error is not None
        assert terminal.error.kind == kind, terminal.error
        again = make_request(tmp_path / "b", tiny_cogvideox_dir, tiny_spec(), "after-death")
        started = time.monotonic()
        terminal = runtime.run(
            again, job_dir=tmp_path / "b", on_event=lambda _e: None, timeout_s=120
        )
        assert terminal.status == "succeeded", terminal.error
        assert terminal.metrics["warm"] == 0.0  # a fresh runner loaded the model again
        assert time.monotonic() - started < 120
    finally:
        runtime.close()
    assert runtime.pid is None
