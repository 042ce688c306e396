"""Which reader a file needs, by its first bytes, and several files read into one trace.

Files are read in the order given and share one `Pairer`, so that a query at the end of one
capture (rotated by `tcpdump -G`, say) still meets its response at the start of the next; the
trace is then sorted by time, so the order of the files does not change the figures.

A gzip'd file (`dns.pcap.gz`, a rotated log) is read through `gzip` transparently, whatever
its format; a gzip stream that is cut or corrupt part way ends that file with a note, as a cut
capture does.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from resolver.hitrate.pairing import Pairer
from resolver.hitrate.trace import Notes, Trace

FORMATS = ("auto", "pcap", "dnstap", "querylog")

_PCAP_MAGICS = (b"\xa1\xb2\xc3\xd4", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1")
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
_FSTRM_ESCAPE = b"\x00\x00\x00\x00"
_GZIP_MAGIC = b"\x1f\x8b"


class InputError(Exception):
    """A file that cannot be read at all; the message names it and says why."""


class _Gunzip(io.RawIOBase):
    """A gzip stream that ends, rather than raises, where the compressed data is cut or
    corrupt: the readers then see a short read and note it (`broken` says so)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._stream = gzip.open(path, "rb")  # noqa: SIM115 (closed by close())
        self.broken = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.broken:
            return 0
        try:
            data = self._stream.read(len(buffer))
        except (EOFError, OSError, zlib.error):
            self.broken = True
            return 0
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._stream.close()
        super().close()


def _open(path: Path) -> tuple[BinaryIO, _Gunzip | None]:
    """The file's bytes, uncompressed if it is gzip'd (and the gzip layer, to ask whether it
    broke); `InputError` naming the reason."""
    if path.is_dir():
        raise InputError(f"{path}: is a directory")
    try:
        stream = path.open("rb")
        if stream.read(2) == _GZIP_MAGIC:
            stream.close()
            raw = _Gunzip(path)
            return io.BufferedReader(raw), raw
        stream.seek(0)
        return stream, None
    except OSError as error:
        raise InputError(f"{path}: {error.strerror or error}") from None


def detect(path: Path) -> str:
    """ "pcap" (pcap or pcapng), "dnstap" or "querylog", from the first bytes of the file."""
    stream, _gunzip = _open(path)
    try:
        head = stream.read(32)
    finally:
        stream.close()
    if not head:
        raise InputError(f"{path}: empty file")
    if head[:4] in _PCAP_MAGICS or head[:4] == _PCAPNG_MAGIC:
        return "pcap"
    if head[:4] == _FSTRM_ESCAPE:
        return "dnstap"
    if len(head) >= 11 and head[:4].isdigit() and head[4:5] == b"-" and b"T" in head[:11]:
        return "querylog"
    raise InputError(f"{path}: not a pcap, pcapng, dnstap or query log file (give --format)")


def read_files(
    paths: Sequence[Path],
    file_format: str = "auto",
    progress: Callable[[int], None] | None = None,
    servers: Iterable[str] = (),
) -> Trace:
    """One trace from every file (see the module docstring); `InputError` if one is unreadable.

    `progress(bytes)` is told how far the reading has got, file by file. `servers`: the
    resolver's addresses, if known (`Pairer`).
    """
    from resolver.hitrate.dnstap import read_dnstap
    from resolver.hitrate.pcap import CaptureError, read_capture
    from resolver.hitrate.querylog import read_querylog

    notes = Notes()
    pairer = Pairer(notes, servers)
    done = 0
    for path in paths:
        kind = detect(path) if file_format == "auto" else file_format
        binary, gunzip = _open(path)
        try:
            if kind == "pcap":
                try:
                    read_capture(binary, pairer, str(path))
                except CaptureError as error:
                    raise InputError(str(error)) from None
            elif kind == "dnstap":
                read_dnstap(binary, pairer, str(path))
            else:
                text = io.TextIOWrapper(binary, encoding="utf-8", errors="replace", newline="")
                read_querylog(text, pairer, str(path))
        except OSError as error:
            raise InputError(f"{path}: {error.strerror or error}") from None
        finally:
            binary.close()
        if gunzip is not None and gunzip.broken:
            notes.messages.append(f"{path}: the gzip data is cut or corrupt; read up to there")
        done += path.stat().st_size
        if progress is not None:
            progress(done)
    return Trace.build(pairer.finish(), notes)
