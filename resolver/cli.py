"""The command line: parsing options and printing results, nothing else."""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import logging
import os
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

import click
import dns.exception
import dns.name
import dns.rcode
import dns.rdatatype
import trio
from click.core import ParameterSource

from resolver.config import (
    CacheConfig,
    Config,
    ConfigError,
    parse_endpoint,
    parse_metrics_endpoint,
    parse_network,
)
from resolver.configfile import build
from resolver.core.hints import HintsError, load_root_hints
from resolver.core.security import Security
from resolver.core.trust import load_trust_anchors
from resolver.server.control import ControlError
from resolver.server.control import request as control_request
from resolver.server.daemon import format_endpoint
from resolver.server.daemon import serve as serve_forever
from resolver.server.errors import StartupError, WorkerFailed
from resolver.server.notify import notify
from resolver.server.operations import SupervisorOperations
from resolver.server.report import format_text
from resolver.server.service import ResolverService
from resolver.server.tls import check_forward_zones

T = TypeVar("T")


class Parsed(click.ParamType, Generic[T]):
    """An option's value read by the parser that reads the same key in the config file, so that
    both accept the same spellings; the parser's ValueError becomes click's usage error, which
    names the option. A value that is already a `kind` (a default) is kept as it is."""

    def __init__(self, name: str, parse: Callable[[str], T], kind: type | tuple[type, ...]):
        self.name = name
        self._parse = parse
        self._kind = kind

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> T:
        if isinstance(value, self._kind):
            return cast(T, value)  # a default, already parsed
        try:
            return self._parse(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


root_hints_option = click.option(
    "--root-hints",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Root hints file (default: the IANA hints bundled with the package).",
)
query_loopback_option = click.option(
    "--query-loopback",
    is_flag=True,
    help="Allow upstream queries to loopback addresses learnt from the network (the hints"
    " file, stub and forward zones may name loopback servers without it).",
)


def dnssec_options(command: Callable[..., None]) -> Callable[..., None]:
    """`--trust-anchor-file` and `--validate/--no-validate` (keys dnssec.trust_anchor_file and
    dnssec.validate): a private root (the loopback test internet) needs its own anchor, or
    none, since the bundled IANA anchors would make every answer of it bogus."""
    command = click.option(
        "--trust-anchor-file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="DS or DNSKEY records to trust (default: the IANA root anchors bundled).",
    )(command)
    return click.option(
        "--validate/--no-validate",
        default=True,
        help="DNSSEC validation (on by default; key dnssec.validate).",
    )(command)


control_socket_option = click.option(
    "--control-socket",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Unix socket of the daemon's control channel (key control_socket; off unless set).",
)

config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="TOML configuration file (see docs/configuration.md); flags given here override it.",
)


