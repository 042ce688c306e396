"""The control socket: a Unix stream socket that `resolver stats` and `resolver cache` talk to.

The protocol is one JSON object per line, one exchange per connection:

```
-> {"command": "stats"}
<- {"ok": true, "result": {"queries": 3, "hit_rate": 0.6667, ...}}
-> {"command": "flush", "name": "example.com.", "subtree": true}
<- {"ok": true, "result": {"removed": 12, "packets_cleared": 4}}
-> {"command": "dump", "path": "/var/lib/resolver/cache.txt"}
-> {"command": "load", "path": "/var/lib/resolver/cache.txt"}
-> {"command": "nonsense"}
<- {"ok": false, "error": "unknown command 'nonsense' (known: dump, flush, load, sample, stats)"}
```

JSON because both ends are ours and Python has it built in, and because `stats` answers are
objects that scripts print as they are; one exchange per connection so that neither side has
to frame or resynchronise anything. Who may ask is decided by the file system: the socket is
created mode 0600, so only the resolver's own user (and root) can connect. A Unix socket rather
than TCP means no network exposure and no authentication to get wrong.

This module has both ends: `ControlServer` (a trio task: in the daemon, and in a thread of the
supervisor of `--workers N`, which relays to its workers) and `request` (blocking, for the command
line and for that relaying).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import stat
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import trio

from resolver.server.errors import StartupError

log = logging.getLogger(__name__)

#: Longest request line accepted; requests are a command and a path or a name.
MAX_REQUEST = 64 * 1024
#: A client that has not sent its request line by then is dropped (a stuck `nc` must not pin a
#: task forever); generous, since it only guards against the stuck.
REQUEST_TIMEOUT = 30.0
#: Connections served at once; more wait in the listen backlog.
MAX_CLIENTS = 8
#: How long `request` waits for an answer: a dump or load of a large cache takes seconds.
ANSWER_TIMEOUT = 300.0

Handler = Callable[[Mapping[str, Any]], Awaitable[Any]]


class ControlError(Exception):
    """A control request failed; the message is the one line the operator sees."""


class RequestError(Exception):
    """A request the daemon refuses (bad arguments, a file it cannot write): told to the client."""


# --- the socket file -------------------------------------------------------------------------


def _answers(path: Path) -> bool:
    """Whether a process accepts connections on the socket at `path`."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(2.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def control_listener(path: Path) -> Iterator[socket.socket]:
    """A listening Unix socket at `path`, mode 0600, removed again on exit.

    A socket file left by a resolver that died is replaced; anything else at `path` (a file the
    operator cares about, or the socket of a resolver still running) is a StartupError, never
    silently clobbered.
    """
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        pass
    except OSError as error:
        raise StartupError(f"control socket {path}: {error.strerror}") from None
    else:
        if not stat.S_ISSOCK(found.st_mode):
            raise StartupError(f"control socket {path}: a file that is not a socket is there")
        if _answers(path):
            raise StartupError(f"control socket {path}: another resolver is answering on it")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # stale: its owner died without cleaning up
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # No moment where the socket exists with looser permissions: bind under a strict umask.
    old_umask = os.umask(0o177)
    try:
        sock.bind(str(path))
    except OSError as error:
        sock.close()
        reason = error.strerror or str(error)
        raise StartupError(f"cannot create control socket {path}: {reason}") from None
    finally:
        os.umask(old_umask)
    identity = os.stat(path).st_ino
    try:
        os.chmod(path, 0o600)
        sock.listen(MAX_CLIENTS)
        yield sock
    finally:
        sock.close()
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == identity:  # still ours, not a successor's
                os.unlink(path)


# --- the daemon's side -----------------------------------------------------------------------


def encode(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def decode_request(line: bytes) -> dict[str, Any]:
    """The request object of one line; RequestError if it is not one."""
    try:
        request = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RequestError(f"not a JSON request line: {error}") from None
    if not isinstance(request, dict) or not isinstance(request.get("command"), str):
        raise RequestError('a request is an object with a "command" string')
    return request


async def dispatch(handlers: Mapping[str, Handler], line: bytes) -> dict[str, Any]:
    """The response object for one request line: the one place that maps a command to its
    handler, for the daemon's `Operations` and the `--workers` supervisor alike. A handler gets
    the request's arguments (the object without "command")."""
    try:
        arguments = decode_request(line)
        command = arguments.pop("command")
        handler = handlers.get(command)
        if handler is None:
            known = ", ".join(sorted(handlers))
            raise RequestError(f"unknown command {command!r} (known: {known})")
        return {"ok": True, "result": await handler(arguments)}
    except RequestError as error:
        return {"ok": False, "error": str(error)}
    except Exception as error:  # one failed request must not take the control socket down
        log.exception("control request failed")
        return {"ok": False, "error": f"internal error: {error}"}


class ControlServer:
    """Serves requests on a listening control socket with the given command handlers."""

    def __init__(self, sock: socket.socket, handlers: Mapping[str, Handler]) -> None:
        self._listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
        self._handlers = handlers
        self._slots = trio.Semaphore(MAX_CLIENTS)

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            while True:
                await self._slots.acquire()
                try:
                    stream = await self._listener.accept()
                except BaseException:
                    self._slots.release()
                    raise
                nursery.start_soon(self._serve, stream)

    async def _serve(self, stream: trio.SocketStream) -> None:
        try:
            async with stream:
                line = b""
                with trio.move_on_after(REQUEST_TIMEOUT):
                    line = await _read_line(stream)
                if not line:
                    return
                response = await dispatch(self._handlers, line)
                await stream.send_all(encode(response))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
            log.debug("control client went away: %s", error)
        finally:
            self._slots.release()


async def _read_line(stream: trio.SocketStream) -> bytes:
    """Bytes up to the first newline (or EOF); b"" if the request is too long or absent."""
    data = bytearray()
    while b"\n" not in data:
        chunk = await stream.receive_some(4096)
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_REQUEST:
            return b""
    return bytes(data.split(b"\n", 1)[0])


# --- the client's side -----------------------------------------------------------------------


def request(
    path: Path,
    command: str,
    arguments: Mapping[str, Any] | None = None,
    *,
    timeout: float = ANSWER_TIMEOUT,
) -> Any:
    """Send one command to the daemon at `path` and return its result; ControlError otherwise."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except FileNotFoundError:
            raise ControlError(
                f"no control socket at {path}: is `resolver serve --control-socket {path}` running?"
            ) from None
        except ConnectionRefusedError:
            raise ControlError(
                f"no resolver is listening on {path} (a stopped resolver left it behind?)"
            ) from None
        except PermissionError:
            raise ControlError(
                f"{path}: permission denied (the control socket is mode 0600: run this as the "
                "user the resolver runs as, or root)"
            ) from None
        except OSError as error:
            if error.errno == errno.ENOTSOCK:
                raise ControlError(f"{path} is not a socket") from None
            raise ControlError(f"cannot connect to {path}: {error.strerror or error}") from None
        try:
            sock.sendall(encode({"command": command, **(arguments or {})}))
            data = bytearray()
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            raise ControlError(
                f"the resolver at {path} did not answer within {timeout:.0f} s"
            ) from None
        except OSError as error:
            raise ControlError(f"talking to {path}: {error.strerror or error}") from None
    try:
        response = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ControlError(
            f"the resolver at {path} closed the connection without an answer"
        ) from None
    if not response.get("ok"):
        raise ControlError(str(response.get("error", "the resolver refused the request")))
    return response.get("result")
