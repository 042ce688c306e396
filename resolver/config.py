"""Every setting and limit of the resolver, with its default, in one place.

The logic reads numbers from here rather than embedding them, so that an operator can find (and a
test can shrink) any bound without reading the algorithm.

Every field is also a key of the TOML configuration file: `resolver/configfile.py` walks these
dataclasses (a nested one is a table), so a new field of a type the settings already use needs no
loader code, only a row in docs/configuration.md (a test fails until it has one); a field of a
new type fails a test until the loader reads it. What no single field's type can say lives here
too: the rules about two keys at once (`config_problem`), and the parsers of addresses and
networks that the command line and the file share.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, NewType

import dns.exception
import dns.name

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

LOOPBACK_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)


def bundled_root_hints() -> Path:
    """The IANA root hints shipped inside the package, so a wheel install works without the repo."""
    return Path(str(resources.files("resolver") / "root.hints"))


#: The longest TTL DNS can express (RFC 2181 section 8); a longer cache bound means nothing.
MAX_TTL = 2**31 - 1

#: The log levels `--log-level` and the `log_level` key accept.
LogLevel = Literal["debug", "info", "warning", "error"]

#: What a query with RD=0 gets (RFC 1034 4.3.1): an answer from the cache only, or REFUSED.
NonRecursiveQueries = Literal["cache", "refuse"]


class ConfigError(Exception):
    """A configuration problem, worded as the one line the operator will read.

    The CLI prints it after `resolver: error:`; the text already starts with the file name and
    the dotted key, so nothing else needs to know where it came from.
    """


def setting(
    default: Any = MISSING,
    *,
    default_factory: Callable[[], Any] | Any = MISSING,
    unbound: str | None = None,
    unit: str | None = None,
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
    min_items: int | None = None,
    parse: Callable[[str], Any] | None = None,
    expects: str | None = None,
) -> Any:
    """A field default plus what the config file loader and docs/configuration.md need.

    Numbers default to `>= 0` in the config file (no negative sizes or timeouts), so only other
    bounds need saying: `ge`/`le`/`gt` bound numbers, `min_items` arrays, `unit` words the error
    messages, and `unbound` names the Unbound option the setting corresponds to (the docs test
    checks the docs name it). `parse` reads a string no type says how to read (ValueError if it
    is bad) and `expects` describes it. A plain `x: int = 5` field is fine too.
    """
    given: dict[str, object] = {"unbound": unbound, "unit": unit, "ge": ge, "le": le, "gt": gt}
    given |= {"min_items": min_items, "parse": parse, "expects": expects}
    metadata = {name: value for name, value in given.items() if value is not None}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Limits:
    """Caps on the work one client question may cause (no hangs, no amplification)."""

    max_cname_chain: int = setting(12, unbound="max-query-restarts")
    max_referrals: int = setting(30, ge=1)
    max_upstream_queries: int = setting(48, ge=1)
    max_glueless_depth: int = 3
    max_glueless_per_delegation: int = 4
    max_in_flight: int = setting(1000, ge=1, unbound="num-queries-per-thread")
    max_resolution_time: float = setting(8.0, gt=0, unit="seconds")
    max_tcp_clients: int = setting(256, ge=1, unbound="incoming-num-tcp")
    tcp_idle_timeout: float = setting(10.0, gt=0, unit="seconds", unbound="tcp-idle-timeout")


@dataclass(frozen=True)
class CacheConfig:
    """Sizes and TTL bounds of the cache (names follow Unbound's cache-max-ttl and friends)."""

    max_entries: int = setting(100_000, ge=1, unit="entries", unbound="rrset-cache-size")
    # Rendered responses kept for the cache-hit fast path (one per question).
    max_packets: int = setting(100_000, ge=1, unit="entries", unbound="msg-cache-size")
    max_ttl: int = setting(86_400, unit="seconds", le=MAX_TTL, unbound="cache-max-ttl")
    min_ttl: int = setting(0, unit="seconds", le=MAX_TTL, unbound="cache-min-ttl")
    max_negative_ttl: int = setting(
        3_600, unit="seconds", le=MAX_TTL, unbound="cache-max-negative-ttl"
    )
    max_delegation_ttl: int = setting(172_800, unit="seconds", le=MAX_TTL)
    # RFC 8767 serve-stale: when every authority fails, answer from data expired no longer
    # ago than this (RFC 8767 suggests 1 to 3 days), with a short TTL so clients ask again soon.
    serve_stale: bool = setting(True, unbound="serve-expired")
    max_stale: int = setting(86_400, unit="seconds", le=MAX_TTL, unbound="serve-expired-ttl")
    stale_answer_ttl: int = setting(
        30, unit="seconds", le=MAX_TTL, unbound="serve-expired-reply-ttl"
    )
    # RFC 8767 section 5 client-response timer: a client still waiting after this long gets
    # the stale answer, if one is held, while the resolution goes on to refresh the cache.
    stale_client_timeout: float = setting(
        1.8, gt=0, unit="seconds", unbound="serve-expired-client-timeout"
    )
    # RFC 9520 section 3.2: a failed resolution is remembered this long, so a dead zone costs
    # one timeout, not one per client (at least 1 s, at most 5 minutes, says the RFC).
    failure_ttl: int = setting(5, ge=1, le=300, unit="seconds")
    # Refresh an answer in the background when a client asks for it in the last 10% of its
    # TTL, so that popular names never expire (off by default, as in Unbound).
    prefetch: bool = setting(False, unbound="prefetch")
    # Keep the cache across restarts: written (atomically) on a clean stop, loaded at start
    # with TTLs reduced by the time spent on disk; off when unset. With `--workers N`, worker
    # I uses PATH.worker-I (server/persist.py).
    persist_file: Path | None = setting(None)


@dataclass(frozen=True)
class UpstreamConfig:
    """How the iterator talks to authoritative servers."""

    timeout: float = setting(1.0, gt=0, unit="seconds")
    port: int = setting(53, ge=1, le=65535)
    edns_payload: int = setting(1232, ge=512, le=65535, unit="bytes", unbound="edns-buffer-size")
    query_loopback: bool = setting(False, unbound="do-not-query-localhost")
    do_ip4: bool = setting(True, unbound="do-ip4")
    do_ip6: bool = setting(True, unbound="do-ip6")
    server_table_size: int = setting(10_000, ge=1, unbound="infra-cache-numhosts")
    # What the server table knows about a server (RTT, penalties, hold-downs, "no EDNS") is
    # forgotten this long after its last update, so a repaired server is not shunned forever.
    infra_ttl: int = setting(900, unit="seconds", unbound="infra-host-ttl")
    # A timed-out server's penalty halves this often, so it is tried again later (RFC 9520 3).
    penalty_half_life: float = setting(60.0, gt=0, unit="seconds")
    # After this many consecutive failures a server is skipped (held down) for hold_down_time,
    # doubling with each further failure up to max_hold_down_time; then one probe is let
    # through. A dead zone then costs clients no timeouts (RFC 9520 section 3.1). Five, not
    # fewer: a short outage seen by a few concurrent questions must not shut a healthy server
    # off (a lost datagram shared by merged identical queries counts once).
    hold_down_after: int = setting(5, ge=1)
    hold_down_time: float = setting(5.0, gt=0, unit="seconds")
    max_hold_down_time: float = setting(120.0, gt=0, unit="seconds")
    # 0x20: randomise the letter case of query names and insist on it in responses. Off by
    # default, as in Unbound: a few authoritative servers do not echo the case they were sent.
    use_0x20: bool = setting(False, unbound="use-caps-for-id")
    # RFC 9156 QNAME minimisation, relaxed (Unbound's qname-minimisation with
    # qname-minimisation-strict: no): a server above the zone of a name is asked for one more
    # label than it has to know, with type A, and the full name goes only to the name's zone.
    qname_minimisation: bool = setting(True, unbound="qname-minimisation")
    # RFC 9156 section 2.3: at most this many minimised steps per name (MAX_MINIMISE_COUNT)...
    max_minimise_count: int = setting(10, ge=1)
    # ...the first this many adding one label each (MINIMISE_ONE_LAB), the rest spread evenly.
    minimise_one_label: int = setting(4)
    # A server that stays silent may just have lost a datagram: after every server of a zone
    # has been asked, the silent ones are asked again this many more rounds, each round with
    # twice the timeout (Unbound's outbound-msg-retry counts attempts per server likewise).
    retries: int = setting(2, le=10, unbound="outbound-msg-retry")
    # Accept glue (addresses in a referral's additional section) only for names inside the
    # delegating zone; off also takes out-of-zone glue, which a poisoner can forge.
    harden_glue: bool = setting(True, unbound="harden-glue")
    # How long to wait for a forwarder (`forward_zones`): it recurses for us, so a cold answer
    # can take it several round trips to authorities, more than one authority's `timeout`.
    forward_timeout: float = setting(3.0, gt=0, unit="seconds")


def redact_url(text: str) -> str:
    """`text` with the user information of a URL (`user:password@`) replaced by `***@`: for
    any URL put in a message, so that a password given in it never reaches a log."""
    if "://" not in text:  # no scheme: only a "user:password@" is taken for user information
        user, at, host = text.rpartition("@")
        return f"***@{host}" if at and ":" in user else text
    return re.sub(r"://[^/?#]*@", "://***@", text)


def parse_redis_url(text: str) -> str:
    """A Redis/Valkey URL: `redis://`, `rediss://` (TLS) or `unix://`."""
    scheme, separator, rest = text.partition("://")
    if not separator or scheme not in ("redis", "rediss", "unix") or not rest:
        raise ValueError(f"{redact_url(text)!r} is not a redis://, rediss:// or unix:// URL")
    return text


def parse_domain_name(text: str) -> str:
    """`text` if it is a domain name (ValueError says why not), for keys that list names."""
    try:
        dns.name.from_text(text)
    except (dns.exception.DNSException, ValueError) as error:
        raise ValueError(f"{text!r} is not a domain name: {error}") from None
    return text


@dataclass(frozen=True)
class SharedCacheConfig:
    """A second-level cache in Redis or Valkey shared by a fleet (Unbound's cachedb), off
    unless `url` is set; see docs/operations.md, "Running a fleet with a shared cache"."""

    url: str | None = setting(
        None, parse=parse_redis_url, expects='"redis://HOST:PORT", "rediss://..." or "unix://PATH"'
    )
    password: str | None = None
    database: int = setting(0, le=15)
    # Prepended to every key, so that several fleets (or other data) can share one Redis.
    key_prefix: str = "resolver:"
    # Keys are HMAC-SHA256(secret, question), and each value carries an HMAC-SHA256 of its key
    # and itself under a key derived from the secret: whoever can read or write Redis without
    # the secret can neither forge a value nor move one to another key (a member drops it).
    # Values are not encrypted: a reader of Redis reads the names and answers held there.
    secret: str | None = None
    cluster: bool = False
    # A lookup waits at most this long before the resolver iterates as if it had missed:
    # a shared-cache hit must cost less than asking an authority.
    lookup_timeout_ms: int = setting(50, ge=1, unit="milliseconds")
    store_timeout_ms: int = setting(200, ge=1, unit="milliseconds")
    connect_timeout_ms: int = setting(500, ge=1, unit="milliseconds")
    # After this many consecutive errors (timeouts included) the resolver stops asking for
    # `breaker_seconds`, then lets one call through to test whether Redis is back.
    breaker_errors: int = setting(5, ge=1)
    breaker_seconds: float = setting(30.0, gt=0, unit="seconds")
    # Writes waiting to be sent; more are dropped (counted as skipped), never queued forever.
    max_pending_stores: int = setting(1000, ge=1)


#: An endpoint whose port defaults to 853 (DNS over TLS, RFC 7858) or 443 (DNS over HTTPS).
TlsEndpoint = NewType("TlsEndpoint", tuple[str, int])
HttpsEndpoint = NewType("HttpsEndpoint", tuple[str, int])


@dataclass(frozen=True)
class DnssecConfig:
    """DNSSEC validation (RFC 4033-4035, RFC 5155, RFC 6840) and its caps against CPU exhaustion
    (KeyTrap, CVE-2023-50387; NSEC3 hashing, CVE-2023-50868). The names follow Unbound's.

    With `validate` (the default), upstream queries carry DO=1 (and CD=1 to forwarders, RFC
    6840 section 5.9) and every answer below a trust anchor is validated (`core/validation.py`):
    secure answers earn the AD bit, bogus ones are SERVFAIL with their Extended DNS Error.
    """

    validate: bool = setting(True, unbound="module-config")
    # DS or DNSKEY records in zone-file syntax; None: the IANA root anchors bundled.
    trust_anchor_file: Path | None = setting(None, unbound="trust-anchor-file")
    # Where RFC 5011 automated updates keep the state of the anchors across restarts.
    trust_anchor_state: Path | None = setting(None, unbound="auto-trust-anchor-file")
    # RFC 7646: names below which nothing is validated (answered as insecure).
    negative_trust_anchors: tuple[str, ...] = setting((), unbound="domain-insecure")
    # How long a bogus result is kept, so a broken zone costs one validation per minute.
    bogus_ttl: int = setting(60, ge=1, le=86_400, unit="seconds", unbound="val-bogus-ttl")
    # Clock skew allowed around inception and expiration: 10% of the signature's lifetime,
    # at least the minimum and at most the maximum (Unbound's defaults).
    val_sig_skew_min: int = setting(3_600, unit="seconds", le=MAX_TTL, unbound="val-sig-skew-min")
    val_sig_skew_max: int = setting(86_400, unit="seconds", le=MAX_TTL, unbound="val-sig-skew-max")
    # KeyTrap caps: signature checks per RRset and per resolution, DNSKEYs tried per key tag.
    max_rrset_validations: int = setting(8, ge=1)
    max_resolution_validations: int = setting(64, ge=1)
    max_key_tag_collisions: int = setting(4, ge=1)
    # NSEC3 hashes computed per response (CVE-2023-50868): Unbound's 8 per pass x 16 passes.
    max_nsec3_hashes: int = setting(128, ge=1)
    # RFC 9276: more NSEC3 iterations than this make the answer insecure (EDE 27), not bogus.
    nsec3_max_iterations: int = setting(150, le=65_535, unbound="val-nsec3-keysize-iterations")
    # Zones whose validated keys (or insecure / bad-key status) are remembered at once.
    key_cache_size: int = setting(10_000, ge=1)
    # KeyTrap caps on what is looked at, matched or not: RRSIGs per RRset and per resolution,
    # and the DS and DNSKEY records of one zone (beyond them the zone is bogus).
    max_rrset_signatures: int = setting(16, ge=1)
    max_resolution_signatures: int = setting(256, ge=1)
    max_ds_records: int = setting(64, ge=1)
    max_dnskey_records: int = setting(64, ge=1)
    # RFC 8198: answer NXDOMAIN/NODATA from validated NSEC ranges (and, RFC 8020, below a
    # validated NXDOMAIN) without asking upstream; how many NSEC ranges are kept for it.
    aggressive_nsec: bool = setting(True, unbound="aggressive-nsec")
    aggressive_nsec_size: int = setting(10_000, ge=1)

    def __post_init__(self) -> None:
        for index, name in enumerate(self.negative_trust_anchors):
            try:
                parse_domain_name(name)
            except ValueError as error:
                raise ValueError(f"negative_trust_anchors[{index}]: {error}") from None
        if self.val_sig_skew_min > self.val_sig_skew_max:
            raise ValueError(
                f"val_sig_skew_min: must not exceed val_sig_skew_max ({self.val_sig_skew_max}),"
                f" got {self.val_sig_skew_min}"
            )


def parse_metrics_endpoint(text: str) -> tuple[str, int]:
    """`ADDR:PORT` of the metrics endpoint: unlike a DNS address, it has no default port."""
    address, port = parse_server_address(text)
    if port is None:
        raise ValueError(f"{text!r} has no port (write ADDR:PORT, e.g. 127.0.0.1:9153)")
    return address, port


@dataclass(frozen=True)
class Config:
    """The whole configuration of one resolver instance."""

    listen: tuple[tuple[str, int], ...] = setting(
        (("127.0.0.1", 53), ("::1", 53)), min_items=1, unbound="interface, port"
    )
    root_hints: Path = setting(default_factory=bundled_root_hints, unbound="root-hints")
    allow: tuple[IPNetwork, ...] = setting(LOOPBACK_NETWORKS, unbound="access-control")
    # What we advertise to clients and the largest UDP response we send them.
    edns_payload: int = setting(1232, ge=512, le=65535, unit="bytes", unbound="max-udp-size")
    log_level: LogLevel = setting("info", unbound="verbosity")
    # Queries with RD=0 never make us recurse (RFC 1034 4.3.1): "cache" answers them from the
    # cache and local data alone (a referral to the closest known servers on a miss, as BIND
    # does; Unbound's access-control action allow_snoop), "refuse" answers REFUSED (Unbound's
    # action allow), which also stops clients from snooping on what others have looked up.
    non_recursive_queries: NonRecursiveQueries = setting("cache", unbound="access-control")
    # Processes answering on the same addresses (SO_REUSEPORT), each with its own cache.
    workers: int = setting(1, ge=1, le=256, unbound="num-threads")
    # Become this user once every socket is bound (port 53 needs root only to bind).
    user: str | None = setting(None, unbound="username")
    # Append one line per client query (time, client, name, type, rcode, source, milliseconds).
    query_log: Path | None = setting(None, unbound="log-queries, log-replies")
    # The Unix socket that `resolver stats` and `resolver cache` talk to (created mode 0600);
    # off when unset, since there is no directory every installation may create it in.
    control_socket: Path | None = setting(None, unbound="control-enable, control-interface")
    # Serve Prometheus metrics at http://ADDR:PORT/metrics; off when unset.
    metrics: tuple[str, int] | None = setting(
        None, parse=parse_metrics_endpoint, expects='"ADDR:PORT" or "[IPv6]:PORT"'
    )
    limits: Limits = field(default_factory=Limits)
    cache: CacheConfig = field(default_factory=CacheConfig)
    upstream: UpstreamConfig = field(default_factory=UpstreamConfig)
    dnssec: DnssecConfig = field(default_factory=DnssecConfig)
    # Zones sent with RD=1 to upstream resolvers instead of being iterated ("." for everything);
    # the most specific of these and `stub_zones` wins for a name.
    forward_zones: tuple[ForwardZone, ...] = setting((), unbound="forward-zone")
    # Zones whose authoritative servers are named here: iteration starts at them (RD=0)
    # instead of at the root, and follows referrals below them as usual.
    stub_zones: tuple[StubZone, ...] = setting((), unbound="stub-zone")
    # Records the resolver answers itself, overriding the internet, one presentation-format
    # line each ("router.lan. 3600 IN A 192.168.1.1"; TTL 3600 and class IN if left out).
    # Only the exact names are local: other types there get NODATA, names below them resolve
    # as usual (Unbound's local-data in a "transparent" local-zone).
    local_data: tuple[str, ...] = setting((), unbound="local-data")
    shared_cache: SharedCacheConfig = field(default_factory=SharedCacheConfig)
    # --- encrypted DNS for clients (RFC 7858 DoT, RFC 8484 DoH); off while the lists are empty.
    # Both need `tls_certificate` and `tls_key` (PEM files, reloaded on SIGHUP).
    tls_listen: tuple[TlsEndpoint, ...] = setting((), unbound="interface, tls-port")
    doh_listen: tuple[HttpsEndpoint, ...] = setting((), unbound="interface, https-port")
    tls_certificate: Path | None = setting(None, unbound="tls-service-pem")
    tls_key: Path | None = setting(None, unbound="tls-service-key")
    doh_path: str = setting("/dns-query", unbound="http-endpoint")


def parse_server_address(text: str) -> tuple[str, int | None]:
    """A forwarder or stub server: `ADDR`, `ADDR:PORT`, bare IPv6 or `[IPv6]:PORT`.

    The port is None when not given, so the caller can apply `upstream.port`. ValueError says
    what is wrong in words an operator can act on.
    """
    host, port = text, None
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r} is not ADDR, ADDR:PORT or [IPv6]:PORT")
        port = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{host!r} is not an IP address") from None
    if text.startswith("[") and address.version != 6:
        raise ValueError(f"{text!r}: brackets are only for IPv6 addresses")
    if port is None:
        return str(address), None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{port!r} is not a port number (1-65535)")
    return str(address), int(port)


