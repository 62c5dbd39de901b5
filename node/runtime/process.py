"""The process runtime: the same runner as the image, as a local subprocess (no Docker).

For development, CPU nodes and the demo. The runner (`python -m framecast.runner serve`)
stays warm between jobs; it is started on the first job and restarted after it died or
was killed (timeout, unanswered cancel). Its stderr goes to `runner.log` in the runtime's
log directory, and the tail of it into crash errors.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

from framecast.node.runtime.base import (
    EventCallback,
    JsonLinesChannel,
    canceled_event,
    terminal_from_exit,
    timeout_event,
)
from framecast.shared.errors import RuntimeUnavailable
from framecast.shared.runner_protocol import RunnerEvent, RunRequest, ShutdownMessage

log = logging.getLogger(__name__)


class ProcessRuntime:
    """`ContainerRuntime` running `sys.executable -m framecast.runner serve`."""

    name = "process"

    def __init__(
        self,
        *,
        log_dir: Path,
        python: str = sys.executable,
        env: Mapping[str, str] | None = None,
        cancel_grace_s: float = 10.0,
        die_with_parent: bool = False,
    ) -> None:
        self._python = python
        self._env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
        if die_with_parent:
            # The runner ties its life to this process (a Ray actor killed with -9 must
            # not leave it computing on the GPU): docker/runner/__main__.py.
            self._env["FRAMECAST_RUNNER_PARENT_PID"] = str(os.getpid())
        self._log_dir = log_dir
        self._cancel_grace_s = cancel_grace_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._channel: JsonLinesChannel | None = None
        self._lock = threading.Lock()  # one job at a time
        self._current: str | None = None
        self._cancel = threading.Event()

    @property
    def pid(self) -> int | None:
        """The runner's process id while it runs (tests kill it to simulate crashes)."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def _ensure_runner(self) -> JsonLinesChannel:
        if self._proc is not None and self._proc.poll() is None and self._channel is not None:
            return self._channel
        self._log_dir.mkdir(parents=True, exist_ok=True)
        stderr = (self._log_dir / "runner.log").open("ab")
        try:
            self._proc = subprocess.Popen(
                [self._python, "-m", "framecast.runner", "serve"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=self._env,
            )
        except OSError as exc:
            raise RuntimeUnavailable(
                f"cannot start the runner with {self._python}: {exc}",
                fix="install the pipelines extra: pip install 'framecast[pipelines]'",
            ) from exc
        finally:
            stderr.close()
        proc = self._proc
        assert proc.stdin is not None and proc.stdout is not None
        stdin = proc.stdin

        def write(data: bytes) -> None:
            stdin.write(data)
            stdin.flush()

        self._channel = JsonLinesChannel(
            write, iter(proc.stdout.readline, b""), label=f"runner[{proc.pid}]"
        )
        return self._channel

    def _kill(self) -> int | None:
        proc, self._proc, self._channel = self._proc, None, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.kill()
        code = proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
        return code

    def _stderr_tail(self) -> str:
        path = self._log_dir / "runner.log"
        if not path.exists():
            return ""
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - 4000))
            return handle.read().decode("utf-8", "replace")

    def run(
        self,
        request: RunRequest,
        *,
        job_dir: Path,
        on_event: EventCallback,
        timeout_s: float,
    ) -> RunnerEvent:
        """Run one job on the warm runner; see `ContainerRuntime.run`."""
        with self._lock:
            job_dir.mkdir(parents=True, exist_ok=True)
            self._current, job = request.job_id, request.job_id
            self._cancel.clear()
            try:
                channel = self._ensure_runner()
                result = channel.drive(
                    request,
                    on_event=on_event,
                    timeout_s=timeout_s,
                    cancel=self._cancel,
                    cancel_grace_s=self._cancel_grace_s,
                )
                if result.event is not None:
                    return result.event
                if result.ended == "timeout":
                    self._kill()
                    event = timeout_event(job, timeout_s)
                elif result.ended == "cancel_unanswered" or self._cancel.is_set():
                    self._kill()
                    event = canceled_event(job)
                else:  # EOF: the runner died under the job
                    proc = self._proc
                    code = proc.wait(timeout=10) if proc is not None else None
                    self._kill()
                    event = terminal_from_exit(job, code, stderr_tail=self._stderr_tail())
                on_event(event)
                return event
            finally:
                self._current = None

    def cancel(self, job_id: str) -> None:
        """Cancel `job_id` if it is the running job (the runner stops between steps)."""
        if self._current == job_id:
            self._cancel.set()

    def close(self) -> None:
        """Ask the runner to exit, then make sure it did."""
        channel, proc = self._channel, self._proc
        if channel is not None and proc is not None and proc.poll() is None:
            try:
                channel.send(ShutdownMessage())
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                log.warning("runner did not shut down in time; killing it")
        self._kill()
