"""The `ContainerRuntime` port and the JSON-lines job driver every runtime shares.

A runtime starts the runner (`python -m framecast.runner serve`) somewhere — a subprocess
(`process.py`) or a hardened container (`docker.py`) — and speaks the protocol of
`framecast.shared.runner_protocol` over its stdio. What differs between runtimes is how the
runner is started, killed and inspected after it exits; reading events, deadlines,
cancellation and mapping exits to job states are the same code, here.

Paths: the caller builds the `RunRequest` with host paths (`model_dir`, `output_dir` and
`inputs_dir` under `job_dir`); a runtime that sees the files elsewhere (a container's bind
mounts) rewrites them before sending.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from pydantic import ValidationError

from framecast.shared.catalog.fit import GpuCard
from framecast.shared.runner_protocol import (
    CancelMessage,
    RunnerEvent,
    RunRequest,
    ShutdownMessage,
    decode_event,
    encode_line,
    failed_event,
)

log = logging.getLogger(__name__)

EventCallback = Callable[[RunnerEvent], None]
#: Exit code of a process killed by SIGKILL (128 + 9), the kernel OOM killer's signal.
SIGKILL_EXIT = 137


@runtime_checkable
class ContainerRuntime(Protocol):
    """Runs one job at a time in a (warm) runner; every failure becomes a terminal event."""

    name: str

    def run(
        self,
        request: RunRequest,
        *,
        job_dir: Path,
        on_event: EventCallback,
        timeout_s: float,
    ) -> RunnerEvent:
        """Run `request`; call `on_event` for each event; return the terminal event.

        Never raises for job failures: timeouts, crashes, OOM and cancellation come back as
        a `failed`/`canceled` event with `RunError.kind` set. After it returns, the runtime
        is ready for the next job (it restarts the runner when that one died).
        """
        ...

    def cancel(self, job_id: str) -> None:
        """Ask the running job `job_id` to stop; `run` then returns a `canceled` event."""
        ...

    def close(self) -> None:
        """Stop the runner and release everything (containers are always removed)."""
        ...


@runtime_checkable
class Capacity(Protocol):
    """Where jobs run on a cluster whose size changes (the Ray runtime): what it can take
    now, asked before each claim, instead of a static `gpu_slots`."""

    max_jobs: int

    def unservable(self, model: str) -> str | None:
        """Why no worker can ever host `model` now (never claim it); None if one can."""
        ...

    def free_slots(self, model: str, pending: int = 0) -> int:
        """Jobs of `model` that could start now, less `pending` claimed but not placed."""
        ...

    def leased(self) -> set[str]:
        """Job ids placed on a worker now."""
        ...

    def cards(self) -> list[GpuCard]:
        """The workers' GPUs (one per card size): what the node fits memory profiles to, as
        the head itself may have no GPU."""
        ...


def terminal_from_exit(
    job_id: str, exit_code: int | None, *, oom_killed: bool = False, stderr_tail: str = ""
) -> RunnerEvent:
    """Map a runner that exited mid-job (no terminal event) to a failed event.

    Exit 137 / SIGKILL without our own kill is what the kernel OOM killer leaves; Docker
    reports it as `OOMKilled`. Anything else is a crash, with the stderr tail as context.
    """
    tail = stderr_tail.strip()[-2000:]
    if oom_killed or exit_code in (SIGKILL_EXIT, -9):
        return failed_event(
            job_id,
            "oom",
            f"the runner was killed (exit {exit_code}, OOMKilled={oom_killed}) while running "
            f"job {job_id}: out of memory" + (f"; stderr: {tail}" if tail else ""),
            fix="lower frames, size or steps, or raise the container's memory limit",
        )
    return failed_event(
        job_id,
        "crash",
        f"the runner exited with code {exit_code} while running job {job_id}"
        + (f"; stderr: {tail}" if tail else ""),
        fix="read the runner log in the job directory; the node restarts the runner",
    )


JobEnd = Literal["terminal", "eof", "timeout", "cancel_unanswered"]


@dataclass(frozen=True)
class JobResult:
    """How a job's event stream ended; `event` is set when the runner sent a terminal one."""

    ended: JobEnd
    event: RunnerEvent | None


