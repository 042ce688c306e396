"""The command line: parsing options and printing results, nothing else."""

from __future__ import annotations

import ipaddress
import logging
import sys
from dataclasses import replace
from pathlib import Path

import click
import dns.exception
import dns.name
import dns.rcode
import dns.rdatatype
import trio

from resolver.config import LOOPBACK_NETWORKS, CacheConfig, Config
from resolver.core.hints import HintsError, load_root_hints
from resolver.server.daemon import serve as serve_forever
from resolver.server.listeners import StartupError
from resolver.server.service import ResolverService


class Endpoint(click.ParamType):
    """ADDR, ADDR:PORT or [IPv6]:PORT; the port defaults to 53."""

    name = "ADDR:PORT"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None):
        if isinstance(value, tuple):
            return value
        text = str(value)
        host, port = text, "53"
        if text.startswith("["):
            # "[::1" would otherwise parse as ::1 port 53 and start listening on a typo.
            host, bracket, rest = text[1:].partition("]")
            if not bracket or (rest and not rest.startswith(":")):
                self.fail(f"{text!r} is not ADDR:PORT or [IPv6]:PORT", param, ctx)
            if rest:
                port = rest[1:]
        elif text.count(":") == 1:
            host, port = text.split(":")
        try:
            parsed = ipaddress.ip_address(host)
        except ValueError:
            self.fail(f"{host!r} is not an IP address", param, ctx)
        if text.startswith("[") and parsed.version != 6:
            self.fail(f"{text!r}: brackets are only for IPv6 addresses", param, ctx)
        address = str(parsed)
        if not port.isdigit() or not 0 < int(port) < 65536:
            self.fail(f"{port!r} is not a port number (1-65535)", param, ctx)
        return address, int(port)


class Network(click.ParamType):
    name = "CIDR"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None):
        if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
            return value
        try:
            return ipaddress.ip_network(str(value), strict=False)
        except ValueError:
            self.fail(f"{value!r} is not an address or network like 10.0.0.0/8", param, ctx)


root_hints_option = click.option(
    "--root-hints",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Root hints file (default: the IANA hints bundled with the package).",
)
query_loopback_option = click.option(
    "--query-loopback",
    is_flag=True,
    help="Allow upstream queries to 127.0.0.0/8 and ::1 (for a test internet on loopback).",
)


def build_config(
    root_hints: Path | None,
    query_loopback: bool,
    **changes: object,
) -> Config:
    config = Config(**changes)  # type: ignore[arg-type]
    if root_hints is not None:
        config = replace(config, root_hints=root_hints)
    return replace(config, upstream=replace(config.upstream, query_loopback=query_loopback))


@click.group()
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
def cli(log_level: str) -> None:
    """A caching recursive DNS resolver."""
    logging.basicConfig(
        level=log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )


@cli.command()
@click.option(
    "--listen",
    "listen",
    type=Endpoint(),
    multiple=True,
    help="Address to answer on, repeatable (default: 127.0.0.1:53 and [::1]:53).",
)
@root_hints_option
@click.option(
    "--allow",
    type=Network(),
    multiple=True,
    help="Client network to serve, repeatable (default: loopback only).",
)
@query_loopback_option
@click.option(
    "--cache-size",
    type=click.IntRange(min=1),
    default=CacheConfig.max_entries,
    show_default=True,
    help="Maximum number of cache entries.",
)
def serve(
    listen: tuple[tuple[str, int], ...],
    root_hints: Path | None,
    allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
    query_loopback: bool,
    cache_size: int,
) -> None:
    """Answer stub resolvers over UDP and TCP until SIGINT or SIGTERM."""
    config = build_config(
        root_hints,
        query_loopback,
        listen=listen or Config.listen,
        allow=allow or LOOPBACK_NETWORKS,
        cache=CacheConfig(max_entries=cache_size),
    )

    def ready(endpoints: list[str]) -> None:
        click.echo(f"resolver listening on {', '.join(endpoints)}", err=False)
        sys.stdout.flush()

    trio.run(serve_forever, config, ready)
    click.echo("resolver stopped")


@cli.command()
@click.argument("name")
@click.argument("rdtype", metavar="[TYPE]", default="A")
@root_hints_option
@query_loopback_option
@click.option("--trace", is_flag=True, help="Print every step of the walk from the root.")
def query(
    name: str, rdtype: str, root_hints: Path | None, query_loopback: bool, trace: bool
) -> None:
    """Resolve NAME once, in this process, and print the answer."""
    # Name the offending argument: dnspython's messages alone ("A DNS label is empty.") do not.
    try:
        qname = dns.name.from_text(name)
    except (dns.exception.DNSException, ValueError) as error:
        raise click.BadParameter(
            f"{name!r} is not a domain name: {error}", param_hint="NAME"
        ) from None
    try:
        qtype = dns.rdatatype.from_text(rdtype)
    except (dns.exception.DNSException, ValueError):
        raise click.BadParameter(
            f"{rdtype!r} is not a record type (A, AAAA, MX, TXT, ... or TYPEnnn)", param_hint="TYPE"
        ) from None
    if dns.rdatatype.is_metatype(qtype) and qtype != dns.rdatatype.ANY:
        # OPT, TSIG, AXFR, IXFR...: no authoritative server answers these in a normal query, so
        # sending them upstream would only end in a confusing SERVFAIL.
        raise click.BadParameter(f"{rdtype!r} cannot be queried for", param_hint="TYPE")
    config = build_config(root_hints, query_loopback)
    service = ResolverService(config, load_root_hints(config.root_hints))
    tracer = click.echo if trace else None
    answer = trio.run(service.resolve, qname, qtype, tracer)
    summary = f";; {dns.rcode.to_text(answer.rcode)}"
    if answer.failure is not None:
        summary += f" ({answer.failure.text})"
    click.echo(f"{summary}; {service.upstream.sent} upstream queries")
    for rrset in (*answer.answer, *answer.authority):
        click.echo(rrset.to_text())
    if answer.rcode == dns.rcode.SERVFAIL:
        sys.exit(1)


def main() -> None:
    """Entry point: every expected failure ends in one line on stderr, never a traceback."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as error:
        click.echo(f"resolver: error: {error.format_message()}", err=True)
        sys.exit(error.exit_code)
    except (HintsError, StartupError) as error:
        click.echo(f"resolver: error: {error}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
