"""`cache.persist_file`: the cache written on a clean stop and read back at the next start.

The file is a cache dump (`cache/dump.py`, the format `resolver cache dump` writes), written
atomically (`operations.write_dump_file`: a temporary file in the same directory, fsync,
rename), so a crash while writing leaves the previous file. At start it is read with TTLs
reduced by the wall-clock time it spent on disk; expired entries are dropped. Anything wrong
with it (missing, unreadable, corrupt, truncated, another format version) is one log line and a
cold start: a cache is an optimisation, never a reason not to start. Reading stops at
`cache.max_entries` entries, so a huge file costs no more memory than a full cache. Only a
regular file of the resolver's own user (or root's) that no group or other user may write is
read (`_open_own`), never through a symbolic link: what it holds is believed like data learnt
from the authorities.

Only records are kept: the packet cache is rendered from them on the first question for each
name (a hit on cached records, no upstream query), and so is rebuilt as clients ask. With them
go their RRSIGs and the NSEC/NSEC3 proofs of negative answers, but never a validation status:
every loaded entry is INDETERMINATE and is validated again when it is first used, so the file
can never make data secure (`cache/dump.py`). A file of format version 1 (no signatures) is
ignored like any other version.

With `--workers N` each worker has its own cache and its own file, PATH.worker-I for worker I
(`for_worker`): a worker writes only what it holds and reads only its own, so no two processes
ever write one file. Changing N leaves the extra files unread (those workers start cold).
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from resolver.cache.dump import DumpError, Restored, parse_lines, restore, snapshot
from resolver.cache.records import RecordCache
from resolver.config import Config
from resolver.server.control import RequestError
from resolver.server.operations import write_dump_file

log = logging.getLogger(__name__)

#: A line longer than this is not one the resolver wrote (a TXT record of 64 KiB is far less).
_MAX_LINE = 256 * 1024


def for_worker(config: Config, slot: int) -> Config:
    """The settings of worker `slot`: its own persistent file, if there is one."""
    path = config.cache.persist_file
    if path is None:
        return config
    cache = dataclasses.replace(
        config.cache, persist_file=path.with_name(f"{path.name}.worker-{slot}")
    )
    return dataclasses.replace(config, cache=cache)


def _lines(file: TextIO) -> Iterator[str]:
    """The file's lines; an over-long line is a DumpError, not a memory problem."""
    while line := file.readline(_MAX_LINE):
        if len(line) >= _MAX_LINE and not line.endswith("\n"):
            raise DumpError(f"a line longer than {_MAX_LINE} bytes")
        yield line


def _open_own(path: Path) -> TextIO:
    """`path` for reading, if it is a regular file (not a symbolic link) that nobody but its
    owner, this process's user or root, can have written: the cache it holds is believed as
    if the resolver had learnt it itself, so a file another user could plant or change would
    let them answer for every name in it. A PermissionError says what is wrong."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise PermissionError(errno.EPERM, "a symbolic link") from None
        raise
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise PermissionError(errno.EPERM, "not a regular file")
        if status.st_uid not in (os.geteuid(), 0):
            raise PermissionError(errno.EPERM, f"owned by uid {status.st_uid}, not by us")
        if status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise PermissionError(errno.EPERM, "writable by group or others")
        return open(descriptor, encoding="utf-8", closefd=True)
    except BaseException:
        os.close(descriptor)
        raise


def load(path: Path, cache: RecordCache, now: float, max_entries: int) -> Restored | None:
    """Fill `cache` from `path`; None (and one log line) if there was nothing usable."""
    try:
        with _open_own(path) as file:
            dump = parse_lines(_lines(file), max_entries)
    except FileNotFoundError:
        log.info("cache file %s does not exist yet: starting with an empty cache", path)
        return None
    except (OSError, UnicodeDecodeError, DumpError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        log.warning("cache file %s ignored (%s): starting with an empty cache", path, reason)
        return None
    except Exception as error:  # whatever the file holds, the daemon starts (module docstring)
        log.warning("cache file %s ignored (%r): starting with an empty cache", path, error)
        return None
    if dump.version is None:
        log.warning("cache file %s ignored (no $VERSION line): starting with an empty cache", path)
        return None
    restored = Restored()
    restore(cache, dump.entries, now - dump.written_at, restored)
    log.info(
        "cache file %s: %d entries loaded, %d expired on disk, %d kept out%s%s",
        path,
        restored.loaded,
        restored.expired,
        restored.kept,
        f"; {dump.dropped} lines dropped (signatures or proofs that did not belong, and"
        " their entries)"
        if dump.dropped
        else "",
        f"; stopped at cache.max_entries ({max_entries})" if dump.cut_short else "",
    )
    return restored


def save(path: Path, cache: RecordCache, now: float) -> bool:
    """Write the cache to `path` (atomically); False (and one log line) if it could not."""
    dump = snapshot(list(cache.export()), now)
    try:
        write_dump_file(path, dump)
    except RequestError as error:
        log.warning("cache not saved: %s", error)
        return False
    log.info("cache saved to %s: %d entries", path, len(dump.entries))
    return True
