"""TLS contexts: the server side of DoT and DoH (reloadable), the client side for forwarders.

Only what the `ssl` module needs to be told lives here; framing and HTTP are elsewhere. The
server context refuses anything older than TLS 1.2 (RFC 8310 section 9, RFC 7525) and offers
ALPN "dot" for DNS over TLS, "h2" and "http/1.1" for DNS over HTTPS (RFC 8484 section 5.2).
The client context verifies the forwarder's certificate against `TlsPeer.name` and the system's
CAs (or a CA file), and a pin against the SHA-256 of its SubjectPublicKeyInfo (RFC 7858 section
4.2, RFC 7469 section 2.4).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import importlib
import logging
import os
import ssl
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from resolver.config import ForwardZone
from resolver.core.actions import TlsPeer
from resolver.server.errors import StartupError

log = logging.getLogger(__name__)

DOT_ALPN = ("dot",)
DOH_ALPN = ("h2", "http/1.1")


def readable(key: str, path: Path) -> None:
    """StartupError naming the configuration key and the path unless `path` can be read:
    `ssl` says only "No such file or directory", without saying which of two files."""
    try:
        with path.open("rb"):
            pass
    except OSError as error:
        raise StartupError(f"{key}: cannot read {path}: {error.strerror or error}") from None


def server_context(
    certificate: Path, key: Path, alpn: tuple[str, ...], chain: bytes, secret: bytes
) -> ssl.SSLContext:
    """A server context from the PEM bytes read from `certificate` and `key` (named in the
    StartupError when they are unusable)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        with _in_memory(chain) as chain_path, _in_memory(secret) as key_path:
            context.load_cert_chain(chain_path, key_path)
    except (OSError, ssl.SSLError) as error:
        raise StartupError(
            f"tls: cannot use tls_certificate {certificate} with tls_key {key}: {error}"
        ) from None
    context.set_alpn_protocols(list(alpn))
    return context


@contextlib.contextmanager
def _in_memory(data: bytes) -> Iterator[str]:
    """A path `ssl.load_cert_chain` can open for bytes already read (it takes no bytes): an
    anonymous memory file on Linux, so the key is never written anywhere; elsewhere a private
    temporary file, removed at once."""
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None and os.path.isdir("/proc/self/fd"):
        fd = memfd_create("tls", 0)
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "pem"
        path.touch(0o600)
        path.write_bytes(data)
        yield str(path)


def _read(key: str, path: Path) -> bytes:
    readable(key, path)
    try:
        return path.read_bytes()
    except OSError as error:  # removed between the two
        raise StartupError(f"{key}: cannot read {path}: {error.strerror or error}") from None


def validity_problem(certificate: Path, chain: bytes, now: datetime.datetime) -> str | None:
    """Why the first (the server's) certificate of `chain` is not valid at `now`, naming the
    file and its validity dates; None when it is (or cannot be parsed: `ssl` said so then)."""
    from cryptography import x509  # lazily: cryptography costs MiBs; only for TLS certificates

    try:
        leaf = x509.load_pem_x509_certificate(chain)
    except ValueError:
        return None
    start, end = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    if start <= now <= end:
        return None
    state = "has expired" if now > end else "is not valid yet"
    return (
        f"tls_certificate {certificate} {state}: valid from {start:%Y-%m-%d %H:%M:%S} to "
        f"{end:%Y-%m-%d %H:%M:%S} UTC"
    )