def load_settings(config_file: Path | None, **flags: str) -> Config:
    """The defaults, then `config_file`, then the flags actually typed; logging set to match.

    `flags` maps this command's parameter names to the config keys they set
    (`cache_size="cache.max_entries"`). Only flags whose value came from the command line (or
    the environment) override the file: a flag's own default must not undo a file's setting,
    which is why this asks click where each value came from instead of comparing with defaults.
    """
    ctx = click.get_current_context()
    given = {ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT}
    changes = {
        key: ctx.params[name]
        for name, key in flags.items()
        if ctx.get_parameter_source(name) in given
    }
    root = ctx.find_root()
    if root.get_parameter_source("log_level") in given:
        changes["log_level"] = root.params["log_level"]
    config = build(config_file, changes)
    logging.getLogger().setLevel(config.log_level.upper())
    return config


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
@config_option
@click.option(
    "--listen",
    "listen",
    type=Parsed("ADDR:PORT", parse_endpoint, tuple),  # ADDR, ADDR:PORT, [IPv6]:PORT; port 53
    multiple=True,
    help="Address to answer on, repeatable (default: 127.0.0.1:53 and [::1]:53).",
)
@root_hints_option
@click.option(
    "--allow",
    type=Parsed("CIDR", parse_network, (ipaddress.IPv4Network, ipaddress.IPv6Network)),
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
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=256),
    default=1,
    show_default=True,
    help="Processes sharing the listening addresses (SO_REUSEPORT), each with its own cache.",
)
@click.option("--user", help="Become this user once the sockets are bound (needs root).")
@click.option(
    "--query-log",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append one line per client query to this file.",
)
@control_socket_option
@click.option(
    "--metrics",
    type=Parsed("ADDR:PORT", parse_metrics_endpoint, tuple),  # the port required
    default=None,
    help="Serve Prometheus metrics at http://ADDR:PORT/metrics (off unless set).",
)
@dnssec_options
def serve(
    config_file: Path | None,
    listen: tuple[tuple[str, int], ...],
    root_hints: Path | None,
    allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
    query_loopback: bool,
    cache_size: int,
    workers: int,
    user: str | None,
    query_log: Path | None,
    control_socket: Path | None,
    metrics: tuple[str, int] | None,
    trust_anchor_file: Path | None,
    validate: bool,
) -> None:
    """Answer stub resolvers over UDP and TCP until SIGINT or SIGTERM."""
    config = load_settings(
        config_file,
        listen="listen",
        root_hints="root_hints",
        allow="allow",
        query_loopback="upstream.query_loopback",
        cache_size="cache.max_entries",
        workers="workers",
        user="user",
        query_log="query_log",
        control_socket="control_socket",
        metrics="metrics",
        trust_anchor_file="dnssec.trust_anchor_file",
        validate="dnssec.validate",
    )
    load_trust_anchors(config.dnssec)  # a bad anchor file is one error, before any socket
    endpoints = ", ".join(
        [f"udp+tcp {format_endpoint(a, p)}" for a, p in config.listen]
        + [f"tls {format_endpoint(a, p)}" for a, p in config.tls_listen]
        + [f"https {format_endpoint(a, p)}" for a, p in config.doh_listen]
    )

    def ready(detail: object) -> None:
        suffix = f" ({detail} workers)" if config.workers > 1 else ""
        click.echo(f"resolver listening on {endpoints}{suffix}")
        sys.stdout.flush()
        notify("READY=1")

    if config.workers > 1:
        load_root_hints(config.root_hints)  # a bad hints file is one error, not one per worker
        check_forward_zones(config.forward_zones)  # so is a bad tls_ca_file
        # lazily: multiprocessing and ctypes, for `workers > 1` only
        from resolver.server.workers import Supervisor

        with SupervisorOperations(config) as operations:  # one control socket for all workers
            Supervisor(config, operations.worker_config).run(ready)
    else:
        trio.run(partial(serve_forever, freeze_gc=True), config, ready)
    click.echo("resolver stopped")


