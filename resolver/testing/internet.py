"""A whole miniature DNS internet on loopback: many `AuthServer`s plus the root hints to find them.

Tests use it three ways, all over the same data and the same fault logic: `respond()` with no
sockets for the resolver's sans-I/O iterator, `running()` inside a trio test, and `in_thread()`
for tests that start the resolver as a separate process.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.name
import dns.rdatatype
import dns.zone
import trio

from resolver.dnssec import TrustAnchors, parse_trust_anchors
from resolver.testing import signed_topology
from resolver.testing.faults import Fault, Reply
from resolver.testing.server import AuthServer
from resolver.testing.topology import DEFAULT_SERVERS, DEFAULT_ZONES, ServerSpec
from resolver.testing.transport import BoundSockets

#: TTL of the records in the hints file, as in IANA's named.root.
HINTS_TTL = 3600000


class TestInternet:
    """Authoritative servers built from zone texts and `ServerSpec`s, each serving only its zones.

    Every server gets its own address, so a query to a root server can only ever produce what a
    root server would say: this is what lets resolver tests check real iteration.
    """

    # The name starts with "Test"; without this pytest would try to collect it as a test class.
    __test__ = False

    def __init__(
        self,
        zones: Mapping[str, str],
        servers: Sequence[ServerSpec],
        root_servers: Sequence[str] | None = None,
        port: int = 53,
    ) -> None:
        self.port = port
        #: The root's trust anchor in zone-file syntax (the signed internet's), or None.
        self.anchor_text: str | None = None
        self.zones: dict[dns.name.Name, dns.zone.Zone] = {
            dns.name.from_text(origin): dns.zone.from_text(
                text, origin=dns.name.from_text(origin), relativize=False
            )
            for origin, text in zones.items()
        }
        root_zone = self.zones.get(dns.name.root)
        root_ns = root_zone.get_rrset(dns.name.root, dns.rdatatype.NS) if root_zone else None
        self.servers: dict[str, AuthServer] = {}
        self._by_address: dict[str, AuthServer] = {}
        for spec in servers:
            server = AuthServer(spec.name, spec.address, self._zones_of(spec), port, root_ns)
            if spec.name in self.servers or server.address in self._by_address:
                raise ValueError(f"duplicate server name or address in {spec}")
            self.servers[spec.name] = server
            self._by_address[server.address] = server
        self.root_servers: tuple[AuthServer, ...] = self._pick_roots(root_servers)

    @classmethod
    def default(cls, port: int = 53) -> TestInternet:
        """The standard topology of `resolver.testing.topology`, which the tests rely on."""
        return cls(DEFAULT_ZONES, DEFAULT_SERVERS, port=port)

    @classmethod
    def signed(cls, port: int = 53, *, bench: str | None = None) -> TestInternet:
        """The DNSSEC-signed internet of `resolver.testing.signed_topology` (its own addresses,
        127.53.100.0/24); its root trust anchor is `signed_topology.trust_anchor_text()`.
        `bench`: zone-file lines for an extra signed zone `bench.sec.` (`with_bench`)."""
        zones, servers = signed_topology.ZONES, signed_topology.SERVERS
        if bench is not None:
            zones, servers = signed_topology.with_bench(bench)
        internet = cls(zones, servers, port=port)
        signed_topology.sign(internet.zones)
        internet.anchor_text = signed_topology.trust_anchor_text()
        return internet

    def trust_anchors(self) -> TrustAnchors:
        """What a resolver facing this internet should trust: the signed internet's root KSK,
        or nothing at all for an unsigned internet (whose root no anchor could vouch for:
        with the IANA anchors every answer would be bogus, as Unbound would make it)."""
        if self.anchor_text is None:
            return TrustAnchors()
        return parse_trust_anchors(self.anchor_text, "<signed test internet>")

    def write_trust_anchor(self, path: Path) -> Path:
        """Write the signed internet's root anchor to `path`, for `--trust-anchor-file`."""
        if self.anchor_text is None:
            raise ValueError("an unsigned internet has no trust anchor")
        path.write_text(self.anchor_text, encoding="ascii")
        return path

    def server_at(self, address: str) -> AuthServer:
        """The server bound to `address`; KeyError if none is (as for an unreachable host)."""
        try:
            canonical = str(ipaddress.ip_address(address))
        except ValueError:
            raise KeyError(address) from None
        return self._by_address[canonical]

    def hints_text(self) -> str:
        """A root hints file in named.root format listing the root servers of this internet."""
        if not self.root_servers:
            raise ValueError("this internet has no root server to list in a hints file")
        lines = ["; Root hints for the loopback test internet (resolver.testing)."]
        for server in self.root_servers:
            host = dns.name.from_text(server.name).to_text()
            rdtype = "AAAA" if ":" in server.address else "A"
            lines.append(f".    {HINTS_TTL}    NS    {host}")
            lines.append(f"{host}    {HINTS_TTL}    {rdtype}    {server.address}")
        return "\n".join(lines) + "\n"

    def write_hints(self, path: Path) -> Path:
        """Write `hints_text()` to `path` and return it, for a resolver started with that file."""
        path.write_text(self.hints_text(), encoding="ascii")
        return path

    def respond(self, address: str, query: dns.message.Message, tcp: bool = False) -> Reply:
        """What the server at `address` sends back for `query`, without sockets.

        Faults, UDP truncation, injection and counting apply exactly as over the network; only
        the DELAY wait and SPOOF's forged datagrams (a socket-level attack) are absent. None means
        no reply (a timeout, or a refused TCP connection under NO_TCP); bytes means an unparsable
        reply.
        """
        return self.server_at(address).respond(query, tcp)

    def total_queries(self) -> int:
        """Queries received by all servers together: the cost of a resolution."""
        return sum(server.query_count for server in self.servers.values())

    def reset_counters(self) -> None:
        """Forget every server's query log and counts, e.g. between a cold and a warm cache."""
        for server in self.servers.values():
            server.reset()

    def reset_faults(self) -> None:
        """Make every server healthy again: fault NONE, default delays, nothing injected."""
        for server in self.servers.values():
            server.reset_faults()

    def set_fault_everywhere(self, fault: Fault) -> None:
        """Give every server `fault`: e.g. INTERCEPT for a network whose DNS is all hijacked.

        This is what a resolver sees on a network that redirects port 53 to an interceptor:
        whichever authority it asks, the same middlebox answers.
        """
        for server in self.servers.values():
            server.fault = fault

    @asynccontextmanager
    async def running(self) -> AsyncIterator[TestInternet]:
        """Serve every server over UDP and TCP for the duration of the block.

        Every socket is bound before the block starts, so its first query cannot race the
        servers' startup and an address in use raises a plain OSError here; leaving the block
        closes every socket. An exception from the block comes out as itself, not wrapped in the
        ExceptionGroup of the nursery that runs the servers.
        """
        bound: list[tuple[AuthServer, BoundSockets]] = []
        try:
            for server in self.servers.values():
                bound.append((server, await server.bind()))
            async with trio.open_nursery() as nursery:
                for server, sockets in bound:
                    nursery.start_soon(server.serve_bound, sockets)
                try:
                    yield self
                finally:
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            raise _sole_exception(group) from None
        finally:
            for _, sockets in bound:
                sockets.close()

    @contextmanager
    def in_thread(self) -> Iterator[TestInternet]:
        """Run `running()` on a private trio loop in a background thread for the block.

        For tests whose resolver runs in another process, where no trio loop of the test exists.
        A binding error is raised here rather than left to show up as resolver timeouts.
        """
        runner = _ThreadRunner(self)
        runner.start()
        try:
            yield self
        finally:
            runner.stop()
        runner.raise_error()

    def _zones_of(self, spec: ServerSpec) -> list[dns.zone.Zone]:
        """The parsed zones a spec names; a typo in an origin fails here, not as a REFUSED."""
        try:
            return [self.zones[dns.name.from_text(origin)] for origin in spec.zones]
        except KeyError as missing:
            raise ValueError(f"{spec.name} serves unknown zone {missing}") from None

    def _pick_roots(self, names: Sequence[str] | None) -> tuple[AuthServer, ...]:
        """The servers the hints file lists: the named ones, or all that serve the root zone."""
        if names is None:
            return tuple(
                server
                for server in self.servers.values()
                if any(zone.origin == dns.name.root for zone in server.zones)
            )
        unknown = [name for name in names if name not in self.servers]
        if unknown:
            raise ValueError(f"unknown root servers: {unknown}")
        return tuple(self.servers[name] for name in names)