def parse_endpoint(text: str, default_port: int = 53) -> tuple[str, int]:
    """`ADDR`, `ADDR:PORT` or `[IPv6]:PORT` as (address, port); ValueError says what is wrong.

    Shared by `--listen` and every endpoint key of the file, so both accept exactly the same
    spellings and reject the same typos.
    """
    address, port = parse_server_address(text)
    return address, default_port if port is None else port


def parse_network(text: str) -> IPNetwork:
    """An address or CIDR network; host bits are allowed (`10.1.2.3/8` means 10.0.0.0/8).

    Non-strict because operators write a host's own address with its prefix length; refusing that
    would be pedantry, and the meaning is not in doubt.
    """
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"{text!r} is not an address or network like 10.0.0.0/8") from None


def config_problem(config: Config) -> str | None:
    """The first rule about two keys at once that `config` breaks, or None.

    Checked on a whole `Config` (after the file, and again after the flags), not in
    `__post_init__`: the loader builds one a table or a flag at a time, and a half-built one may
    break a rule that the whole does not.
    """
    if (low := config.cache.min_ttl) > (high := config.cache.max_ttl):
        return f"cache.min_ttl: must not exceed cache.max_ttl ({high}), got {low}"
    shared = config.shared_cache
    if shared.url is not None and (shared.secret is None or len(shared.secret) < 16):
        return "shared_cache.secret: needs 16 or more characters when shared_cache.url is set"
    encrypted = "tls_listen" if config.tls_listen else "doh_listen" if config.doh_listen else None
    if encrypted is not None:
        for needed in ("tls_certificate", "tls_key"):
            if getattr(config, needed) is None:
                return f"{encrypted}: needs {needed} (a PEM file) as well"
    if not config.doh_path.startswith("/"):
        return f"doh_path: must start with '/', got {config.doh_path!r}"
    return None