@cli.command()
@config_option
@click.argument("name")
@click.argument("rdtype", metavar="[TYPE]", default="A")
@root_hints_option
@query_loopback_option
@click.option("--trace", is_flag=True, help="Print every step of the walk from the root.")
@dnssec_options
def query(
    config_file: Path | None,
    name: str,
    rdtype: str,
    root_hints: Path | None,
    query_loopback: bool,
    trace: bool,
    trust_anchor_file: Path | None,
    validate: bool,
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
    config = load_settings(
        config_file,
        root_hints="root_hints",
        query_loopback="upstream.query_loopback",
        trust_anchor_file="dnssec.trust_anchor_file",
        validate="dnssec.validate",
    )
    check_forward_zones(config.forward_zones)
    load_trust_anchors(config.dnssec)
    service = ResolverService(config, load_root_hints(config.root_hints))
    tracer = click.echo if trace else None
    answer = trio.run(service.resolve, qname, qtype, tracer)
    summary = f";; {dns.rcode.to_text(answer.rcode)}"
    if answer.failure is not None:
        summary += (
            f" ({answer.failure.text}: {answer.detail})"
            if answer.detail
            else f" ({answer.failure.text})"
        )
    if answer.security is not Security.INDETERMINATE:  # DNSSEC said something: show it
        summary += f"; dnssec: {answer.security.name.lower()}"
        summary += "".join(f" (EDE {note.ede_code}: {note.text})" for note in answer.notes)
    click.echo(f"{summary}; {service.engine.upstream_sent} upstream queries")
    for rrset in (*answer.answer, *answer.authority):
        click.echo(rrset.to_text())
    if answer.rcode == dns.rcode.SERVFAIL:
        sys.exit(1)


def _control(config_file: Path | None, command: str, **arguments: object) -> Any:
    """Send `command` to the daemon's control socket (from the flag or the config file)."""
    config = load_settings(config_file, control_socket="control_socket")
    if config.control_socket is None:
        raise click.UsageError(
            "no control socket: give --control-socket PATH, or --config FILE that sets "
            "control_socket (the daemon must have been started with the same)"
        )
    try:
        return control_request(config.control_socket, command, arguments)
    except ControlError as error:
        raise click.ClickException(str(error)) from None


def _absolute(path: Path) -> str:
    """The daemon opens the file itself, from its own working directory: send it absolute."""
    return os.path.abspath(path.expanduser())


@cli.command()
@config_option
@control_socket_option
@click.option("--json", "as_json", is_flag=True, help="One flat JSON object, for scripts.")
def stats(config_file: Path | None, control_socket: Path | None, as_json: bool) -> None:
    """Print the running daemon's counters (docs/operations.md, "Reading stats")."""
    summary = _control(config_file, "stats")
    click.echo(json.dumps(summary, indent=2) if as_json else format_text(summary))


@cli.group()
def cache() -> None:
    """Flush, dump or load the running daemon's cache."""


@cache.command()
@config_option
@control_socket_option
@click.argument("name", required=False)
@click.option("--subtree", is_flag=True, help="Also every name below NAME.")
def flush(
    config_file: Path | None, control_socket: Path | None, name: str | None, subtree: bool
) -> None:
    """Forget NAME (or everything) in the record cache; the packet cache is cleared whole."""
    if subtree and name is None:
        raise click.UsageError("--subtree needs a NAME")
    if name is not None:
        try:
            name = dns.name.from_text(name).to_text()
        except (dns.exception.DNSException, ValueError) as error:
            raise click.BadParameter(
                f"{name!r} is not a domain name: {error}", param_hint="NAME"
            ) from None
    result = _control(config_file, "flush", name=name, subtree=subtree)
    what = "everything" if name is None else f"{name} and below" if subtree else name
    click.echo(
        f"flushed {what}: {result['removed']} cache entries, "
        f"{result['packets_cleared']} packet-cache responses"
    )


@cache.command()
@config_option
@control_socket_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def dump(config_file: Path | None, control_socket: Path | None, file: Path) -> None:
    """Write the cache to FILE (written by the daemon, on its machine), one record per line."""
    result = _control(config_file, "dump", path=_absolute(file))
    click.echo(
        f"dumped {result['entries']} entries ({result['records']} records) to {result['path']}"
    )


@cache.command()
@config_option
@control_socket_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def load(config_file: Path | None, control_socket: Path | None, file: Path) -> None:
    """Put the entries of a dump into the cache, their TTLs reduced by the time since."""
    result = _control(config_file, "load", path=_absolute(file))
    workers = result.get("workers", 1)
    into = f" into {workers} workers' caches together" if workers > 1 else ""
    click.echo(
        f"loaded {result['loaded']} entries{into}; {result['expired']} expired since the dump, "
        f"{result['kept']} kept out by a more trusted cached copy"
    )
    if result.get("dropped"):
        click.echo(
            f"{result['dropped']} lines dropped: signatures or proofs that did not belong to "
            "the entry before them (with that entry), or lines claiming a validation status"
        )


# -- resolver hitrate -------------------------------------------------------------------------


@cli.command()
@click.argument(
    "files",
    nargs=-1,
    required=True,
    # Not `exists=True`: a missing or unreadable file is bad input (exit 1, one line naming
    # it, as for a file that is not a capture), not a usage error (exit 2).
    type=click.Path(path_type=Path),
    metavar="FILE...",
)
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["auto", "pcap", "dnstap", "querylog"]),
    default="auto",
    show_default=True,
    help="What the files are (auto: by their first bytes; pcap covers pcapng).",
)
@click.option(
    "--cache-size",
    "cache_sizes",
    type=click.IntRange(min=1),
    multiple=True,
    metavar="N",
    help="A cache size to simulate, in entries (repeatable; default: 1%, 10%, 50% and 100% "
    "of the distinct questions).",
)
@click.option(
    "--max-ttl",
    type=click.IntRange(0, 2**31 - 1),
    default=None,
    metavar="S",
    help="cache.max_ttl to simulate (default 86400); the table shows its effect.",
)
@click.option(
    "--min-ttl",
    type=click.IntRange(0, 2**31 - 1),
    default=None,
    metavar="S",
    help="cache.min_ttl to simulate (default 0); the table shows its effect.",
)
@click.option(
    "--server",
    "servers",
    multiple=True,
    metavar="ADDRESS",
    help="The resolver's address in a capture (repeatable): only queries to it are replayed. "
    "Default: queries from an address that itself receives queries are taken as the "
    "resolver's own upstream queries and left out.",
)
@click.option(
    "--engine",
    is_flag=True,
    help="Replay each cache size through the resolver's own engine (exact, a few thousand "
    "queries a second) instead of the fast cache model.",
)
@click.option("--prefetch", is_flag=True, help="Also replay with cache.prefetch on.")
@click.option("--serve-stale", is_flag=True, help="Also replay with cache.serve_stale on.")
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write PNG plots here (and NAME-hourly.png); needs matplotlib.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every figure as JSON here.",
)
def hitrate(
    files: tuple[Path, ...],
    file_format: str,
    cache_sizes: tuple[int, ...],
    max_ttl: int | None,
    min_ttl: int | None,
    servers: tuple[str, ...],
    engine: bool,
    prefetch: bool,
    serve_stale: bool,
    plot_path: Path | None,
    json_path: Path | None,
) -> None:
    """Replay captured client traffic (pcap, pcapng, dnstap, query log) against simulated
    caches: the hit rate of each cache size, next to the infinite-cache bound (docs/hitrate.md)."""
    from resolver.hitrate.figures import compute, default_sizes
    from resolver.hitrate.inputs import InputError, read_files
    from resolver.hitrate.progress import Progress
    from resolver.hitrate.report import PlotError, plot, text, write_json

    defaults = CacheConfig()
    cache = CacheConfig(
        max_ttl=defaults.max_ttl if max_ttl is None else max_ttl,
        min_ttl=defaults.min_ttl if min_ttl is None else min_ttl,
    )
    if cache.min_ttl > cache.max_ttl:
        raise click.BadParameter(
            f"{cache.min_ttl} is above the maximum TTL ({cache.max_ttl})", param_hint="--min-ttl"
        )
    if plot_path is not None and importlib.util.find_spec("matplotlib") is None:
        raise click.BadParameter(
            "needs the Python package matplotlib: pip install 'resolver[plot]'",
            param_hint="--plot",
        )
    for address in servers:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise click.BadParameter(
                f"{address!r} is not an IP address", param_hint="--server"
            ) from None
    reading = Progress("reading", sum(_size(path) for path in files))
    try:
        trace = read_files(list(files), file_format, reading.update, servers)
    except InputError as error:
        raise click.ClickException(str(error)) from None
    finally:
        reading.close()
    if not len(trace):
        why = "; ".join(trace.notes.messages)
        raise click.ClickException(
            "no client query with its response in the input" + (f" ({why})" if why else "")
        )
    sizes = sorted(set(cache_sizes)) or default_sizes(trace)
    capped = (cache.max_ttl, cache.min_ttl) != (defaults.max_ttl, defaults.min_ttl)
    passes = len(sizes) * (1 + int(capped) + int(prefetch) + int(serve_stale))
    replaying = Progress("replaying", passes * len(trace))
    try:
        figures = compute(
            trace,
            [str(path) for path in files],
            sizes,
            cache,
            prefetch=prefetch,
            serve_stale=serve_stale,
            progress=replaying.update,
            engine=engine,
        )
    finally:
        replaying.close()
    click.echo(text(figures), nl=False)
    try:
        if json_path is not None:
            write_json(figures, json_path)
            click.echo(f"JSON: {json_path}")
        if plot_path is not None:
            written = plot(figures, plot_path)
            click.echo("plots: " + ", ".join(str(path) for path in written))
    except PlotError as error:
        raise click.ClickException(str(error)) from None
    except OSError as error:
        raise click.ClickException(f"{error.filename}: {error.strerror}") from None


