"""What the control socket and /metrics can do to one resolver process, or to N workers at once.

`Operations` belongs to one resolver process: it binds the control socket and starts the
metrics thread before privileges are dropped (like the DNS sockets), then serves the commands
`stats`, `flush`, `dump` and `load` from a trio task.

`SupervisorOperations` is the same face for `--workers N`, where each worker has its own cache
and counters. The supervisor owns the operator's control socket and metrics port and relays:
every worker gets a private control socket (in a 0700 directory of the supervisor's); `stats`
and /metrics add up the workers' samples, `flush` and `load` go to every worker, `dump` merges
their caches into one file. The operator sees one resolver, whatever the number of processes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import dns.exception
import dns.name
import trio

from resolver.cache.dump import (
    Dump,
    DumpError,
    Restored,
    format_dump,
    merge,
    parse_dump,
    record_count,
    restore,
    snapshot,
)
from resolver.config import Config
from resolver.engine.latency import ROTATE_EVERY
from resolver.server.control import (
    ControlError,
    ControlServer,
    Handler,
    RequestError,
    control_listener,
    request,
)
from resolver.server.report import Process, Sample, summarize, take_sample
from resolver.server.service import ResolverService

log = logging.getLogger(__name__)

#: Entries restored between two trio checkpoints, so a large load does not stall queries.
_LOAD_BATCH = 2000
#: How long the supervisor waits for one worker's answer before leaving it out of a sample.
_WORKER_TIMEOUT = 30.0


def _path_argument(request: Mapping[str, Any]) -> Path:
    path = request.get("path")
    if not isinstance(path, str) or not path:
        raise RequestError('this command needs a "path"')
    if not os.path.isabs(path):
        raise RequestError(f"{path!r}: give an absolute path (the daemon has its own directory)")
    return Path(path)


def _name_argument(request: Mapping[str, Any]) -> dns.name.Name | None:
    name = request.get("name")
    if name is None:
        return None
    if not isinstance(name, str):
        raise RequestError('"name" must be a string')
    try:
        return dns.name.from_text(name)
    except (dns.exception.DNSException, ValueError) as error:
        raise RequestError(f"{name!r} is not a domain name: {error}") from None


def _required_name(request: Mapping[str, Any]) -> dns.name.Name:
    name = _name_argument(request)
    if name is None:
        raise RequestError('this command needs a "name"')
    return name


def write_dump_file(path: Path, dump: Dump) -> None:
    """Write `dump` to `path` atomically (a reader never sees half a file), mode 0600.

    0600 because a cache lists the names its clients looked up.
    """
    write_file_atomically(path, format_dump(dump), 0o600)


def write_file_atomically(path: Path, lines: Iterable[str], mode: int) -> None:
    """Write `lines` to `path` so that a reader, or the next start after a crash, sees the old
    file or the new one, never half of one: a temporary file in the same directory, fsync,
    rename over `path`, fsync of the directory. A RequestError names the file on failure."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    _remove_leftovers(path)
    try:
        # O_EXCL and O_NOFOLLOW: in a shared directory, a link planted at the temporary name
        # must not make the daemon write through it. A leftover of ours is removed first.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        descriptor = os.open(temporary, flags, mode)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), mode)  # the umask must not narrow what was asked
            file.writelines(lines)
            file.flush()
            os.fsync(file.fileno())  # the data is on disk before the name points at it
        os.replace(temporary, path)
        _sync_directory(path.parent)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise RequestError(f"cannot write {path}: {error.strerror or error}") from None


def _remove_leftovers(path: Path) -> None:
    """Remove the temporary files of earlier writes of `path` whose writer is gone (killed
    mid-write: SIGKILL, a crash, power loss), so they do not pile up beside it for ever. A
    temporary file of a live process (another writer, this very moment) is left alone."""
    prefix, suffix = f".{path.name}.", ".tmp"
    with contextlib.suppress(OSError):
        for entry in os.scandir(path.parent):
            name = entry.name
            if not (name.startswith(prefix) and name.endswith(suffix)):
                continue
            pid = name[len(prefix) : -len(suffix)]
            if not pid.isdigit() or _alive(int(pid)):
                continue
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


