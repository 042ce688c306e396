"""`resolver serve --workers N`: N processes sharing the listening addresses, and their keeper.

Python runs one thread of bytecode at a time, so more cores need more processes. Each worker
binds every address with SO_REUSEPORT and runs its own trio loop and its own cache; the kernel
spreads clients over the workers. The parent does no DNS at all: it starts the workers, says
"ready" once all of them are, restarts any that dies, and stops them all on SIGINT or SIGTERM.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from types import FrameType

import trio

from resolver.config import Config
from resolver.core.hints import HintsError
from resolver.server.daemon import serve
from resolver.server.errors import StartupError, WorkerFailed
from resolver.server.notify import notify
from resolver.server.persist import for_worker

log = logging.getLogger(__name__)

_READY = "ready"
# Workers are restarted when they die, but more than this many deaths within the window means
# something is broken for good: stop instead of restarting in a loop.
_MAX_RESTARTS = 5
_RESTART_WINDOW = 10.0
_STOP_TIMEOUT = 10.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Ask Linux to send us SIGTERM if the supervisor dies, even by SIGKILL: no orphans."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _worker(config: Config, report: multiprocessing.connection.Connection) -> None:
    """The body of one worker process: serve until signalled, telling the parent how it went."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.environ.pop("NOTIFY_SOCKET", None)  # the supervisor speaks to systemd, not each worker
    _die_with_parent()
    try:
        trio.run(partial(serve, freeze_gc=True), config, lambda _endpoints: report.send(_READY))
    except (StartupError, HintsError) as error:
        report.send(str(error))
        os._exit(1)


class Supervisor:
    """Starts, watches and stops the worker processes."""

    def __init__(
        self, config: Config, worker_config: Callable[[int], Config] | None = None
    ) -> None:
        self.config = config
        # The settings of worker N, if they differ (its own control socket: operations.py).
        self._worker_config = worker_config or (lambda _slot: config)
        self._context = multiprocessing.get_context("fork")
        self._workers: dict[int, multiprocessing.process.BaseProcess] = {}
        self._restarts: deque[float] = deque()
        self._stopping = False
        self._pid = os.getpid()

    def _start_one(self, slot: int) -> multiprocessing.connection.Connection:
        receiver, sender = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=_worker,
            args=(for_worker(self._worker_config(slot), slot), sender),
            name=f"resolver-worker-{slot}",
        )
        process.start()
        sender.close()
        self._workers[slot] = process
        return receiver

    def _await_ready(self, receiver: multiprocessing.connection.Connection) -> None:
        try:
            message = receiver.recv()
        except EOFError:
            message = "a worker exited before it was ready"
        finally:
            receiver.close()
        if message != _READY:
            raise WorkerFailed(message)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if os.getpid() != self._pid:
            # A worker just forked, signalled before `_worker` reset its handlers (a worker
            # that failed to start makes the supervisor stop the others at once): it dies as
            # the default action would have it, without speaking for the supervisor.
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        log.info("received %s, stopping the workers", signal.Signals(signum).name)
        if not self._stopping:
            notify("STOPPING=1")
        self._stopping = True

    def run(self, ready: Callable[[int], None]) -> None:
        """Run until signalled; raises WorkerFailed if a worker cannot start, or had to be
        killed at the stop."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        try:
            # All started before any is waited for: each may spend its start loading its
            # persistent cache file, and N of them one after another took N times as long.
            starting = [self._start_one(slot) for slot in range(self.config.workers)]
            for receiver in starting:
                self._await_ready(receiver)
            ready(len(self._workers))
            self._watch()
        finally:
            killed = self._stop_all()
        if killed:
            # Not a clean stop: say so (and exit non-zero), or a lost cache file goes unseen.
            raise WorkerFailed(
                f"worker(s) {', '.join(map(str, killed))} did not stop within "
                f"{self._stop_timeout():.0f} s and were killed (their cache files, if any, "
                "were not written)"
            )

    def _watch(self) -> None:
        while not self._stopping:
            sentinels = {process.sentinel: slot for slot, process in self._workers.items()}
            for sentinel in multiprocessing.connection.wait(list(sentinels), timeout=0.5):
                slot = sentinels[sentinel]  # type: ignore[index]  # wait() returns the ints given
                process = self._workers[slot]
                process.join()
                if self._stopping:
                    break
                log.warning("worker %d exited with status %s", slot, process.exitcode)
                self._note_restart(process.exitcode)
                self._await_ready(self._start_one(slot))
                log.info("worker %d restarted", slot)

    def _note_restart(self, status: int | None) -> None:
        now = time.monotonic()
        self._restarts.append(now)
        while self._restarts[0] < now - _RESTART_WINDOW:
            self._restarts.popleft()
        if len(self._restarts) > _MAX_RESTARTS:
            raise WorkerFailed(f"workers keep exiting (last status {status}); giving up")

    def _stop_timeout(self) -> float:
        """How long the workers get to stop: a worker with a persistent cache file writes it
        as it stops, about a second per 100,000 entries on a slow machine (10 s per 100,000
        allowed), and one killed meanwhile keeps the previous file."""
        cache = self.config.cache
        if cache.persist_file is None:
            return _STOP_TIMEOUT
        return _STOP_TIMEOUT + 10.0 * cache.max_entries / 100_000

    def _stop_all(self) -> list[int]:
        """Stop every worker; the slots of those that had to be killed."""
        for process in self._workers.values():
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + self._stop_timeout()
        killed = []
        for slot, process in self._workers.items():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
                killed.append(slot)
        return killed