@cli.group()
def trust() -> None:
    """Negative trust anchors (RFC 7646) of the running daemon: names not validated."""


def _domain_argument(name: str) -> str:
    """NAME as the daemon will read it, or a usage error naming the argument."""
    try:
        return dns.name.from_text(name).to_text()
    except (dns.exception.DNSException, ValueError) as error:
        raise click.BadParameter(
            f"{name!r} is not a domain name: {error}", param_hint="NAME"
        ) from None


@trust.command("add-nta")
@config_option
@control_socket_option
@click.argument("name")
def add_nta(config_file: Path | None, control_socket: Path | None, name: str) -> None:
    """Stop validating NAME and everything below it, until remove-nta or a restart."""
    result = _control(config_file, "nta_add", name=_domain_argument(name))
    state = "added" if result["changed"] else "was already in force"
    click.echo(f"negative trust anchor {result['name']} {state}")


@trust.command("remove-nta")
@config_option
@control_socket_option
@click.argument("name")
def remove_nta(config_file: Path | None, control_socket: Path | None, name: str) -> None:
    """Validate NAME again."""
    result = _control(config_file, "nta_remove", name=_domain_argument(name))
    state = "removed" if result["changed"] else "was not in force"
    click.echo(f"negative trust anchor {result['name']} {state}")


@trust.command("list-nta")
@config_option
@control_socket_option
def list_nta(config_file: Path | None, control_socket: Path | None) -> None:
    """Print the negative trust anchors in force, one a line."""
    for name in _control(config_file, "nta_list")["names"]:
        click.echo(name)


def _size(path: Path) -> int:
    """A file's size for the progress bar; 0 if it cannot be had (reading it then says why)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def main() -> None:
    """Entry point: every expected failure ends in one line on stderr, never a traceback."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as error:
        click.echo(f"resolver: error: {error.format_message()}", err=True)
        sys.exit(error.exit_code)
    except (HintsError, StartupError, WorkerFailed, ConfigError) as error:
        click.echo(f"resolver: error: {error}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
