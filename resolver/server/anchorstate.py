"""`dnssec.trust_anchor_state`: the RFC 5011 state of the trust anchors, kept across restarts.

The daemon builds one `AnchorState` at start: the seeds (`dnssec.trust_anchor_file`, or the
bundled root anchors) plus the state file. A missing file means a first start (the seeds are
used, silently); an unreadable or corrupt one is one warning naming `dnssec.trust_anchor_state`
and a start from the seeds, never a reason not to start: the seeds are what the operator
configured, and the next DNSKEY fetch rebuilds the state.

The iterator hands every DNSKEY RRset of an anchor's zone to `observe` (through the engine
context's `anchor_keys_seen` hook; `attach` installs it). A change of state (a key in AddPend,
Valid, Revoked...) is logged at once and written by `run` within a minute; a clean stop writes
what is still unwritten. So a flapping upstream costs at most one write a minute, and a crash
loses at most a minute of hold-down, which RFC 5011's 30 days absorb. Writes are atomic
(`operations.write_file_atomically`, mode 0644: the file holds public keys only, and an
operator or a monitoring check may read it).

With `--workers N` every worker observes the same DNSKEY RRsets and writes the same file; each
write is atomic and they hold the same keys, so whichever lands last is right.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

import dns.name
import dns.rdataset
import dns.rrset
import trio
from dns.rdtypes.ANY.RRSIG import RRSIG

from resolver.config import Config
from resolver.dnssec.anchors import (
    TrustAnchorError,
    TrustAnchors,
    default_anchors,
    parse_trust_anchors,
)
from resolver.dnssec.managed import ManagedAnchors
from resolver.dnssec.rfc5011 import StateFileError
from resolver.server.control import RequestError
from resolver.server.errors import StartupError
from resolver.server.operations import write_file_atomically

log = logging.getLogger(__name__)

#: At most one write of the state file per this many seconds.
WRITE_INTERVAL = 60.0
#: The state file holds public keys: readable by all, writable by the daemon.
FILE_MODE = 0o644
#: A state file larger than this is not one the resolver wrote (a line per key, ~500 bytes).
_MAX_SIZE = 1024 * 1024

#: What the engine's context calls when it has fetched an anchor zone's DNSKEY RRset.
KeysSeen = Callable[[dns.name.Name, dns.rrset.RRset, dns.rrset.RRset | None, float], None]


class AnchorHost(Protocol):
    """What `attach` needs of the engine's context (`resolver/core/work.py: Context`)."""

    @property
    def anchor_listeners(self) -> list[KeysSeen]: ...

    def replace_trust_anchors(self, anchors: TrustAnchors) -> None: ...


def load_seeds(config: Config) -> TrustAnchors:
    """`dnssec.trust_anchor_file`, or the bundled root anchors. A bad file is a StartupError
    naming the key, the file and the line (the daemon does not start: validating with anchors
    other than those configured would be worse than not starting)."""
    path = config.dnssec.trust_anchor_file
    if path is None:
        return default_anchors()
    try:
        return parse_trust_anchors(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise StartupError(f"dnssec.trust_anchor_file: {path}: {reason}") from None
    except TrustAnchorError as error:
        raise StartupError(f"dnssec.trust_anchor_file: {error}") from None


class AnchorState:
    """The managed anchors of one daemon and their state file (None: kept in memory only)."""

    def __init__(
        self,
        managed: ManagedAnchors,
        path: Path | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.managed = managed
        self.path = path
        self.clock = clock
        self.unsaved = False
        self.writes = 0

    @classmethod
    def open(
        cls,
        config: Config,
        clock: Callable[[], float] = time.time,
        seeds: TrustAnchors | None = None,
    ) -> AnchorState:
        """The seeds plus the state file; a bad state file is one warning (module docstring)."""
        seeds = seeds if seeds is not None else load_seeds(config)
        path = config.dnssec.trust_anchor_state
        text = _read_state(path) if path is not None else None
        try:
            managed = ManagedAnchors(seeds, text, str(path))
        except Exception as error:  # StateFileError, or whatever the file holds: never fatal
            log.warning(
                "dnssec.trust_anchor_state ignored (%s): starting from the configured anchors",
                error if isinstance(error, StateFileError) else repr(error),
            )
            managed = ManagedAnchors(seeds)
        return cls(managed, path, clock)

    def observe(
        self,
        zone: dns.name.Name,
        dnskey_rrset: dns.rrset.RRset,
        rrsigs: Iterable[RRSIG] | dns.rdataset.Rdataset | None,
        now: float,
    ) -> bool:
        """`ManagedAnchors.observe`, logging each change and marking the state unsaved."""
        if not self.managed.observe(zone, dnskey_rrset, rrsigs, now):
            return False
        for change in self.managed.last_changes:
            log.warning("trust anchor %s: %s", zone, change)
        self.unsaved = True
        return True

    def attach(self, host: AnchorHost) -> None:
        """Give the engine's context the anchors in force and listen to its DNSKEY fetches
        of anchor zones (the context applies the negative trust anchors itself)."""

        def keys_seen(
            zone: dns.name.Name,
            dnskey_rrset: dns.rrset.RRset,
            rrsigs: dns.rrset.RRset | None,
            now: float,
        ) -> None:
            if self.observe(zone, dnskey_rrset, rrsigs, now):
                host.replace_trust_anchors(self.managed.trust_anchors())

        host.replace_trust_anchors(self.managed.trust_anchors())
        host.anchor_listeners.append(keys_seen)

    def save(self) -> bool:
        """Write the state if it changed since the last write; False if nothing was written."""
        if not self.unsaved or self.path is None:
            return False
        try:
            write_file_atomically(self.path, [self.managed.to_text()], FILE_MODE)
        except RequestError as error:
            log.warning("dnssec.trust_anchor_state not saved: %s", error)
            return False  # still unsaved: tried again at the next interval
        self.unsaved = False
        self.writes += 1
        log.info("dnssec.trust_anchor_state saved to %s", self.path)
        return True

    async def run(self, interval: float = WRITE_INTERVAL) -> None:
        """Write the state at most once per `interval`, when it changed."""
        while True:
            await trio.sleep(interval)
            self.save()


def _read_state(path: Path) -> str | None:
    """The state file's text; None if there is none yet or it cannot be read (logged)."""
    try:
        with path.open("rb") as file:
            raw = file.read(_MAX_SIZE + 1)
    except FileNotFoundError:
        log.info("dnssec.trust_anchor_state %s does not exist yet: starting from the seeds", path)
        return None
    except OSError as error:
        log.warning(
            "dnssec.trust_anchor_state %s ignored (%s): starting from the configured anchors",
            path,
            error.strerror or error,
        )
        return None
    if len(raw) > _MAX_SIZE:
        log.warning(
            "dnssec.trust_anchor_state %s ignored (larger than %d bytes):"
            " starting from the configured anchors",
            path,
            _MAX_SIZE,
        )
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        log.warning(
            "dnssec.trust_anchor_state %s ignored (not UTF-8 text):"
            " starting from the configured anchors",
            path,
        )
        return None