_EOF = object()


class JsonLinesChannel:
    """One runner's stdio: writes protocol messages, reads events on a background thread.

    `lines` is any blocking iterator of byte lines (a pipe, a demultiplexed container
    socket); it is read to EOF on a daemon thread so a silent runner never blocks the caller
    past its deadline. Lines that are not protocol events (a library printing to stdout)
    are logged and skipped.
    """

    def __init__(
        self, write: Callable[[bytes], None], lines: Iterable[bytes], *, label: str = "runner"
    ) -> None:
        self._write = write
        self._label = label
        self._queue: queue.Queue[object] = queue.Queue()
        self._reader = threading.Thread(
            target=self._read, args=(lines,), name=f"{label}-events", daemon=True
        )
        self._reader.start()

    def _read(self, lines: Iterable[bytes]) -> None:
        try:
            for raw in lines:
                line = raw.strip()
                if not line:
                    continue
                try:
                    self._queue.put(decode_event(line))
                except ValidationError:
                    log.warning("%s wrote a non-protocol line: %r", self._label, line[:200])
        except (OSError, ValueError) as exc:  # the pipe closed under us: same as EOF
            log.debug("%s stream closed: %s", self._label, exc)
        finally:
            self._queue.put(_EOF)

    def send(self, message: RunRequest | CancelMessage | ShutdownMessage) -> None:
        """Write one message line; raises OSError when the runner is gone."""
        self._write(encode_line(message))

    def drive(
        self,
        request: RunRequest,
        *,
        on_event: EventCallback,
        timeout_s: float,
        cancel: threading.Event,
        cancel_grace_s: float = 10.0,
    ) -> JobResult:
        """Send `request` and pump its events until a terminal one, EOF, timeout or cancel.

        Events of other job ids (late lines of an earlier, abandoned job) are dropped.
        Cancellation sends a `CancelMessage` and waits `cancel_grace_s` for the runner to
        answer `canceled` between two steps; a runner that does not answer must be killed.
        """
        deadline = time.monotonic() + timeout_s
        cancel_deadline: float | None = None
        try:
            self.send(request)
        except OSError:
            return JobResult("eof", None)
        while True:
            now = time.monotonic()
            if cancel.is_set() and cancel_deadline is None:
                cancel_deadline = now + cancel_grace_s
                try:
                    self.send(CancelMessage(job_id=request.job_id))
                except OSError:
                    return JobResult("eof", None)
            if cancel_deadline is not None and now >= cancel_deadline:
                return JobResult("cancel_unanswered", None)
            if now >= deadline:
                return JobResult("timeout", None)
            wait = min(deadline, cancel_deadline or deadline) - now
            try:
                item = self._queue.get(timeout=min(wait, 0.1))
            except queue.Empty:
                continue
            if item is _EOF:
                return JobResult("eof", None)
            assert isinstance(item, RunnerEvent)
            if item.job_id != request.job_id:
                log.debug("%s: dropping event of job %s", self._label, item.job_id)
                continue
            on_event(item)
            if item.terminal:
                return JobResult("terminal", item)


def timeout_event(job_id: str, timeout_s: float) -> RunnerEvent:
    """The terminal event of a job that ran past its deadline (the runner was killed)."""
    return failed_event(
        job_id,
        "timeout",
        f"job {job_id} did not finish within {timeout_s:g} s; the runner was stopped",
        fix="lower frames, size or steps, or raise the node's job timeout",
    )


def canceled_event(job_id: str) -> RunnerEvent:
    """The terminal event of a job canceled by the node."""
    return failed_event(
        job_id,
        "canceled",
        f"job {job_id} was canceled",
        fix="submit the job again if it is still wanted",
    )
