"""The process runtime: the same runner as the image, as a local subprocess (no Docker).

For development, CPU nodes and the demo. The runner (`python -m framecast.runner serve`)
stays warm between jobs; it is started on the first job and restarted after it died or
was killed (timeout, unanswered cancel). Its stderr goes to `runner.log` in the runtime's
log directory, and the tail of it into crash errors.

The runner never outlives its node: it watches its stdin pipe and its parent pid
(`framecast.runner.lifeline`), and runs in a session (process group) of its own. Each
running runner is recorded in the log directory (`runner-PID.json`, with the node's pid and
both start times); a node that starts after a kill -9 finds the records of its dead
predecessor and kills any runner still alive, with its process group, before it starts one
(`stop_stale_runners`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
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

#: The runner's environment variable naming its node's pid (`framecast.runner.__main__`).
PARENT_PID_ENV = "FRAMECAST_RUNNER_PARENT_PID"
RECORD_GLOB = "runner-*.json"


def process_start(pid: int) -> int | None:
    """The kernel's start time of `pid` (clock ticks since boot), None when it is gone.

    With the pid it names one process for good: a pid reused later has another start time.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22; the command name (field 2) may hold spaces and parentheses, so count
    # from the last ')'.
    return int(stat.rsplit(")", 1)[1].split()[19])


def _alive(pid: int, start: int | None) -> bool:
    return start is not None and process_start(pid) == start


def stop_stale_runners(log_dir: Path, *, wait_s: float = 5.0) -> list[int]:
    """Kill runners recorded in `log_dir` whose node is dead; return their pids.

    Records of a live node (this one's other slots, or another node on the same folder) are
    left alone; records of runners already gone are removed.
    """
    stopped: list[int] = []
    for path in sorted(log_dir.glob(RECORD_GLOB)):
        try:
            record = json.loads(path.read_text())
            runner, node = int(record["pid"]), int(record["node_pid"])
            runner_start, node_start = record.get("start"), record.get("node_start")
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)  # torn by a kill mid-write: nothing to trust
            continue
        if _alive(node, node_start):
            continue
        if _alive(runner, runner_start):
            log.warning(
                "stopping runner pid %d left running by node pid %d (killed?)", runner, node
            )
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(runner, signal.SIGKILL)  # its own session: ffmpeg goes too
            deadline = time.monotonic() + wait_s
            while _alive(runner, runner_start) and time.monotonic() < deadline:
                time.sleep(0.02)  # not our child: it is reaped by init, not waited here
            stopped.append(runner)
        path.unlink(missing_ok=True)
    return stopped


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
    ) -> None:
        self._python = python
        self._env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            PARENT_PID_ENV: str(os.getpid()),
            **(env or {}),
        }
        self._log_dir = log_dir
        self._cancel_grace_s = cancel_grace_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._channel: JsonLinesChannel | None = None
        self._lock = threading.Lock()  # one job at a time
        self._current: str | None = None
        self._cancel = threading.Event()
        self._record: Path | None = None
        if log_dir.is_dir():
            stop_stale_runners(log_dir)

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
                # Its own process group: a stale runner dies with its children in one
                # killpg, and a Ctrl-C on the node's terminal reaches the node only, which
                # then stops the runner in order.
                start_new_session=True,
            )
        except OSError as exc:
            raise RuntimeUnavailable(
                f"cannot start the runner with {self._python}: {exc}",
                fix="install the pipelines extra: pip install 'framecast[pipelines]'",
            ) from exc
        finally:
            stderr.close()
        proc = self._proc
        self._write_record(proc.pid)
        assert proc.stdin is not None and proc.stdout is not None
        stdin = proc.stdin

        def write(data: bytes) -> None:
            stdin.write(data)
            stdin.flush()

        self._channel = JsonLinesChannel(
            write, iter(proc.stdout.readline, b""), label=f"runner[{proc.pid}]"
        )
        return self._channel

    def _write_record(self, pid: int) -> None:
        """Note the running runner for a successor of a node killed with -9."""
        record = {
            "pid": pid,
            "start": process_start(pid),
            "node_pid": os.getpid(),
            "node_start": process_start(os.getpid()),
        }
        path = self._log_dir / f"runner-{pid}.json"
        path.write_text(json.dumps(record))
        self._record = path

    def _kill(self) -> int | None:
        proc, self._proc, self._channel = self._proc, None, None
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the runner and what it started
        code = proc.wait()
        if self._record is not None:
            self._record.unlink(missing_ok=True)
            self._record = None
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
