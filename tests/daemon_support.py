"""Helpers for tests that run `resolver` as a real process and talk to it with real clients.

The daemon tests prove what an operator does: start `resolver serve`, point a stub (dig, glibc)
at it. That needs a subprocess that is always stopped, even when a test fails half-way, plus the
client programs themselves, which a fresh machine may not have yet. Both live here so that
`test_daemon.py` and `test_cli.py` share one careful implementation.

The module is imported as `tests.daemon_support`, like the other helpers here (the repository
root is on `sys.path` through pytest's `pythonpath`), so that mypy, which names every file under
`tests/` that way, and pytest agree on one module name.
"""

from __future__ import annotations

import errno
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

#: Generous bounds that only exist so that a broken build fails instead of hanging the suite.
#: No test asserts that anything is fast: these machines are shared and noisy.
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
COMMAND_TIMEOUT = 120.0
INSTALL_TIMEOUT = 900.0

#: What `resolver serve` prints on stdout once every socket is bound.
READY_MARKER = "listening on"
#: What it prints after a clean stop on SIGINT or SIGTERM.
STOPPED_MARKER = "resolver stopped"


def resolver_command(*args: str) -> list[str]:
    """`python -m resolver ARGS` with this interpreter, so the code under test is what runs.

    The console script might belong to another installation; `sys.executable` cannot.
    """
    return [sys.executable, "-m", "resolver", *args]


@dataclass
class Finished:
    """How a process ended: exit status and everything it wrote."""

    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        """Everything about the run, for assertion messages that explain a failure by themselves."""
        return (
            f"exit status {self.returncode}\n"
            f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}"
        )


@dataclass
class Daemon:
    """A running `resolver serve` process started by `running_daemon`."""

    process: subprocess.Popen[str]
    args: list[str]
    banner: str
    _stderr: IO[str]
    _stdout_lines: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None
    finished: Finished | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def stderr_text(self) -> str:
        """Everything written to stderr so far (a file, so a chatty daemon can never block)."""
        self._stderr.flush()
        return Path(self._stderr.name).read_text(encoding="utf-8", errors="replace")

    def stop(self, signum: signal.Signals = signal.SIGTERM) -> Finished:
        """Send `signum` once and wait for the exit; kill (and fail) if it does not stop.

        Idempotent: a second call returns the first result, so a test may stop the daemon with
        SIGINT itself and the context manager's own cleanup then only checks the outcome.
        """
        if self.finished is not None:
            return self.finished
        try:
            if self.process.poll() is None:
                self.process.send_signal(signum)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
                pytest.fail(
                    f"resolver (pid {self.pid}) did not stop within {STOP_TIMEOUT:.0f} s of "
                    f"{signum.name}; killed it\n--- stderr ---\n{self.stderr_text()}"
                )
        finally:
            self._collect()
        assert self.finished is not None
        return self.finished

    def kill(self) -> None:
        """SIGKILL the process if it still runs and reap it; used when something already failed."""
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                self.process.kill()
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=STOP_TIMEOUT)
        self._collect()

    def _collect(self) -> None:
        """Record the outcome once the process is gone, and release the pipe and the file."""
        if self.finished is not None or self.process.returncode is None:
            return
        if self._reader is not None:
            self._reader.join(timeout=STOP_TIMEOUT)
        stderr = self.stderr_text()
        self._stderr.close()
        if self.process.stdout is not None:
            self.process.stdout.close()
        stdout = "".join([self.banner, *self._stdout_lines])
        self.finished = Finished(self.process.returncode, stdout, stderr)


@contextmanager
def running_daemon(
    hints: Path,
    listen: Sequence[str] = ("127.0.0.1:53",),
    extra_args: Sequence[str] = (),
    *,
    query_loopback: bool = True,
    trust_anchor: Path | None = None,
) -> Iterator[Daemon]:
    """Run `resolver serve` against the test internet for the block; always stop it.

    Yields once the daemon has printed its `listening on` line, which it only does after every
    socket is bound, so the first query of a test cannot race the startup. On leaving the block
    normally the daemon gets SIGTERM and must exit 0 having printed `resolver stopped`; if the
    block raised, the daemon is killed and the original error is what the test reports.
    `--query-loopback` is passed unless `query_loopback` is False: the test internet lives on
    127.53.0.0/16, which the resolver refuses to query by default.
    DNSSEC: the signed test internet's tests pass its `trust_anchor` file; without one,
    `--no-validate`, since the unsigned test internet's root cannot match the bundled IANA
    anchors and every answer would be bogus (as with Unbound).
    """
    args = ["serve", "--root-hints", str(hints)]
    if query_loopback:
        args.append("--query-loopback")
    if trust_anchor is not None:
        args += ["--trust-anchor-file", str(trust_anchor)]
    else:
        args.append("--no-validate")
    for endpoint in listen:
        args += ["--listen", endpoint]
    args += list(extra_args)
    daemon = _start(resolver_command(*args))
    try:
        yield daemon
    except BaseException:
        daemon.kill()
        raise
    finished = daemon.stop(signal.SIGTERM)
    assert finished.returncode == 0, f"resolver did not exit cleanly:\n{finished.describe()}"
    assert STOPPED_MARKER in finished.stdout, finished.describe()


