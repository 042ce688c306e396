"""`resolver serve`: bind every listening address, then answer until SIGINT or SIGTERM."""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import socket
import time
from collections.abc import Callable

import trio

from resolver.config import Config
from resolver.core.hints import load_root_hints
from resolver.server import persist
from resolver.server.anchorstate import AnchorState
from resolver.server.listeners import ConnectionCap, TcpListener, UdpListener, bind_socket
from resolver.server.notify import notify
from resolver.server.operations import Operations
from resolver.server.privileges import drop_privileges
from resolver.server.service import ResolverService
from resolver.server.tls import ServerCertificate, check_forward_zones, load_pin_tools

log = logging.getLogger(__name__)


def format_endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


#: The collector's thresholds in a serving process (`serve`'s `freeze_gc`): young, middle and
#: old generations (CPython's defaults: 700, 10, 10). A finished question leaves no cyclic
#: garbage (`Resolution.close`, tests/test_reference_cycles.py): its objects are freed by
#: reference counting, so the young count grows only with what stays (cache entries, questions
#: in flight) and collections find next to nothing to free; but each still walks what survives,
#: and with the defaults the old generations are walked again and again as the cache grows.
#: Measured under the unique-name flood (8 s, `benchmarks/flood.py --rate 0`, the daemon's
#: `gc.callbacks`): with the defaults, 0.6 s of collecting for 22,000 queries (27 us each, the
#: longest pause 24 ms); with these, 0.06 to 0.11 s in all for 13,000 to 24,000 queries,
#: startup included (3 to 8 us each). Before misses stopped leaving cycles, these thresholds
#: collected 280,000 to 355,000 objects in such a run, 0.3 to 0.6 s, in pauses of up to 113 ms.
_GC_THRESHOLDS = (50_000, 20, 100)


async def serve(
    config: Config,
    ready: Callable[[list[str]], None],
    *,
    clock: Callable[[], float] = time.time,
    freeze_gc: bool = False,
    task_status: trio.TaskStatus[ResolverService] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the resolver until cancelled or signalled; `ready` gets the bound endpoints.

    Everything that can fail at start (hints, sockets, the user to become) fails before `ready`
    is called, so a process supervisor sees either a working server or an error, never
    something in between.

    `freeze_gc` (for a process that serves and nothing else): once started, everything alive
    (modules, dnspython's tables, trio, the hints) moves out of the cyclic collector's reach, so
    a full collection, which the cache's growth triggers now and then, no longer walks it: about
    10 ms less in such a pause, which every query waiting meanwhile pays. Hits alone allocate
    nothing that lives, so they trigger no collection at all. The young generation is also
    collected 70 times less often (`_GC_THRESHOLDS`): a miss allocates a few hundred objects,
    most freed by reference counting, so the default threshold (700) had the collector walk
    the young objects every few misses for little garbage, about a tenth of a miss's CPU. Off
    in tests, which start many servers in one process and would keep each one's leftovers
    forever.
    """
    hints = load_root_hints(config.root_hints)
    check_forward_zones(config.forward_zones)
    with contextlib.ExitStack() as resources:
        shared = config.workers > 1
        bound = [
            (
                resources.enter_context(bind_socket(address, port, socket.SOCK_DGRAM, shared)),
                resources.enter_context(bind_socket(address, port, socket.SOCK_STREAM, shared)),
            )
            for address, port in config.listen
        ]
        # DNS over TLS and over HTTPS: TCP only, each with a context reloaded on SIGHUP.
        # Both contexts come from one read of the files (one certificate, each error once).
        dot = doh = server_certificate = None
        certificate, key = config.tls_certificate, config.tls_key
        if certificate is not None and key is not None and (config.tls_listen or config.doh_listen):
            server_certificate = ServerCertificate(certificate, key)
            dot, doh = server_certificate.dot, server_certificate.doh
        encrypted = [
            (resources.enter_context(bind_socket(a, p, socket.SOCK_STREAM, shared)), a, p)
            for a, p in (*config.tls_listen, *config.doh_listen)
        ]
        query_log = None
        if config.query_log is not None:
            from resolver.server.querylog import QueryLog  # lazily: it loads resolver.hitrate

            query_log = resources.enter_context(contextlib.closing(QueryLog(config.query_log)))
        service = ResolverService(config, hints, clock=clock, query_log=query_log)
        anchor_state = AnchorState.open(config, clock)  # RFC 5011 state of the trust anchors
        if config.dnssec.validate:
            anchor_state.attach(service.engine.context)
        operations = Operations(config, service)
        operations.open(resources)  # control socket and metrics port, bound before --user too
        import_enabled_features(config)
        if config.user is not None:
            drop_privileges(config.user)
        # Read as the user that will write it at the stop: `persist.load` believes only a
        # file of its own user's (or root's).
        persist_file = config.cache.persist_file
        if persist_file is not None:
            persist.load(persist_file, service.cache, clock(), config.cache.max_entries)
        stopping = (signal.SIGINT, signal.SIGTERM)
        with trio.open_signal_receiver(*stopping, signal.SIGHUP) as signals:
            async with trio.open_nursery() as nursery:
                await nursery.start(service.run)  # resolutions outlive their first asker
                nursery.start_soon(operations.run)
                nursery.start_soon(anchor_state.run)
                # One cap for every stream connection: TCP, DoT and DoH alike.
                cap = ConnectionCap(config.limits.max_tcp_clients)
                for udp, tcp in bound:
                    nursery.start_soon(UdpListener(udp, service).run)
                    nursery.start_soon(TcpListener(tcp, service, config.limits, cap=cap).run)
                endpoints = [f"udp+tcp {format_endpoint(a, p)}" for a, p in config.listen]
                for index, (sock, address, port) in enumerate(encrypted):
                    if index < len(config.tls_listen):
                        listener = TcpListener(sock, service, config.limits, cap=cap, tls=dot)
                        endpoints.append(f"tls {format_endpoint(address, port)}")
                    else:
                        listener = TcpListener(
                            sock,
                            service,
                            config.limits,
                            cap=cap,
                            tls=doh,
                            https_path=config.doh_path,
                        )
                        endpoints.append(f"https {format_endpoint(address, port)}")
                    nursery.start_soon(listener.run)
                if freeze_gc:
                    gc.collect()
                    gc.freeze()
                    gc.set_threshold(*_GC_THRESHOLDS)
                ready(endpoints)
                task_status.started(service)
                async for signum in signals:
                    if signum == signal.SIGHUP:
                        # New connections get the new certificate; open ones keep theirs.
                        if server_certificate is not None:
                            server_certificate.reload()
                        continue
                    log.info("received %s, stopping", signal.Signals(signum).name)
                    notify("STOPPING=1")
                    nursery.cancel_scope.cancel()
        # A clean stop (a signal): keep the cache for the next start.
        if persist_file is not None:
            persist.save(persist_file, service.cache, clock())
        anchor_state.save()


def import_enabled_features(config: Config) -> None:
    """Import the modules of the features that are on, before privileges are dropped.

    They are imported lazily so that a daemon that does not use them does not carry their
    memory; one that does must have them before `--user` (the new user may be unable to read
    the Python installation) and before its first client, who would wait for the import.
    """
    if config.doh_listen:
        import resolver.server.https  # noqa: F401
    if any(zone.tls_pin_sha256 for zone in config.forward_zones):
        load_pin_tools()
    if config.dnssec.validate:
        from resolver.dnssec.verify import load_crypto

        load_crypto()