def _sole_exception(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one exception inside `group` (however deeply nested), or the group if there are more."""
    while len(group.exceptions) == 1:
        inner = group.exceptions[0]
        if not isinstance(inner, BaseExceptionGroup):
            return inner
        group = inner
    return group


@dataclass
class _ThreadRunner:
    """The background thread of `TestInternet.in_thread()` and what it reports back."""

    internet: TestInternet
    thread: threading.Thread | None = None
    token: trio.lowlevel.TrioToken | None = None
    scope: trio.CancelScope | None = None
    error: BaseException | None = None
    _ready: threading.Event = field(default_factory=threading.Event, repr=False)

    def start(self) -> None:
        """Start the loop and wait until every socket is bound, or raise why binding failed."""
        self.thread = threading.Thread(target=self._run, name="test-internet", daemon=True)
        self.thread.start()
        self._ready.wait()
        if self.token is None:
            self.thread.join()
            self.raise_error()
            raise RuntimeError("test internet thread stopped before serving")

    def stop(self) -> None:
        """Cancel the servers from this thread and wait for every socket to be closed."""
        if self.token is not None and self.scope is not None:
            with suppress(trio.RunFinishedError):
                self.token.run_sync_soon(self.scope.cancel)
        if self.thread is not None:
            self.thread.join()

    def raise_error(self) -> None:
        """Re-raise, in the caller's thread, whatever ended the loop abnormally."""
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def _run(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as error:
            self.error = error
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        with trio.CancelScope() as scope:
            async with self.internet.running():
                self.scope = scope
                self.token = trio.lowlevel.current_trio_token()
                self._ready.set()
                await trio.sleep_forever()
