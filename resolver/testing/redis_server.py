"""A `redis-server` of a test's or a benchmark's own: loopback port, no persistence, stopped by PID.

The shared-cache tests and `benchmarks/fleet.py` both need a real Redis; this is the one place
that starts it. Options cover what `shared_cache.url` can point at: a Unix socket, TLS
(`--tls-port` with a certificate from `certs.TestCA`) and a password (`--requirepass`). The plain
TCP port is always open on 127.0.0.1, so that `command` (a minimal RESP client, no library
needed) can plant, read and inspect keys whatever the resolver itself is told to use.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from resolver.testing.certs import TestCA


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One redis-server process; `start`, then `stop` (always: it is a process of ours)."""

    def __init__(
        self,
        binary: str,
        directory: Path,
        *,
        unix_socket: bool = False,
        tls: bool = False,
        password: str | None = None,
    ) -> None:
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.password = password
        self.socket_path = directory / "redis.sock" if unix_socket else None
        self.tls_port = free_port() if tls else None
        self.ca: TestCA | None = None
        if tls:
            (directory / "redis-ca").mkdir(parents=True, exist_ok=True)
            self.ca = TestCA(directory / "redis-ca")
        self.process: subprocess.Popen[bytes] | None = None

    def arguments(self) -> list[str]:
        args = [
            self.binary,
            *("--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
        ]
        if self.socket_path is not None:
            args += ["--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        if self.password is not None:
            args += ["--requirepass", self.password]
        if self.ca is not None and self.tls_port is not None:
            server = self.ca.issue("redis", ("localhost",))
            args += [
                *("--tls-port", str(self.tls_port)),
                *("--tls-cert-file", str(server.certificate)),
                *("--tls-key-file", str(server.key)),
                *("--tls-ca-cert-file", str(self.ca.certificate)),
                *("--tls-auth-clients", "no"),
            ]
        return args

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.arguments(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with status {self.process.returncode}")
            try:
                if self.command("PING") == b"+PONG":
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def freeze(self) -> None:
        """SIGSTOP: connections stay open and nothing answers (a Redis stuck or swapping)."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)
        self.process = None

    def command(self, *args: bytes | str, database: int = 0) -> bytes:
        """One RESP command (after AUTH and SELECT as needed), and the first line of its reply
        (or a bulk string's bytes)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            if self.password is not None:
                _call(sock, "AUTH", self.password)
            if database:
                _call(sock, "SELECT", str(database))
            return _call(sock, *args)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def unix_url(self) -> str:
        assert self.socket_path is not None
        return f"unix://{self.socket_path}"

    @property
    def tls_url(self) -> str:
        """rediss:// to the TLS port, trusting the test CA (coredis reads `ssl_ca_certs`)."""
        assert self.tls_port is not None and self.ca is not None
        return f"rediss://localhost:{self.tls_port}/?ssl_ca_certs={self.ca.certificate}"


def _call(sock: socket.socket, *args: bytes | str) -> bytes:
    parts = [arg if isinstance(arg, bytes) else arg.encode() for arg in args]
    wire = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
    sock.sendall(wire)
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    line, _, rest = data.partition(b"\r\n")
    if not line.startswith(b"$") or line == b"$-1":
        return line
    length = int(line[1:])
    while len(rest) < length + 2:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        rest += chunk
    return rest[:length]
