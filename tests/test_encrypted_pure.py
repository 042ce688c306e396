"""DoH request rules, Cache-Control lifetimes and EDNS(0) padding, as pure functions."""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import Callable
from typing import Any

import dns.edns
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from resolver.config import Config, ForwardZone
from resolver.core.actions import Answer
from resolver.core.reasons import ServfailReason
from resolver.engine import Client, Engine, Output, Reply, Send
from resolver.engine.doh import HttpError, dns_query, max_age
from resolver.engine.padding import RESPONSE_BLOCK, asks_for_padding, pad_reply
from resolver.testing import TestInternet
from resolver.testing.scripted import ScriptedWorld


def wire(name: str = "www.example.test.", **options: Any) -> bytes:
    message = dns.message.make_query(name, "A", **options)  # make_query's own options
    message.id = 0
    return message.to_wire()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_get_takes_unpadded_base64url_and_id_zero() -> None:
    query = wire()
    assert dns_query("GET", f"/dns-query?dns={b64(query)}", None, b"") == query
    padded = base64.urlsafe_b64encode(query).decode()
    assert dns_query("GET", f"/dns-query?dns={padded}", None, b"") == query  # tolerated


def test_post_takes_the_body_with_the_dns_media_type() -> None:
    query = wire()
    assert dns_query("POST", "/dns-query", "application/dns-message", query) == query
    assert dns_query("POST", "/dns-query", "Application/DNS-Message; x=1", query) == query


@pytest.mark.parametrize(
    ("method", "target", "content_type", "body", "status"),
    [
        ("POST", "/dns-query", "application/json", b"x" * 20, 415),
        ("POST", "/dns-query", None, b"x" * 20, 415),
        ("GET", "/dns-query", None, b"", 400),
        ("GET", "/dns-query?dns=", None, b"", 400),
        ("GET", "/dns-query?dns=a+b/c", None, b"", 400),  # base64, not base64url
        ("GET", "/dns-query?dns=AAAAA", None, b"", 400),  # an impossible length
        ("GET", "/dns-query?dns=AAAA&dns=AAAA", None, b"", 400),
        ("GET", f"/dns-query?dns={b64(b'short')}", None, b"", 400),
        ("POST", "/dns-query", "application/dns-message", b"x" * 65536, 413),
        ("PUT", "/dns-query", None, b"", 405),
        ("GET", f"/other?dns={b64(b'x' * 20)}", None, b"", 404),
    ],
)
def test_malformed_requests_get_an_http_error(
    method: str, target: str, content_type: str | None, body: bytes, status: int
) -> None:
    result = dns_query(method, target, content_type, body)
    assert isinstance(result, HttpError)
    assert result.status == status


def response(rcode: dns.rcode.Rcode, answer: list[str], authority: list[str]) -> bytes:
    message = dns.message.make_response(dns.message.make_query("www.example.test.", "A"))
    message.set_rcode(rcode)
    message.answer = [dns.rrset.from_text(*line.split(maxsplit=4)) for line in answer]  # type: ignore[arg-type]  # str parts
    message.authority = [dns.rrset.from_text(*line.split(maxsplit=4)) for line in authority]  # type: ignore[arg-type]  # str parts
    return message.to_wire()


def test_max_age_is_the_smallest_answer_ttl() -> None:
    reply = response(
        dns.rcode.NOERROR,
        ["www.example.test. 300 IN CNAME web.example.test.", "web.example.test. 60 IN A 192.0.2.1"],
        [],
    )
    assert max_age(reply) == 60


def test_negative_max_age_is_bounded_by_the_soa_minimum_and_ttl() -> None:
    soa = "example.test. {} IN SOA ns1.example.test. host.example.test. 1 7200 900 86400 {}"
    assert max_age(response(dns.rcode.NXDOMAIN, [], [soa.format(3600, 120)])) == 120
    assert max_age(response(dns.rcode.NOERROR, [], [soa.format(30, 120)])) == 30


def test_an_error_without_records_may_not_be_cached() -> None:
    assert max_age(response(dns.rcode.SERVFAIL, [], [])) == 0
    assert max_age(b"\x00") == 0


def test_max_age_reads_compressed_names_and_skips_authority_records_before_the_soa() -> None:
    # to_wire compresses every name after the question's: the SOA's own names are pointers.
    soa = "www.example.test. 900 IN SOA ns1.example.test. host.example.test. 1 7200 900 86400 45"
    reply = response(dns.rcode.NOERROR, [], ["example.test. 10 IN NS ns1.example.test.", soa])
    assert b"\xc0" in reply
    assert max_age(reply) == 45
    answer = ["www.example.test. 86400 IN A 192.0.2.1", "www.example.test. 86400 IN A 192.0.2.2"]
    with_authority = response(
        dns.rcode.NOERROR, answer, ["example.test. 5 IN NS ns1.example.test."]
    )
    assert max_age(with_authority) == 86400  # the authority's TTL does not count


def test_max_age_of_a_truncated_reply_is_zero_never_an_exception() -> None:
    reply = response(dns.rcode.NOERROR, ["www.example.test. 300 IN A 192.0.2.1"], [])
    for length in range(len(reply)):
        assert max_age(reply[:length]) == 0


def test_padding_is_asked_for_only_by_a_padding_option() -> None:
    assert asks_for_padding(wire(use_edns=0, pad=128))
    assert not asks_for_padding(wire(use_edns=0))
    assert not asks_for_padding(wire())
    assert not asks_for_padding(b"\x00\x01\x02")


