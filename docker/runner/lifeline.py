"""The runner never outlives its node (docs/protocol.md §5, "Lifetime").

A node killed with -9 cannot stop its runner; a runner left working holds a second copy of
the model in (GPU) memory and writes into the job folder that the restarted node's new
runner writes too. So the runner watches its node itself, from the first instant (before
torch is imported, which is when a kill most often lands):

- stdin: the node holds the only write end of the runner's stdin (a pipe, or a container's
  attached stdin with ``StdinOnce``); the kernel closes it when the node dies, and a poll
  for hang-up sees that at once, even with unread data in the pipe. A node that stops in
  order sends ``shutdown`` and waits for the runner to exit before it closes the pipe.
- the parent: a subprocess runner is told its node's pid and stops once it is re-parented
  (the pipe's end could have leaked into another process). `PR_SET_PDEATHSIG` is not used:
  it fires when the *thread* that started the runner exits (a node's job slot), not the node.

Either way the runner stops at once, children (the encoder's ffmpeg) first, with
`ABANDONED_EXIT`. Imports nothing heavy.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import stat
import threading

log = logging.getLogger("framecast.runner")

#: Exit status of a runner that stopped because its node went away.
ABANDONED_EXIT = 3
#: How often the parent watch looks at the parent pid.
PARENT_POLL_S = 0.1


def abandon(reason: str) -> None:
    """Stop this runner now, children first, without cleanup; never returns.

    Runs on a watch thread while the main thread may be deep inside a pipeline call:
    `os._exit` ends the whole process from any thread, and nothing of a half-done job is
    worth saving (the restarted node rebuilds the output folder from scratch).
    """
    log.error("runner stopping: %s", reason)
    for pid in children():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass  # already gone
    os._exit(ABANDONED_EXIT)


def children() -> list[int]:
    """This process's child pids (Linux `/proc`; empty elsewhere)."""
    pids: list[int] = []
    try:
        for task in os.scandir("/proc/self/task"):
            with open(f"{task.path}/children") as handle:
                pids += [int(p) for p in handle.read().split()]
    except OSError:
        pass
    return pids


def watch_stdin_hangup(fd: int = 0) -> threading.Thread | None:
    """Abandon when the write end of stdin closes; None when stdin is not a pipe."""
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return None  # a terminal or a file: nobody's death to notice
    except OSError:
        return None

    def watch() -> None:
        poller = select.poll()
        poller.register(fd, 0)  # no events asked: only hang-up and errors wake us
        while True:
            for _, mask in poller.poll():
                if mask & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                    abandon("stdin closed: the node that started this runner is gone")

    thread = threading.Thread(target=watch, name="runner-stdin-watch", daemon=True)
    thread.start()
    return thread


def watch_parent(expected: int, *, interval_s: float = PARENT_POLL_S) -> threading.Thread | None:
    """Abandon once the parent process is no longer `expected` (it died; we were adopted).

    None when the parent is another process from the start (a wrapper between node and
    runner): then only the stdin watch applies.
    """
    if os.getppid() != expected:
        log.warning("parent is pid %d, not the node's %d: not watching it", os.getppid(), expected)
        return None
    pause = threading.Event()

    def watch() -> None:
        while True:
            if os.getppid() != expected:
                abandon(f"the node (pid {expected}) that started this runner is gone")
            pause.wait(interval_s)

    thread = threading.Thread(target=watch, name="runner-parent-watch", daemon=True)
    thread.start()
    return thread
