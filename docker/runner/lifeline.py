"""The runner never outlives its node (docs/protocol.md §5, "Lifetime").

A node killed with -9 cannot stop its runner; a runner left working holds a second copy of
the model in (GPU) memory and writes into the job folder that the restarted node's new
runner writes too. So the runner has a watchdog from its first instant (before torch is
imported, which is when a kill most often lands), a forked process that watches

- stdin: the node holds the only write end of the runner's stdin (a pipe, or a container's
  attached stdin with ``StdinOnce``); the kernel closes it when the node dies, and a poll
  for hang-up sees that at once, even with unread data in the pipe. A node that stops in
  order sends ``shutdown`` and waits for the runner to exit before it closes the pipe.
- the parent: a subprocess runner is told its node's pid and stops once it is re-parented
  (the pipe's end could have leaked into another process). `PR_SET_PDEATHSIG` is not used:
  it fires when the *thread* that started the runner exits (a node's job slot), not the node.

Either way the runner is SIGKILLed with its children (the encoder's ffmpeg). Imports
nothing heavy.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import stat
from pathlib import Path

log = logging.getLogger("framecast.runner")

#: Exit status of a runner that stopped because its node went away.
ABANDONED_EXIT = 3
#: The write end of the watchdog's pipe, held for the runner's whole life.
_KEEP_OPEN: list[int] = []
#: How often the watchdog looks at the runner's parent pid.
PARENT_POLL_S = 0.1


def abandon(reason: str) -> None:
    """Stop this runner now, children first, without cleanup; never returns.

    Runs on the stdin thread (`serve`) while the main thread may be inside a pipeline call:
    `os._exit` ends the whole process from any thread, and nothing of a half-done job is
    worth saving (the restarted node rebuilds the output folder from scratch).
    """
    log.error("runner stopping: %s", reason)
    for pid in _children_of(os.getpid()):
        with contextlib.suppress(OSError):  # already gone
            os.kill(pid, signal.SIGKILL)
    os._exit(ABANDONED_EXIT)


def start_watchdog(parent_pid: int | None = None, *, stdin_fd: int = 0) -> int | None:
    """Fork the watchdog: a small process that kills this runner when its node is gone.

    A process, not a thread: a thread needs the GIL, and the runner's main thread holds it
    for seconds at a time (importing torch, loading weights). Forked before anything heavy
    is imported, so it costs little memory. It watches

    - `stdin_fd` for hang-up (when it is a pipe): the node's write end closed;
    - the runner's parent (when `parent_pid` is given): no longer the node, it was adopted;
    - a pipe from the runner: the runner exited by itself, so the watchdog exits too.

    Returns the watchdog's pid, or None when there is nothing to watch.
    """
    try:
        watch_stdin = stat.S_ISFIFO(os.fstat(stdin_fd).st_mode)
    except OSError:
        watch_stdin = False
    if parent_pid is not None and os.getppid() != parent_pid:
        log.warning("parent is pid %d, not the node's %d: not watched", os.getppid(), parent_pid)
        parent_pid = None
    if not watch_stdin and parent_pid is None:
        return None
    runner = os.getpid()
    alive_r, alive_w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(alive_r)
        _KEEP_OPEN.append(alive_w)  # until the runner exits: then the watchdog sees EOF
        return pid
    # The watchdog. It must hold none of the runner's other files: a copy of the protocol
    # stdout would keep the node from seeing the runner's EOF.
    low = 0
    for fd in sorted({2, alive_r, stdin_fd}):
        if low < fd:  # closerange(n, n) would close every descriptor (CPython 3.11)
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 65536)
    try:
        _watch(runner, parent_pid, alive_r, stdin_fd if watch_stdin else None)
    finally:
        os._exit(0)
    return None  # not reached


def _watch(runner: int, parent_pid: int | None, alive_fd: int, stdin_fd: int | None) -> None:
    poller = select.poll()
    poller.register(alive_fd, 0)  # no events asked: only hang-up and errors wake us
    if stdin_fd is not None:
        poller.register(stdin_fd, 0)
    while True:
        for fd, mask in poller.poll(PARENT_POLL_S * 1000):
            if not mask & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                continue
            if fd == alive_fd:
                return  # the runner is gone already
            _kill_runner(runner, "stdin closed: the node that started this runner is gone")
        if parent_pid is not None and _ppid(runner) not in (parent_pid, None):
            _kill_runner(runner, f"the node (pid {parent_pid}) that started this runner is gone")
        if _ppid(runner) is None:
            return


def _ppid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _kill_runner(runner: int, reason: str) -> None:
    """SIGKILL the runner and what it started (this watchdog too, in the process runtime)."""
    os.write(2, f"runner watchdog: stopping runner {runner}: {reason}\n".encode())
    for pid in _children_of(runner):
        if pid != os.getpid():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    try:
        if os.getpgid(runner) == runner:
            os.killpg(runner, signal.SIGKILL)  # its own session (the process runtime)
        else:
            os.kill(runner, signal.SIGKILL)  # in a container: its init then ends the rest
    except OSError:
        pass
    os._exit(0)


def _children_of(pid: int) -> list[int]:
    pids: list[int] = []
    try:
        for task in os.scandir(f"/proc/{pid}/task"):
            pids += [int(p) for p in Path(task.path, "children").read_text().split()]
    except OSError:
        pass
    return pids
