"""Which reader a file needs, by its first bytes, and several files read into one trace.

Files are read in the order given and share one `Pairer`, so that a query at the end of one
capture (rotated by `tcpdump -G`, say) still meets its response at the start of the next; the
trace is then sorted by time, so the order of the files does not change the figures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from resolver.hitrate.pairing import Pairer
from resolver.hitrate.trace import Notes, Trace

FORMATS = ("auto", "pcap", "dnstap", "querylog")

_PCAP_MAGICS = (b"\xa1\xb2\xc3\xd4", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1")
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
_FSTRM_ESCAPE = b"\x00\x00\x00\x00"


class InputError(Exception):
    """A file that cannot be read at all; the message names it (and a missing package)."""


def detect(path: Path) -> str:
    """ "pcap" (pcap or pcapng), "dnstap" or "querylog", from the first bytes of the file."""
    try:
        with path.open("rb") as stream:
            head = stream.read(32)
    except OSError as error:
        raise InputError(f"{path}: {error.strerror}") from None
    if head[:4] in _PCAP_MAGICS or head[:4] == _PCAPNG_MAGIC:
        return "pcap"
    if head[:4] == _FSTRM_ESCAPE:
        return "dnstap"
    if len(head) >= 11 and head[:4].isdigit() and head[4:5] == b"-" and b"T" in head[:11]:
        return "querylog"
    raise InputError(f"{path}: not a pcap, pcapng, dnstap or query log file (give --format)")


def require_dpkt() -> None:
    """pcap and pcapng need dpkt, an optional extra: say so by name, not with a traceback."""
    try:
        import dpkt  # noqa: F401
    except ImportError:
        raise InputError(
            "reading pcap and pcapng captures needs the Python package dpkt: "
            "pip install 'resolver[hitrate]' (or pip install dpkt)"
        ) from None


def read_files(
    paths: Sequence[Path],
    file_format: str = "auto",
    progress: Callable[[int], None] | None = None,
) -> Trace:
    """One trace from every file (see the module docstring); `InputError` if one is unreadable.

    `progress(bytes)` is told how far the reading has got, file by file.
    """
    from resolver.hitrate.dnstap import read_dnstap
    from resolver.hitrate.querylog import read_querylog

    notes = Notes()
    pairer = Pairer(notes)
    done = 0
    for path in paths:
        kind = detect(path) if file_format == "auto" else file_format
        try:
            if kind == "pcap":
                require_dpkt()
                from resolver.hitrate.pcap import CaptureError, read_capture

                with path.open("rb") as stream:
                    try:
                        read_capture(stream, pairer, str(path))
                    except CaptureError as error:
                        raise InputError(str(error)) from None
            elif kind == "dnstap":
                with path.open("rb") as stream:
                    read_dnstap(stream, pairer, str(path))
            else:
                with path.open(encoding="utf-8", errors="replace", newline="") as text:
                    read_querylog(text, pairer, str(path))
        except OSError as error:
            raise InputError(f"{path}: {error.strerror or error}") from None
        done += path.stat().st_size
        if progress is not None:
            progress(done)
    return Trace.build(pairer.finish(), notes)