@dataclass(frozen=True)
class ZoneServers:
    """A zone and the servers to ask for it: the shape shared by forward and stub zones.

    Checked when built, so a typo fails at start (naming the zone or server) rather than as
    SERVFAILs later. Servers are IP addresses, optionally with a port (see
    `parse_server_address`); names of hosts are not accepted, since resolving them would need
    the very resolution being configured.
    """

    name: str
    servers: tuple[str, ...] = setting(min_items=1)

    def __post_init__(self) -> None:
        try:
            dns.name.from_text(self.name)
        except (dns.exception.DNSException, ValueError) as error:
            raise ValueError(f"name: {self.name!r} is not a domain name: {error}") from None
        if not self.servers:
            raise ValueError(f"servers: zone {self.name!r} needs at least one server")
        for index, server in enumerate(self.servers):
            try:
                parse_server_address(server)
            except ValueError as error:
                raise ValueError(f"servers[{index}]: {error}") from None


@dataclass(frozen=True)
class ForwardZone(ZoneServers):
    """Names at or below `name` go with RD=1 to these recursive resolvers (Unbound's
    forward-zone); their answers are cached like any other. Listed order is the preference until
    round-trip times are measured; a silent, SERVFAIL or REFUSED forwarder passes the question
    to the next. Loopback forwarders (a local cache, a DNS-over-TLS proxy) are allowed without
    `upstream.query_loopback`: the operator configured them (`usable_address`).

    `tls` sends every query of the zone over DNS over TLS (RFC 7858, port 853 unless a server
    says otherwise), authenticated by `tls_name` against the system's CA store (or `tls_ca_file`)
    and/or by SPKI pins (`tls_pin_sha256`, RFC 7858 section 4.2): never in clear text.
    """

    tls: bool = setting(False, unbound="forward-tls-upstream")
    tls_name: str | None = setting(None, unbound="forward-addr")
    tls_ca_file: Path | None = setting(None, unbound="tls-cert-bundle")
    tls_pin_sha256: tuple[str, ...] = setting(())

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.tls:
            for key in ("tls_name", "tls_ca_file", "tls_pin_sha256"):
                if getattr(self, key):
                    raise ValueError(f"{key}: zone {self.name!r} sets it without tls = true")
            return
        if self.tls_name is None and not self.tls_pin_sha256:
            raise ValueError(
                f"tls: zone {self.name!r} needs tls_name (or tls_pin_sha256) to authenticate "
                "its servers; DNS over TLS without authentication is not offered"
            )
        if self.tls_name is not None and not _tls_name_valid(self.tls_name):
            raise ValueError(
                f"tls_name: {self.tls_name!r} is not a host name or IP address to check the "
                "certificate against"
            )
        for index, pin in enumerate(self.tls_pin_sha256):
            try:
                valid = len(base64.b64decode(pin, validate=True)) == 32
            except ValueError:
                valid = False
            if not valid:
                raise ValueError(
                    f"tls_pin_sha256[{index}]: {pin!r} is not base64 of a SHA-256 digest"
                )


_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def _tls_name_valid(name: str) -> bool:
    """A `tls_name` must be what a certificate can name: a host name (LDH labels, a wildcard
    cannot be asked for) or an IP address; caught at load, not as a TLS error per query."""
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    labels = name.removesuffix(".").split(".")
    return len(name) <= 253 and all(_LABEL.fullmatch(label) for label in labels)


@dataclass(frozen=True)
class StubZone(ZoneServers):
    """Names at or below `name` are resolved by iteration starting at these authoritative
    servers (RD=0) instead of at the root (Unbound's stub-zone); referrals below are followed.
    """