def test_replies_are_padded_to_468_octet_blocks() -> None:
    plain = response(dns.rcode.NOERROR, ["www.example.test. 60 IN A 192.0.2.1"], [])
    message = dns.message.from_wire(plain)
    message.use_edns(0)
    with_opt = message.to_wire()
    padded = pad_reply(with_opt)
    assert len(padded) == RESPONSE_BLOCK
    assert pad_reply(padded) == padded  # an existing padding option is replaced, not doubled
    assert dns.message.from_wire(padded).answer == message.answer
    assert pad_reply(plain) == plain  # no OPT: nothing to pad in
    big = response(dns.rcode.NOERROR, [f"www.example.test. 60 IN TXT {'x' * 200}"] * 1, [])
    big_message = dns.message.from_wire(big)
    big_message.answer[0].add(dns.rdata.from_text("IN", "TXT", "y" * 250))
    big_message.use_edns(0)
    assert len(pad_reply(big_message.to_wire())) == 2 * RESPONSE_BLOCK


def test_a_padding_option_survives_with_other_options() -> None:
    message = dns.message.from_wire(response(dns.rcode.SERVFAIL, [], []))
    message.use_edns(0, options=[dns.edns.EDEOption(dns.edns.EDECode.OTHER, "why")])
    padded = dns.message.from_wire(pad_reply(message.to_wire()))
    codes = [option.otype for option in padded.options]
    assert dns.edns.OptionType.EDE in codes and dns.edns.OptionType.PADDING in codes


# -- a DoT forwarder that fails its TLS setup: EDE 23 naming server and reason -----------------

ZONE = ForwardZone("fwd.test.", ("192.0.2.1", "192.0.2.2"), tls=True, tls_name="dot.test")


def drain(
    engine: Engine,
    outputs: list[Output],
    outcome: Callable[[Send], str | None],
    done: Callable[[], bool],
) -> list[Reply]:
    """Carry the engine's outputs (no sockets): each query's fate is `outcome(send)`, a
    NetworkError's reason (what `server/dotpool.py` returns) or None for silence."""
    queue, replies = deque(outputs), list[Reply]()
    while queue and not done():
        output = queue.popleft()
        if isinstance(output, Reply):
            replies.append(output)
        elif isinstance(output, Send):
            assert output.server.tls is not None and output.tcp  # never in clear text
            reason = outcome(output)
            if reason is None:
                queue.extend(engine.upstream_silent(output.handle))
            else:
                queue.extend(engine.upstream_failed(output.handle, reason))
    return replies


def tls_reason(send: Send) -> str:
    return f"DNS over TLS to {send.server.address}:853 (dot.test): certificate verify failed"


def test_every_forwarder_failing_its_tls_setup_is_ede_23_naming_each(
    internet: TestInternet,
) -> None:
    engine = ScriptedWorld(internet, Config(forward_zones=(ZONE,))).engine
    answers, traced = list[Answer](), list[str]()
    name = dns.name.from_text("a.fwd.test.")
    outputs = engine.ask(name, dns.rdatatype.A, answers.append, trace=traced.append)
    drain(engine, outputs, tls_reason, lambda: bool(answers))
    answer = answers[0]
    assert answer.rcode == dns.rcode.SERVFAIL
    assert answer.failure is ServfailReason.FORWARDER_TLS_FAILED
    detail = (
        "DNS over TLS to 192.0.2.1:853 (dot.test): certificate verify failed; "
        "DNS over TLS to 192.0.2.2:853 (dot.test): certificate verify failed"
    )
    assert answer.detail == detail
    # --trace names each server and the reason, then the SERVFAIL with the same words.
    assert any(line.strip() == tls_reason_for("192.0.2.2") for line in traced), traced
    assert traced[-1].strip() == f"SERVFAIL: no forwarder reachable over TLS: {detail}"
    # A client's reply carries it as EDE 23, Network Error (RFC 8914 section 4.24).
    wire = dns.message.make_query("b.fwd.test.", "A", use_edns=0).to_wire()
    replies = drain(
        engine, engine.client_query(wire, Client("127.0.0.1")), tls_reason, lambda: False
    )
    reply = dns.message.from_wire(replies[0].wire or b"")
    errors = [option for option in reply.options if isinstance(option, dns.edns.EDEOption)]
    assert [(error.code, error.text) for error in errors] == [
        (dns.edns.EDECode.NETWORK_ERROR, f"no forwarder reachable over TLS: {detail}")
    ]


def tls_reason_for(address: str) -> str:
    return f"DNS over TLS to {address}:853 (dot.test): certificate verify failed"


def test_a_silent_forwarder_among_tls_failures_is_ede_22(internet: TestInternet) -> None:
    engine = ScriptedWorld(internet, Config(forward_zones=(ZONE,))).engine
    answers = list[Answer]()
    outputs = engine.ask(dns.name.from_text("a.fwd.test."), dns.rdatatype.A, answers.append)

    def first_fails_second_is_silent(send: Send) -> str | None:
        return tls_reason(send) if send.server.address == "192.0.2.1" else None

    drain(engine, outputs, first_fails_second_is_silent, lambda: bool(answers))
    assert answers[0].failure is ServfailReason.NO_FORWARDER_ANSWERED
    assert answers[0].detail == ""
