"""Forwarding over DNS over TLS to a real Unbound on loopback: certificates checked, pins
checked, failures named, never a fallback to clear text. Unbound serves a local zone, so no
query leaves the machine."""

from __future__ import annotations

import base64
import logging
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dns.edns
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest
import trio

from resolver.config import ForwardZone
from resolver.server.tls import spki_sha256
from resolver.testing import TestInternet
from resolver.testing.certs import Issued, TestCA
from tests.daemon_support import ensure_command
from tests.frontend_support import ask, query, start_resolver

UNBOUND = "127.55.0.1"
DOT_PORT = 853


def unbound_conf(workdir: Path, issued: Issued, extra: str = "") -> str:
    return f"""\
server:
    verbosity: 1
    num-threads: 1
    interface: {UNBOUND}@{DOT_PORT}
    tls-port: {DOT_PORT}
    tls-service-key: "{issued.key}"
    tls-service-pem: "{issued.certificate}"
    access-control: 127.0.0.0/8 allow
    do-ip6: no
{extra}    chroot: ""
    username: ""
    directory: "{workdir}"
    pidfile: "{workdir / "unbound.pid"}"
    use-syslog: no
    logfile: ""
    local-zone: "fwd.test." static
    local-data: "a.fwd.test. 300 IN A 192.0.2.53"
remote-control:
    control-enable: no
"""


@contextmanager
def unbound(workdir: Path, issued: Issued, extra: str = "") -> Iterator[subprocess.Popen[bytes]]:
    """Unbound answering only DNS over TLS on UNBOUND:853, stopped (by its PID) afterwards."""
    binary = ensure_command("unbound", "unbound")
    conf = workdir / "unbound.conf"
    conf.write_text(unbound_conf(workdir, issued, extra))
    process = subprocess.Popen([binary, "-d", "-c", str(conf)], stderr=subprocess.PIPE)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def wait_for_unbound() -> None:
    with trio.fail_after(20):
        while True:
            try:
                stream = await trio.open_tcp_stream(UNBOUND, DOT_PORT)
            except OSError:
                await trio.sleep(0.1)
                continue
            await stream.aclose()
            return


def zone(ca: TestCA, **tls: object) -> ForwardZone:
    settings: dict[str, object] = {"tls_name": "dot.test", "tls_ca_file": ca.certificate}
    settings.update(tls)
    return ForwardZone("fwd.test.", (UNBOUND,), tls=True, **settings)  # type: ignore[arg-type]  # each a ForwardZone field


async def forwarded_answer(
    nursery: trio.Nursery, internet: TestInternet, tmp_path: Path, forward: ForwardZone
) -> dns.message.Message:
    service = await start_resolver(nursery, internet, tmp_path, forward_zones=(forward,))
    reply = await ask(query("a.fwd.test.", use_edns=0), timeout=15)
    assert service.stats.upstream_tls_queries >= 1
    return reply


async def test_forwarding_over_tls_to_unbound(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path, ca: TestCA
) -> None:
    issued = ca.issue("unbound", ("dot.test",), (UNBOUND,))
    with unbound(tmp_path, issued):
        await wait_for_unbound()
        reply = await forwarded_answer(nursery, live_internet, tmp_path, zone(ca))
    assert reply.answer[0].to_text() == "a.fwd.test. 300 IN A 192.0.2.53"
    assert live_internet.total_queries() == 0  # nothing was iterated, nothing in clear text


async def test_a_matching_pin_alone_authenticates(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path, ca: TestCA
) -> None:
    issued = ca.issue("unbound", ("dot.test",), (UNBOUND,))
    der = ssl_der(issued)
    with unbound(tmp_path, issued):
        await wait_for_unbound()
        forward = ForwardZone("fwd.test.", (UNBOUND,), tls=True, tls_pin_sha256=(spki_sha256(der),))
        reply = await forwarded_answer(nursery, live_internet, tmp_path, forward)
    assert reply.answer[0].to_text() == "a.fwd.test. 300 IN A 192.0.2.53"


def ssl_der(issued: Issued) -> bytes:
    import ssl

    return ssl.PEM_cert_to_DER_cert(issued.certificate.read_text())


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("wrong name", "Hostname mismatch"),
        ("expired", "certificate has expired"),
        ("pin mismatch", "SPKI pin mismatch"),
    ],
)
async def test_a_failed_check_is_a_named_error_never_clear_text(
    nursery: trio.Nursery,
    live_internet: TestInternet,
    tmp_path: Path,
    ca: TestCA,
    caplog: pytest.LogCaptureFixture,
    case: str,
    reason: str,
) -> None:
    issued = ca.issue("unbound", ("dot.test",), (UNBOUND,), expired=case == "expired")
    forward = {
        "wrong name": zone(ca, tls_name="other.test"),
        "expired": zone(ca),
        "pin mismatch": zone(ca, tls_pin_sha256=(base64.b64encode(b"\x00" * 32).decode(),)),
    }[case]
    caplog.set_level(logging.WARNING, logger="resolver.server.dotpool")
    traced: list[str] = []
    with unbound(tmp_path, issued):
        await wait_for_unbound()
        service = await start_resolver(nursery, live_internet, tmp_path, forward_zones=(forward,))
        reply = await ask(query("a.fwd.test.", use_edns=0), timeout=15)
        # `resolver query --trace` prints what the tracer gets (a fresh name: not the failure
        # remembered for a.fwd.test.).
        traced_answer = await service.resolve(
            dns.name.from_text("b.fwd.test."), dns.rdatatype.A, traced.append
        )
    named_as = "other.test" if case == "wrong name" else "dot.test"
    server = f"DNS over TLS to {UNBOUND}:{DOT_PORT} ({named_as})"
    assert reply.rcode() == dns.rcode.SERVFAIL
    errors = [option for option in reply.options if isinstance(option, dns.edns.EDEOption)]
    # RFC 8914 section 4.24: Network Error, with the server and the reason in EXTRA-TEXT.
    assert len(errors) == 1 and errors[0].code == dns.edns.EDECode.NETWORK_ERROR
    assert errors[0].text is not None
    assert errors[0].text.startswith(f"no forwarder reachable over TLS: {server}: "), errors
    assert reason in errors[0].text, errors[0].text
    logged = caplog.text
    assert f"DNS over TLS to {UNBOUND}:{DOT_PORT}" in logged, logged
    assert reason in logged, logged
    assert traced_answer.rcode == dns.rcode.SERVFAIL
    named = [line for line in traced if server in line and reason in line]
    assert named, "\n".join(traced)
    assert any(line.strip().startswith("SERVFAIL: no forwarder reachable") for line in traced)
    assert service.stats.upstream_tls_failures >= 2
    assert live_internet.total_queries() == 0