def _start(command: list[str]) -> Daemon:
    """Start the process and wait for its ready line, or fail with its stderr."""
    stderr = tempfile.NamedTemporaryFile(  # noqa: SIM115 - owned by the Daemon, closed there
        mode="w+", encoding="utf-8", prefix="resolver-stderr-", suffix=".log"
    )
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            # Its own session: a Ctrl-C meant for pytest does not hit the daemon directly, and
            # the tests decide which signal it gets.
            start_new_session=True,
        )
    except BaseException:
        stderr.close()
        raise
    lines: queue.Queue[str | None] = queue.Queue()
    daemon = Daemon(process, command, banner="", _stderr=stderr)
    daemon._reader = threading.Thread(
        target=_pump, args=(process, lines, daemon), name=f"resolver-{process.pid}-stdout"
    )
    daemon._reader.daemon = True
    daemon._reader.start()
    try:
        daemon.banner = _wait_ready(daemon, lines)
    except BaseException:
        daemon.kill()
        raise
    return daemon


def _pump(process: subprocess.Popen[str], lines: queue.Queue[str | None], daemon: Daemon) -> None:
    """Read stdout until EOF: the first line goes to the waiter, later ones are kept."""
    assert process.stdout is not None
    first = True
    with suppress(ValueError, OSError):  # the pipe was closed under us by kill()
        for line in process.stdout:
            if first:
                lines.put(line)
                first = False
            else:
                daemon._stdout_lines.append(line)
    lines.put(None)


def _wait_ready(daemon: Daemon, lines: queue.Queue[str | None]) -> str:
    """The ready line, or a failure that shows what the daemon said instead."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            pytest.fail(
                f"resolver printed no {READY_MARKER!r} line within {READY_TIMEOUT:.0f} s: "
                f"{' '.join(daemon.args)}\n--- stderr ---\n{daemon.stderr_text()}"
            )
        if line is None:
            daemon.process.wait(timeout=STOP_TIMEOUT)
            pytest.fail(
                f"resolver exited with status {daemon.process.returncode} before it was ready: "
                f"{' '.join(daemon.args)}\n--- stderr ---\n{daemon.stderr_text()}"
            )
        if READY_MARKER in line:
            return line
        pytest.fail(f"unexpected first line from resolver: {line!r}")


def run_command(
    command: Sequence[str],
    *,
    timeout: float = COMMAND_TIMEOUT,
    env: Mapping[str, str] | None = None,
) -> Finished:
    """Run a short-lived command to completion; the timeout kills it rather than hang the suite."""
    result = subprocess.run(
        list(command),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )
    return Finished(result.returncode, result.stdout, result.stderr)


def run_resolver(*args: str, prefix: Sequence[str] = ()) -> Finished:
    """`python -m resolver ARGS` to completion (optionally under a wrapper such as setpriv)."""
    return run_command([*prefix, *resolver_command(*args)])


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on `host`, for daemons that must not need port 53.

    The kernel picks a free UDP port; it is only used if TCP is free there too. Another process
    could still take it before the daemon binds; that is reported as a startup failure.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):
        with socket.socket(family, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = udp.getsockname()[1]
            with socket.socket(family, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError as error:
                    if error.errno == errno.EADDRINUSE:
                        continue
                    raise
                return port
    raise RuntimeError(f"no port free for both UDP and TCP on {host}")


def has_ipv6_loopback() -> bool:
    """Whether ::1 can be bound here (containers sometimes run without IPv6)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def ensure_command(command: str, package: str) -> str:
    """The path of `command`, installing Debian `package` first if it is missing.

    The test suite must work on a fresh machine with only the README's command, so it installs
    the client programs it drives (dig, getent, setpriv...) itself instead of skipping. A stale
    package index is the common reason an install fails on a fresh image, so on failure the
    index is updated once and the install retried. Failing to install fails the test loudly.
    """
    found = shutil.which(command)
    if found is not None:
        return found
    if shutil.which("apt-get") is None:
        pytest.fail(f"{command!r} is missing and there is no apt-get to install {package!r}")
    sudo: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            pytest.fail(f"{command!r} is missing; install Debian package {package!r} as root")
        sudo = ["sudo", "-n"]
    # Several test processes may install at once: wait for the dpkg lock instead of failing.
    apt = [*sudo, "apt-get", "-o", "DPkg::Lock::Timeout=600"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*apt, "install", "-y", "-q", package]
    result = run_command(install, timeout=INSTALL_TIMEOUT, env=env)
    if result.returncode != 0:
        run_command([*apt, "update", "-q"], timeout=INSTALL_TIMEOUT, env=env)
        result = run_command(install, timeout=INSTALL_TIMEOUT, env=env)
    found = shutil.which(command)
    if found is None:
        pytest.fail(
            f"installing Debian package {package!r} did not provide {command!r}:\n"
            f"{result.describe()}"
        )
    return found
