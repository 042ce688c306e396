"""DoH request rules, Cache-Control lifetimes and EDNS(0) padding, as pure functions."""

from __future__ import annotations

import base64

import dns.edns
import dns.message
import dns.rcode
import dns.rrset
import pytest

from resolver.engine.doh import HttpError, dns_query, max_age
from resolver.engine.padding import RESPONSE_BLOCK, asks_for_padding, pad_reply


def wire(name: str = "www.example.test.", **options: object) -> bytes:
    message = dns.message.make_query(name, "A", **options)  # type: ignore[arg-type]
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
    message.answer = [dns.rrset.from_text(*line.split(maxsplit=4)) for line in answer]  # type: ignore[arg-type]
    message.authority = [dns.rrset.from_text(*line.split(maxsplit=4)) for line in authority]  # type: ignore[arg-type]
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