class ReloadableContext:
    """The server context a listener uses for each new connection; `ServerCertificate.reload`
    (on SIGHUP) replaces it, so new connections get the new certificate and open ones keep
    theirs."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context


class ServerCertificate:
    """The certificate and key of the DoT and DoH listeners. Both contexts are built from ONE
    read of the two files, so both listeners always hold the same certificate and a bad file
    is reported once, not once per listener."""

    def __init__(self, certificate: Path, key: Path) -> None:
        self.certificate, self.key = certificate, key
        dot, doh, problem = self._load()
        if problem is not None:  # nothing else to serve at start: serve it, and say so
            log.warning("%s; clients will refuse it", problem)
        self.dot, self.doh = ReloadableContext(dot), ReloadableContext(doh)

    def _load(self) -> tuple[ssl.SSLContext, ssl.SSLContext, str | None]:
        chain = _read("tls_certificate", self.certificate)
        secret = _read("tls_key", self.key)
        dot = server_context(self.certificate, self.key, DOT_ALPN, chain, secret)
        doh = server_context(self.certificate, self.key, DOH_ALPN, chain, secret)
        now = datetime.datetime.now(datetime.UTC)
        return dot, doh, validity_problem(self.certificate, chain, now)

    def reload(self) -> bool:
        """Read the files again; when they are unusable, or the certificate is expired or not
        yet valid, keep serving the old one (clients would refuse the new) and say why."""
        try:
            dot, doh, problem = self._load()
        except StartupError as error:
            log.error("%s; keeping the certificate already loaded", error)
            return False
        if problem is not None:
            log.warning("%s; keeping the certificate already loaded", problem)
            return False
        self.dot.context, self.doh.context = dot, doh
        log.info("reloaded the TLS certificate %s", self.certificate)
        return True


def load_pin_tools() -> None:
    """Import now what `spki_sha256` imports at its first use: the daemon calls it before
    `--user` drops privileges when a forward zone has pins (see `verify.load_crypto`)."""
    for module in ("cryptography.hazmat.backends.openssl", "cryptography.x509"):
        importlib.import_module(module)


def spki_sha256(der_certificate: bytes) -> str:
    """The pin of a certificate: base64 of the SHA-256 of its SubjectPublicKeyInfo."""
    from cryptography import x509  # lazily: cryptography costs MiBs, needed only for pinned peers
    from cryptography.hazmat.primitives import serialization

    public_key = x509.load_der_x509_certificate(der_certificate).public_key()
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


_client_contexts: dict[TlsPeer, ssl.SSLContext] = {}


def check_forward_zones(zones: Sequence[ForwardZone]) -> None:
    """At start, not at the first query: every `tls_ca_file` must be a readable file of PEM
    CA certificates, or a StartupError names the key (`forward_zones[N].tls_ca_file`) and the
    path. Otherwise the daemon would start and then SERVFAIL every query of the zone."""
    for index, zone in enumerate(zones):
        if not zone.tls or zone.tls_ca_file is None:
            continue
        key = f"forward_zones[{index}].tls_ca_file"
        readable(key, zone.tls_ca_file)
        try:
            ssl.create_default_context(cafile=str(zone.tls_ca_file))
        except (OSError, ssl.SSLError) as error:
            reason = getattr(error, "reason", None) or error.strerror or str(error)
            raise StartupError(
                f"{key}: {zone.tls_ca_file} holds no usable CA certificate (PEM): {reason}"
            ) from None


def client_context(peer: TlsPeer) -> ssl.SSLContext:
    """The context for connections to a forwarder, built once per `TlsPeer`.

    With a name the chain and the name are checked by OpenSSL; a pin alone (no name) checks
    only the key, after the handshake (`check_pin`), as RFC 7858 section 4.2 allows.
    """
    context = _client_contexts.get(peer)
    if context is None:
        context = ssl.create_default_context(cafile=peer.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if peer.name is None:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(list(DOT_ALPN))
        _client_contexts[peer] = context
    return context


def check_pin(peer: TlsPeer, der_certificate: bytes | None) -> str | None:
    """Why the server's key does not match the configured pins, or None if it does (or no pin
    is configured)."""
    if not peer.pins:
        return None
    if der_certificate is None:
        return "no certificate to check the pin against"
    pin = spki_sha256(der_certificate)
    if pin in peer.pins:
        return None
    return f"SPKI pin mismatch (the server's key is sha256/{pin})"
