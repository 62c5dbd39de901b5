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


def test_a_restarted_node_stops_the_runner_its_killed_predecessor_left(tmp_path: Path) -> None:
    """The records in the log folder name a runner whose node is dead: the next runtime on
    that folder kills it, with its process group, before it starts a runner of its own;
    a record of a live node (another slot) is left alone."""
    import json
    import subprocess
    import sys

    from framecast.node.runtime.process import process_start

    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    # A process that ignores its stdin and has children: what a stale runner looks like
    # when its own watch could not fire.
    script = "import subprocess, time; subprocess.Popen(['sleep', '60']); time.sleep(60)"
    stale = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    live = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    dead_node = subprocess.Popen(["true"])
    dead_node.wait()
    try:
        time.sleep(0.3)  # the grandchild `sleep` is up
        (log_dir / f"runner-{stale.pid}.json").write_text(
            json.dumps({"pid": stale.pid, "start": process_start(stale.pid),
                        "node_pid": dead_node.pid, "node_start": 1})
        )  # fmt: skip
        (log_dir / f"runner-{live.pid}.json").write_text(
            json.dumps({"pid": live.pid, "start": process_start(live.pid),
                        "node_pid": os.getpid(), "node_start": process_start(os.getpid())})
        )  # fmt: skip
        group = [
            int(p) for p in Path(f"/proc/{stale.pid}/task/{stale.pid}/children").read_text().split()
        ]
        assert group, "the stale runner's child did not start"
        runtime = ProcessRuntime(log_dir=log_dir)
        assert stale.wait(timeout=1) == -signal.SIGKILL
        for pid in group:
            assert (
                process_start(pid) is None
                or Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
            )
        assert live.poll() is None  # a live node's runner is not touched
        assert not (log_dir / f"runner-{stale.pid}.json").exists()
        assert (log_dir / f"runner-{live.pid}.json").exists()
        runtime.close()
    finally:
        for proc in (stale, live):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
