"""`python -m resolver.testing`: the standard test internet as a long-running process.

For demos and benchmarks, where the resolver is started separately and pointed at the printed
hints file. Runs until SIGINT or SIGTERM, then closes every socket.
"""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path

import click
import trio

from resolver.testing.authority import zone_origin
from resolver.testing.faults import Fault
from resolver.testing.internet import TestInternet


@click.command()
@click.option(
    "--hints-out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Where to write the root hints file (default: a temporary file, removed on exit).",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=53,
    show_default=True,
    help="Port of every server.",
)
@click.option(
    "--fault-everywhere",
    type=click.Choice([fault.value for fault in Fault]),
    default=Fault.NONE.value,
    show_default=True,
    help="Make every server misbehave this way (e.g. intercept: a network whose DNS is hijacked).",
)
def main(hints_out: Path | None, port: int, fault_everywhere: str) -> None:
    """Serve the standard loopback test internet until interrupted."""
    internet = TestInternet.default(port=port)
    internet.set_fault_everywhere(Fault(fault_everywhere))
    temporary = hints_out is None
    if hints_out is None:
        handle, name = tempfile.mkstemp(prefix="resolver-test-hints-", suffix=".hints")
        os.close(handle)
        hints_out = Path(name)
        hints_out.chmod(0o644)  # not secret, and a resolver that dropped privileges must read it
    try:
        internet.write_hints(hints_out)
        trio.run(_serve, internet, hints_out)
    finally:
        if temporary:
            hints_out.unlink(missing_ok=True)


async def _serve(internet: TestInternet, hints: Path) -> None:
    """Serve until a signal arrives; the signal receiver turns SIGINT into a clean stop too."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with internet.running():
            for server in internet.servers.values():
                zones = " ".join(zone_origin(zone).to_text() for zone in server.zones)
                click.echo(f"{server.name:32} {server.address}:{server.port}  {zones}")
            click.echo(f"root hints written to {hints}")
            click.echo("ready", nl=True)
            async for signum in signals:
                click.echo(f"stopping on {signal.Signals(signum).name}")
                break


if __name__ == "__main__":
    main()
