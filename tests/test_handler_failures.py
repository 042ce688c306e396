"""No exception from one query reaches a listener: that query ends in SERVFAIL, serving goes on.

An answer too large for any DNS message (`dns.exception.TooBig`), a bug inside resolution, a
broken packet cache or a failed prefetch must cost one client one SERVFAIL (or, over UDP, a
truncated reply for the too-large answer) and one log record, never the listener or the daemon.
Trio's cancellation is not an error and must still pass.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
import trio

import resolver.engine.engine as engine_module
from resolver.core.actions import Action, Answer, Done
from resolver.core.resolution import Resolution
from resolver.server.service import ResolverService
from tests.frontend_support import ask, offline_handler, query, tcp_exchange, udp_exchange

#: The name whose answer the tests replace with a too-large one or a crash.
DOOMED = dns.name.from_text("doomed.example.test.")


def too_big_answer() -> Answer:
    """300 TXT records of 250 bytes each: about 79 KB, more than any DNS message can hold."""
    records = [f'"{index:03d}{"x" * 247}"' for index in range(300)]
    rrset = dns.rrset.from_text_list(DOOMED, 300, "IN", "TXT", records)
    return Answer(dns.rcode.NOERROR, (rrset,))


def replace_resolve(monkeypatch: pytest.MonkeyPatch, fake: Callable[[], Answer]) -> None:
    """`fake` answers (or raises) for DOOMED inside the engine; every other question is
    resolved as usual."""

    class Doomed(Resolution):
        def next_action(self) -> Action:
            if self.qname == DOOMED:
                return Done(fake())
            return super().next_action()

    monkeypatch.setattr(engine_module, "Resolution", Doomed)


def give_too_big() -> Answer:
    return too_big_answer()


def crash() -> Answer:
    raise RuntimeError("a bug in resolution")


def ede_of(response: dns.message.Message) -> list[tuple[int, str | None]]:
    return [
        (option.code, option.text)
        for option in response.options
        if isinstance(option, dns.edns.EDEOption)
    ]


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.ERROR]


# --- on the handler alone ----------------------------------------------------------------------


async def test_an_answer_too_large_for_any_message_is_servfail_over_tcp_and_tc_over_udp(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    handler = offline_handler()
    replace_resolve(monkeypatch, give_too_big)
    request = query("doomed.example.test.", "TXT", use_edns=0)
    over_tcp = await handler.respond(request.to_wire(), "127.0.0.1", tcp=True)
    assert over_tcp is not None
    servfail = dns.message.from_wire(over_tcp)
    assert servfail.id == request.id
    assert servfail.rcode() == dns.rcode.SERVFAIL
    assert servfail.answer == []
    assert ede_of(servfail) == [(dns.edns.EDECode.OTHER, "internal error")]
    assert len(error_records(caplog)) == 1
    # Over UDP the answer cannot fit either: TC=1 sends the client to TCP, as for any big answer.
    over_udp = await handler.respond(request.to_wire(), "127.0.0.1", tcp=False)
    assert over_udp is not None
    truncated = dns.message.from_wire(over_udp)
    assert truncated.flags & dns.flags.TC and truncated.answer == []
    assert truncated.rcode() == dns.rcode.NOERROR
    assert len(handler.engine.packets) == 0  # nothing unrenderable was stored


@pytest.mark.parametrize("rdtype", ["A", "ANY"])
@pytest.mark.parametrize("tcp", [False, True])
async def test_a_crash_in_resolution_is_servfail_with_an_extended_error_and_one_log_record(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, rdtype: str, tcp: bool
) -> None:
    handler = offline_handler()
    replace_resolve(monkeypatch, crash)
    request = query("doomed.example.test.", rdtype, use_edns=0)
    request.flags |= dns.flags.CD
    reply = await handler.respond(request.to_wire(), "127.0.0.1", tcp)
    assert reply is not None
    response = dns.message.from_wire(reply)
    assert response.id == request.id
    assert response.rcode() == dns.rcode.SERVFAIL
    assert response.question == request.question
    assert response.flags & dns.flags.QR and response.flags & dns.flags.RA
    assert response.flags & dns.flags.RD and response.flags & dns.flags.CD
    assert ede_of(response) == [(dns.edns.EDECode.OTHER, "internal error")]
    (record,) = error_records(caplog)
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)
    assert handler.stats.servfails == 1


async def test_a_flood_of_crashing_queries_logs_one_traceback_a_second(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    handler = offline_handler()
    replace_resolve(monkeypatch, crash)
    wire = query("doomed.example.test.").to_wire()
    for _ in range(50):
        assert await handler.respond(wire, "127.0.0.1", False) is not None
    assert len(error_records(caplog)) == 1
    handler.engine._last_error_logged -= 1.0  # as if a second had passed since that record
    await handler.respond(wire, "127.0.0.1", False)
    records = error_records(caplog)
    assert len(records) == 2
    assert "49 more since the last report" in records[1].getMessage()
    assert handler.stats.servfails == 51


async def test_a_client_without_edns_gets_servfail_without_opt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handler = offline_handler()
    replace_resolve(monkeypatch, crash)
    request = query("doomed.example.test.")
    reply = await handler.respond(request.to_wire(), "127.0.0.1", tcp=False)
    assert reply is not None
    response = dns.message.from_wire(reply)
    assert response.rcode() == dns.rcode.SERVFAIL
    assert response.edns == -1


async def test_when_even_the_servfail_cannot_be_rendered_the_header_goes_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handler = offline_handler()
    replace_resolve(monkeypatch, crash)

    def broken_render(*_args: object) -> bytes:
        raise RuntimeError("a bug in rendering")

    monkeypatch.setattr(handler.engine.clients, "_render", broken_render)
    request = query("doomed.example.test.", use_edns=0)
    reply = await handler.respond(request.to_wire(), "127.0.0.1", tcp=False)
    assert reply is not None
    query_id, flags, *counts = struct.unpack("!HHHHHH", reply)
    assert query_id == request.id
    assert flags & 0x000F == dns.rcode.SERVFAIL
    assert flags & dns.flags.QR and flags & dns.flags.RD and flags & dns.flags.RA
    assert counts == [0, 0, 0, 0]


async def test_cancellation_passes_through_and_is_no_servfail(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handler = offline_handler()
    replies: list[bytes | None] = []
    with trio.CancelScope() as scope:
        scope.cancel()
        replies.append(await handler.respond(query("doomed.example.test.").to_wire(), "::1", False))
    assert scope.cancelled_caught
    assert replies == []
    assert handler.stats.servfails == 0


async def test_a_broken_packet_cache_sends_the_query_down_the_full_path(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    handler = offline_handler()
    answer = Answer(dns.rcode.NOERROR, (dns.rrset.from_text(DOOMED, 60, "IN", "A", "192.0.2.9"),))

    def fixed() -> Answer:
        return answer

    replace_resolve(monkeypatch, fixed)

    real_answer = handler.engine.packets.answer
    calls = 0

    def broken_once(*args: object) -> object:
        """Fails the first lookup (the fast path's); the full path's copy works."""
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug in the packet cache")
        return real_answer(*args)  # type: ignore[arg-type]  # the wrapped call's own

    monkeypatch.setattr(handler.engine.packets, "answer", broken_once)
    request = query("doomed.example.test.")
    reply = await handler.respond(request.to_wire(), "127.0.0.1", tcp=False)
    assert reply is not None
    response = dns.message.from_wire(reply)
    assert response.rcode() == dns.rcode.NOERROR
    assert response.answer[0][0].address == "192.0.2.9"
    # The fast path's lookup failed; the full path's copy comes with the store
    # (`PacketCache.store_and_answer`), not from a second lookup.
    assert calls == 1
    assert len(error_records(caplog)) == 1


async def test_a_failed_prefetch_is_logged_and_forgotten(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Prefetch runs in the daemon's own nursery: an exception there would stop the daemon."""
    handler = offline_handler()
    replace_resolve(monkeypatch, crash)
    wire = query("doomed.example.test.").to_wire()
    handler.engine._prefetch(b"key", wire)  # returns: nothing escapes
    assert handler.engine._refreshing == set()
    assert handler.stats.prefetches == 0
    assert len(error_records(caplog)) == 1


# --- through the real listeners ----------------------------------------------------------------


async def test_listeners_survive_an_answer_too_large_to_render(
    resolver: ResolverService, monkeypatch: pytest.MonkeyPatch
) -> None:
    replace_resolve(monkeypatch, give_too_big)
    doomed = query("doomed.example.test.", "TXT")
    over_udp = await ask(doomed)
    assert over_udp.id == doomed.id and over_udp.flags & dns.flags.TC
    (over_tcp,) = await tcp_exchange([doomed.to_wire()])
    assert dns.message.from_wire(over_tcp).rcode() == dns.rcode.SERVFAIL
    # The same again, now that the daemon has seen it once, then a normal question on each.
    fine = query("www.example.test.")
    replies = await tcp_exchange([doomed.to_wire(), fine.to_wire()])
    by_id = {message.id: message for message in map(dns.message.from_wire, replies)}
    assert by_id[doomed.id].rcode() == dns.rcode.SERVFAIL
    assert by_id[fine.id].answer[0][0].address == "192.0.2.1"
    answered = await ask(query("www.example.test."))
    assert answered.rcode() == dns.rcode.NOERROR
    assert answered.answer[0][0].address == "192.0.2.1"


async def test_listeners_survive_a_crash_in_resolution(
    resolver: ResolverService, monkeypatch: pytest.MonkeyPatch
) -> None:
    replace_resolve(monkeypatch, crash)
    for rdtype in ("A", "ANY"):
        doomed = query("doomed.example.test.", rdtype, use_edns=0)
        over_udp = await ask(doomed)
        assert over_udp.id == doomed.id
        assert over_udp.rcode() == dns.rcode.SERVFAIL
        assert ede_of(over_udp) == [(dns.edns.EDECode.OTHER, "internal error")]
    fine = query("www.example.test.")
    replies = await tcp_exchange([doomed.to_wire(), fine.to_wire()])
    by_id = {message.id: message for message in map(dns.message.from_wire, replies)}
    assert by_id[doomed.id].rcode() == dns.rcode.SERVFAIL
    assert by_id[fine.id].answer[0][0].address == "192.0.2.1"
    reply = await udp_exchange(query("mail.example.test.").to_wire())
    assert reply is not None
    assert dns.message.from_wire(reply).answer[0][0].address == "192.0.2.2"
