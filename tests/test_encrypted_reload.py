"""SIGHUP with a certificate clients would refuse (found by a hostile review): the DoT and DoH
listeners keep the one already loaded, and the operator reads why, once."""

from __future__ import annotations

import datetime
import logging
import os
import signal

import pytest
import trio
from cryptography import x509

from resolver.server.service import ResolverService
from resolver.server.tls import validity_problem
from resolver.testing.certs import Issued, TestCA
from tests.test_encrypted_listeners import DOH, DOT, NAME, client_context, encrypted

__all__ = ["encrypted"]  # the fixture


@pytest.fixture
def issued(ca: TestCA) -> Issued:
    return ca.issue("server", (NAME,), (DOT[0],))


async def served_certificate(ca: TestCA, where: tuple[str, int]) -> x509.Certificate:
    """The certificate a new connection gets, verified against the test CA and NAME."""
    tcp = await trio.open_tcp_stream(*where)
    stream = trio.SSLStream(tcp, client_context(ca), server_hostname=NAME)
    async with stream:
        await stream.do_handshake()
        der = stream.getpeercert(True)
    assert isinstance(der, bytes)
    return x509.load_der_x509_certificate(der)


async def test_sighup_with_an_expired_certificate_keeps_the_old_one(
    encrypted: ResolverService, ca: TestCA, issued: Issued, caplog: pytest.LogCaptureFixture
) -> None:
    before = await served_certificate(ca, DOT)
    expired = ca.issue("expired", (NAME,), (DOT[0],), expired=True)
    issued.certificate.write_bytes(expired.certificate.read_bytes())
    issued.key.write_bytes(expired.key.read_bytes())
    caplog.set_level(logging.INFO, logger="resolver.server.tls")
    os.kill(os.getpid(), signal.SIGHUP)
    with trio.fail_after(5):
        while not any("keeping" in r.getMessage() for r in caplog.records):
            await trio.sleep(0.02)
    await trio.sleep(0.2)  # a second message, if there were one, would be in by now
    messages = [r for r in caplog.records if r.name == "resolver.server.tls"]
    assert len(messages) == 1, [r.getMessage() for r in messages]
    (warning,) = messages
    end = x509.load_pem_x509_certificate(expired.certificate.read_bytes()).not_valid_after_utc
    assert warning.levelno == logging.WARNING
    assert str(issued.certificate) in warning.getMessage()
    assert "has expired" in warning.getMessage()
    assert f"to {end:%Y-%m-%d %H:%M:%S} UTC" in warning.getMessage()
    # New connections on both listeners still get (and verify) the certificate of before.
    for where in (DOT, DOH):
        assert (await served_certificate(ca, where)).serial_number == before.serial_number


async def test_sighup_with_a_garbage_certificate_is_reported_once(
    encrypted: ResolverService, ca: TestCA, issued: Issued, caplog: pytest.LogCaptureFixture
) -> None:
    """DoT and DoH listeners both: the error once, not once per listener."""
    before = await served_certificate(ca, DOH)
    issued.certificate.write_bytes(b"garbage\n")
    os.kill(os.getpid(), signal.SIGHUP)
    with trio.fail_after(5):
        while not any("keeping" in r.getMessage() for r in caplog.records):
            await trio.sleep(0.02)
    await trio.sleep(0.2)
    errors = [r.getMessage() for r in caplog.records if r.name == "resolver.server.tls"]
    assert len(errors) == 1 and str(issued.certificate) in errors[0], errors
    for where in (DOT, DOH):
        assert (await served_certificate(ca, where)).serial_number == before.serial_number


def test_validity_problem_names_the_file_and_dates(ca: TestCA, issued: Issued) -> None:
    chain = issued.certificate.read_bytes()
    leaf = x509.load_pem_x509_certificate(chain)
    start, end = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    assert validity_problem(issued.certificate, chain, start + (end - start) / 2) is None
    early = validity_problem(issued.certificate, chain, start - datetime.timedelta(seconds=1))
    assert early == (
        f"tls_certificate {issued.certificate} is not valid yet: valid from "
        f"{start:%Y-%m-%d %H:%M:%S} to {end:%Y-%m-%d %H:%M:%S} UTC"
    )
    late = validity_problem(issued.certificate, chain, end + datetime.timedelta(seconds=1))
    assert late is not None and "has expired" in late
    assert validity_problem(issued.certificate, b"garbage", end) is None  # ssl's to say
