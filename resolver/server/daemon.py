"""`resolver serve`: bind every listening address, then answer until SIGINT or SIGTERM."""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
from collections.abc import Callable

import trio

from resolver.config import Config
from resolver.core.hints import load_root_hints
from resolver.server.handler import QueryHandler
from resolver.server.listeners import TcpListener, UdpListener, bind_socket
from resolver.server.service import ResolverService

log = logging.getLogger(__name__)


def format_endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


async def serve(
    config: Config,
    ready: Callable[[list[str]], None],
    *,
    task_status: trio.TaskStatus[ResolverService] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the resolver until cancelled or signalled; `ready` gets the bound endpoints.

    Everything that can fail at start (hints, sockets) fails before `ready` is called, so a
    process supervisor sees either a working server or an error, never something in between.
    """
    service = ResolverService(config, load_root_hints(config.root_hints))
    handler = QueryHandler(service)
    with contextlib.ExitStack() as sockets:
        listeners: list[UdpListener | TcpListener] = []
        shared = config.workers > 1
        for address, port in config.listen:
            udp = sockets.enter_context(
                bind_socket(address, port, socket.SOCK_DGRAM, reuse_port=shared)
            )
            tcp = sockets.enter_context(
                bind_socket(address, port, socket.SOCK_STREAM, reuse_port=shared)
            )
            listeners += [
                UdpListener(udp, handler, config.limits),
                TcpListener(tcp, handler, config.limits),
            ]
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                for listener in listeners:
                    nursery.start_soon(listener.run)
                ready([f"udp+tcp {format_endpoint(a, p)}" for a, p in config.listen])
                task_status.started(service)
                async for signum in signals:
                    log.info("received %s, stopping", signal.Signals(signum).name)
                    nursery.cancel_scope.cancel()