def _alive(pid: int) -> bool:
    """Whether process `pid` exists (this one included; another user's counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _sync_directory(directory: Path) -> None:
    """Make a rename in `directory` survive a crash (the name is in the directory's data)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def read_dump_file(path: Path) -> Dump:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise RequestError(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise RequestError(f"{path}: not a cache dump (not UTF-8 text)") from None
    try:
        return parse_dump(text)
    except DumpError as error:
        raise RequestError(f"{path}: {error}") from None


def _parse_text(text: object) -> Dump:
    if not isinstance(text, str):
        raise RequestError('this command needs a "text"')
    try:
        return parse_dump(text)
    except DumpError as error:
        raise RequestError(str(error)) from None


class Operations:
    """The control socket and /metrics of one resolver process, each only if configured."""

    def __init__(self, config: Config, service: ResolverService) -> None:
        self.config = config
        self.service = service
        self.started = time.time()
        self._listener: socket.socket | None = None

    def open(self, resources: contextlib.ExitStack) -> None:
        """Bind what is configured; StartupError if it cannot be. Needs the trio thread."""
        if self.config.control_socket is not None:
            self._listener = resources.enter_context(control_listener(self.config.control_socket))
            log.info("control socket at %s", self.config.control_socket)
        if self.config.metrics is not None:
            from resolver.server.metrics import metrics_server  # lazily: prometheus_client

            token = trio.lowlevel.current_trio_token()

            def fetch() -> list[tuple[str, Sample]]:
                return [("0", trio.from_thread.run_sync(self.sample, trio_token=token))]

            resources.enter_context(metrics_server(self.config.metrics, fetch))

    async def run(self) -> None:
        """Serve the control socket and keep the recent-latency window moving, until cancelled."""
        engine = self.service.engine
        if self._listener is None and self.config.metrics is None:
            return
        async with trio.open_nursery() as nursery:
            if self._listener is not None:
                nursery.start_soon(ControlServer(self._listener, self.handlers()).run)
            while True:
                await trio.sleep(ROTATE_EVERY)
                engine.latency.rotate(engine.timer())

    def handlers(self) -> dict[str, Handler]:
        return {
            "stats": self._stats,
            "sample": self._sample,
            "flush": self._flush,
            "dump": self._dump,
            "dump_text": self._dump_text,
            "load": self._load,
            "load_text": self._load_text,
            "nta_add": self._nta_add,
            "nta_remove": self._nta_remove,
            "nta_list": self._nta_list,
        }

    def sample(self) -> Sample:
        """This process's numbers now; call it in the trio thread."""
        engine = self.service.engine
        return take_sample(
            Process(
                started=self.started,
                stats=engine.stats,
                upstream_sent=engine.upstream_sent,
                in_flight=engine.in_flight,
                census=engine.cache.census(),
                packets=len(engine.packets),
                latency=engine.latency,
                now=engine.timer(),
                transport_latency=engine.transport_latency,
            )
        )

    async def _stats(self, _request: Mapping[str, Any]) -> dict[str, Any]:
        return summarize([self.sample()])

    async def _sample(self, _request: Mapping[str, Any]) -> dict[str, Any]:
        return self.sample().to_dict()

    async def _flush(self, request: Mapping[str, Any]) -> dict[str, int]:
        """Forget a name (or a subtree, or everything) in the record cache, and clear the whole
        packet cache: its entries are whole responses (a CNAME chain crosses names), so clearing
        it is the only way to be sure none still carries a flushed record."""
        name = _name_argument(request)
        subtree = bool(request.get("subtree", False))
        if subtree and name is None:
            raise RequestError("subtree needs a name")
        removed = self.service.cache.flush(name, subtree=subtree)
        # Aggressive NSEC answers (RFC 8198) are made from these ranges: they go as well.
        self.service.engine.context.nsecs.flush(name)
        packets = self.service.engine.packets
        cleared = len(packets)
        packets.clear()
        log.info("cache flush %s: %d entries, %d packets", name or "(all)", removed, cleared)
        return {"removed": removed, "packets_cleared": cleared}

    async def _nta_add(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Add a negative trust anchor (RFC 7646) to the running engine."""
        name = _required_name(request)
        added = self.service.engine.add_negative_trust_anchor(name)
        log.info("negative trust anchor %s %s", name, "added" if added else "already in force")
        return {"name": name.to_text(), "changed": added}

    async def _nta_remove(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Remove a negative trust anchor from the running engine."""
        name = _required_name(request)
        removed = self.service.engine.remove_negative_trust_anchor(name)
        log.info("negative trust anchor %s %s", name, "removed" if removed else "was not set")
        return {"name": name.to_text(), "changed": removed}

    async def _nta_list(self, _request: Mapping[str, Any]) -> dict[str, Any]:
        names = self.service.engine.negative_trust_anchors()
        return {"names": [name.to_text() for name in names]}

    async def _take_dump(self) -> Dump:
        held = list(self.service.cache.export())  # in this thread: the cache is not thread-safe
        now = self.service.clock()
        return await trio.to_thread.run_sync(snapshot, held, now)

    async def _dump(self, request: Mapping[str, Any]) -> dict[str, Any]:
        path = _path_argument(request)
        dump = await self._take_dump()
        await trio.to_thread.run_sync(write_dump_file, path, dump)
        return {"path": str(path), "entries": len(dump.entries), "records": record_count(dump)}

    async def _dump_text(self, _request: Mapping[str, Any]) -> dict[str, Any]:
        dump = await self._take_dump()
        return {"text": await trio.to_thread.run_sync(lambda: "".join(format_dump(dump)))}

    async def _load(self, request: Mapping[str, Any]) -> dict[str, int]:
        path = _path_argument(request)
        dump = await trio.to_thread.run_sync(read_dump_file, path)
        return await self._restore(dump)

    async def _load_text(self, request: Mapping[str, Any]) -> dict[str, int]:
        dump = await trio.to_thread.run_sync(_parse_text, request.get("text"))
        return await self._restore(dump)

    async def _restore(self, dump: Dump) -> dict[str, int]:
        elapsed = self.service.clock() - dump.written_at
        restored = Restored()
        for start in range(0, len(dump.entries), _LOAD_BATCH):
            restore(
                self.service.cache, dump.entries[start : start + _LOAD_BATCH], elapsed, restored
            )
            await trio.lowlevel.checkpoint()
        log.info(
            "cache load: %d entries, %d expired since the dump, %d kept, %d lines dropped",
            restored.loaded,
            restored.expired,
            restored.kept,
            dump.dropped,
        )
        # `dropped`: signature or proof lines that did not belong, with their entries, and
        # lines that claimed a validation status (`cache/dump.py`).
        return {**dataclasses.asdict(restored), "dropped": dump.dropped}


class SupervisorOperations:
    """The operator's control socket and /metrics under `--workers N`, relayed to the workers.

    Runs in threads of the supervisor, whose main thread has no event loop: the control socket
    is served by the same `ControlServer` and dispatcher as a single process's, in a trio loop of
    a thread of its own, so both answer requests and errors alike. A context manager around the
    supervisor's run, so every file and thread is gone when it returns.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.started = time.time()
        self._directory: Path | None = None
        self._stopping = threading.Event()
        self._stack = contextlib.ExitStack()

    @property
    def enabled(self) -> bool:
        return self.config.control_socket is not None or self.config.metrics is not None

    def worker_socket(self, slot: int) -> Path:
        assert self._directory is not None
        return self._directory / f"worker-{slot}.sock"

    def worker_config(self, slot: int) -> Config:
        """The settings of worker `slot`: its own private control socket, no metrics port."""
        if not self.enabled:
            return self.config
        return dataclasses.replace(
            self.config, control_socket=self.worker_socket(slot), metrics=None
        )

    def __enter__(self) -> SupervisorOperations:
        if not self.enabled:
            return self
        stack = self._stack
        try:
            self._directory = Path(tempfile.mkdtemp(prefix="resolver-workers-"))
            stack.callback(shutil.rmtree, self._directory, ignore_errors=True)
            if self.config.control_socket is not None:
                listener = stack.enter_context(control_listener(self.config.control_socket))
                relay = threading.Thread(
                    target=trio.run,
                    args=(self._serve_control, listener),
                    name="resolver-control",
                    daemon=True,
                )
                relay.start()
                stack.callback(relay.join, 5.0)
                stack.callback(self._stopping.set)
                log.info("control socket at %s", self.config.control_socket)
            if self.config.metrics is not None:
                from resolver.server.metrics import metrics_server  # lazily: prometheus_client

                stack.enter_context(metrics_server(self.config.metrics, self._samples))
        except BaseException:
            stack.close()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stack.close()

    # --- relaying ----------------------------------------------------------------------------

    def _slots(self) -> range:
        return range(self.config.workers)

    def _samples(self) -> list[tuple[str, Sample]]:
        """A sample from every worker that answers (one restarting is simply left out)."""
        samples = []
        for slot in self._slots():
            try:
                data = request(self.worker_socket(slot), "sample", timeout=_WORKER_TIMEOUT)
            except ControlError as error:
                log.debug("worker %d left out of the sample: %s", slot, error)
                continue
            samples.append((str(slot), Sample.from_dict(data)))
        return samples

    def _each(self, command: str, **arguments: Any) -> list[Any]:
        """`command` on every worker; any failure fails the whole request, naming the worker."""
        results = []
        for slot in self._slots():
            try:
                results.append(request(self.worker_socket(slot), command, arguments))
            except ControlError as error:
                raise RequestError(f"worker {slot}: {error}") from None
        return results

    async def _serve_control(self, listener: socket.socket) -> None:
        """The daemon's own control server, in a trio loop of this thread, until `_stopping`;
        each command relays to the workers in a thread of its own, since `request` blocks."""

        def relayed(action: Callable[[Mapping[str, Any]], Any]) -> Handler:
            async def handler(arguments: Mapping[str, Any]) -> Any:
                return await trio.to_thread.run_sync(action, arguments)

            return handler

        handlers = {
            "stats": relayed(self._stats),
            "flush": relayed(self._flush),
            "dump": relayed(self._dump),
            "load": relayed(self._load),
            "nta_add": relayed(self._nta_change("nta_add")),
            "nta_remove": relayed(self._nta_change("nta_remove")),
            "nta_list": relayed(self._nta_list),
        }
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ControlServer(listener, handlers).run)
            await trio.to_thread.run_sync(self._stopping.wait)
            nursery.cancel_scope.cancel()

    def _stats(self, _arguments: Mapping[str, Any]) -> dict[str, Any]:
        samples = [sample for _, sample in self._samples()]
        if not samples:
            raise RequestError("no worker answered")
        summary = summarize(samples)
        summary["uptime_seconds"] = round(time.time() - self.started, 1)
        return summary

    def _flush(self, arguments: Mapping[str, Any]) -> dict[str, int]:
        _name_argument(arguments)  # one clear error rather than one per worker
        results = self._each("flush", **arguments)
        return {
            key: sum(result[key] for result in results) for key in ("removed", "packets_cleared")
        }

    def _nta_change(self, command: str) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
        """Add or remove an NTA in every worker: each holds its own engine."""

        def change(arguments: Mapping[str, Any]) -> dict[str, Any]:
            name = _required_name(arguments)  # one clear error rather than one per worker
            results = self._each(command, **arguments)
            return {"name": name.to_text(), "changed": any(r["changed"] for r in results)}

        return change

    def _nta_list(self, _arguments: Mapping[str, Any]) -> dict[str, Any]:
        names = {name for result in self._each("nta_list") for name in result["names"]}
        return {"names": sorted(names, key=dns.name.from_text)}

    def _dump(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        path = _path_argument(arguments)
        dumps = [_parse_text(result["text"]) for result in self._each("dump_text")]
        dump = merge(dumps)
        write_dump_file(path, dump)
        return {"path": str(path), "entries": len(dump.entries), "records": record_count(dump)}

    def _load(self, arguments: Mapping[str, Any]) -> dict[str, int]:
        # Read here, once: the workers may run as another user (--user) who cannot read it.
        text = _read_text(_path_argument(arguments))
        parsed = _parse_text(text)  # a broken file is one clear error before any worker changes
        results = self._each("load_text", text=text)
        totals = {
            key: sum(result[key] for result in results) for key in ("loaded", "expired", "kept")
        }
        return {**totals, "workers": len(results), "dropped": parsed.dropped}


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise RequestError(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise RequestError(f"{path}: not a cache dump (not UTF-8 text)") from None
