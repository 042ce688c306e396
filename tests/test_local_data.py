"""Local data: records the resolver answers itself, overriding the internet, for exact names.

The semantics are those of Unbound's local-data in a "transparent" local zone: a local name
answers every type itself (NODATA for types it has no record of, its CNAME followed), names
below it and every other name are resolved from the internet as usual.
"""

from __future__ import annotations

from pathlib import Path

import dns.flags
import dns.rcode
import dns.rdatatype
import pytest
import trio

from resolver.core.overrides import DEFAULT_LOCAL_TTL, OverrideError
from resolver.testing import TestInternet
from resolver.testing.scripted import ScriptedWorld
from tests.daemon_support import Finished, run_resolver
from tests.frontend_support import ask, query, start_resolver
from tests.helpers import loopback_config, texts

LAN = (
    "router.lan. 3600 IN A 192.168.1.1",
    "printer.lan A 192.168.1.2",  # relative to the root; TTL and class left out
    "router.lan. 60 IN A 192.168.1.3",  # a second record joins the first RRset
    "nas.lan. 300 IN AAAA fd00::5",
    "files.lan. 300 IN CNAME nas.lan.",
    "www.example.test. 60 IN A 10.0.0.1",  # overrides what the internet says
    "alias.lan. 300 IN CNAME mail.example.test.",  # an alias into the internet
)


def local_world(internet: TestInternet, *lines: str) -> ScriptedWorld:
    return ScriptedWorld(internet, loopback_config(local_data=lines or LAN))


def test_local_records_are_answered_without_asking_anyone(internet: TestInternet) -> None:
    world = local_world(internet)
    answer = world.resolve("router.lan.")
    assert answer.rcode == dns.rcode.NOERROR
    # RFC 2181 section 5.2: one TTL per RRset, the smallest of the records given
    assert texts(answer.answer) == [
        "router.lan. 60 IN A 192.168.1.1",
        "router.lan. 60 IN A 192.168.1.3",
    ]
    assert texts(world.resolve("printer.lan.").answer) == [
        f"printer.lan. {DEFAULT_LOCAL_TTL} IN A 192.168.1.2"
    ]
    assert world.last_queries == 0
    assert internet.total_queries() == 0


def test_local_data_overrides_the_internet(internet: TestInternet) -> None:
    world = local_world(internet)
    answer = world.resolve("www.example.test.")
    assert texts(answer.answer) == ["www.example.test. 60 IN A 10.0.0.1"]
    assert internet.total_queries() == 0


def test_other_types_of_a_local_name_are_nodata(internet: TestInternet) -> None:
    world = local_world(internet)
    for name, rdtype in [("router.lan.", "AAAA"), ("www.example.test.", "AAAA")]:
        answer = world.resolve(name, rdtype)
        assert answer.rcode == dns.rcode.NOERROR, name
        assert answer.answer == () and answer.authority == (), name
    assert internet.total_queries() == 0


def test_names_below_a_local_name_are_resolved_as_usual(internet: TestInternet) -> None:
    world = local_world(internet, "example.test. 60 IN A 10.9.9.9")
    assert texts(world.resolve("example.test.").answer) == ["example.test. 60 IN A 10.9.9.9"]
    assert internet.total_queries() == 0
    answer = world.resolve("www.example.test.")
    assert texts(answer.answer) == ["www.example.test. 300 IN A 192.0.2.1"]
    # and not below: transparent, so an unknown sibling is still NXDOMAIN from the internet
    assert world.resolve("nope.example.test.").rcode == dns.rcode.NXDOMAIN


def test_local_cnames_are_followed_locally_and_into_the_internet(internet: TestInternet) -> None:
    world = local_world(internet)
    files = world.resolve("files.lan.", "AAAA")
    assert texts(files.answer) == [
        "files.lan. 300 IN CNAME nas.lan.",
        "nas.lan. 300 IN AAAA fd00::5",
    ]
    assert internet.total_queries() == 0
    alias = world.resolve("alias.lan.")
    assert texts(alias.answer) == [
        "alias.lan. 300 IN CNAME mail.example.test.",
        "mail.example.test. 3600 IN A 192.0.2.2",
    ]
    # asking for the CNAME itself gets it, not its target
    assert texts(world.resolve("files.lan.", "CNAME").answer) == [
        "files.lan. 300 IN CNAME nas.lan."
    ]


def test_local_data_steers_the_iterator_too(internet: TestInternet) -> None:
    """The address of a glueless name server is taken from local data, like any name."""
    world = local_world(internet, "ns.glueless-host.other.test. 3600 IN A 127.53.4.1")
    answer = world.resolve("www.glueless.test.")
    assert texts(answer.answer) == ["www.glueless.test. 3600 IN A 203.0.113.1"]
    assert internet.servers["ns1.other.test."].query_count == 0


def test_local_answers_do_not_age(internet: TestInternet) -> None:
    world = local_world(internet)
    world.clock.advance(10_000)
    assert world.resolve("printer.lan.").answer[0].ttl == DEFAULT_LOCAL_TTL


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("router.lan. 3600 IN A 192.168.1.300", "not a valid record"),
        ("router.lan. 3600 IN BOGUS 1", "not a valid record"),
        ("router.lan. 3600 CH A 192.168.1.1", "not a valid record"),
        ("router.lan. 3600 IN A", "not a valid record"),
        ("", "expected one record"),
        ("$TTL 60", "expected one record"),
        ("lan. 3600 IN SOA ns.lan. admin.lan. 1 2 3 4 5", "not a valid record"),
    ],
)
def test_a_bad_line_fails_at_start_naming_it(
    internet: TestInternet, line: str, reason: str
) -> None:
    with pytest.raises(OverrideError) as failure:
        local_world(internet, "printer.lan A 192.168.1.2", line)
    message = str(failure.value)
    assert message.startswith(f"local_data[1]: {line!r}: "), message
    assert reason in message


def test_a_cname_with_other_data_is_refused(internet: TestInternet) -> None:
    with pytest.raises(OverrideError, match=r"files\.lan\. has a CNAME and other records"):
        local_world(internet, "files.lan. CNAME nas.lan.", "files.lan. A 192.168.1.9")


async def test_local_data_through_the_front_end(
    nursery: trio.Nursery, live_internet: TestInternet, tmp_path: Path
) -> None:
    await start_resolver(nursery, live_internet, tmp_path, local_data=LAN)
    response = await ask(query("router.lan."))
    assert response.rcode() == dns.rcode.NOERROR
    assert {rdata.address for rdata in response.answer[0]} == {"192.168.1.1", "192.168.1.3"}
    assert response.flags & dns.flags.RA and not response.flags & dns.flags.AA
    nodata = await ask(query("router.lan.", "MX"))
    assert nodata.rcode() == dns.rcode.NOERROR and nodata.answer == []
    assert live_internet.total_queries() == 0


def run_with_config(tmp_path: Path, text: str, *args: str) -> Finished:
    """`resolver ARGS --config FILE`, with the test internet's hints so that a bug could never
    send a query to the real root servers (the test internet is not running: nothing answers).
    """
    config = tmp_path / "resolver.toml"
    config.write_text(text)
    hints = TestInternet.default().write_hints(tmp_path / "test.hints")
    return run_resolver(*args, "--config", str(config), "--root-hints", str(hints))


def test_the_command_line_reports_a_bad_line_in_one_line(tmp_path: Path) -> None:
    result = run_with_config(
        tmp_path,
        'local_data = ["printer.lan A 192.168.1.2", "router.lan A 300.1.1.1"]\n',
        "query",
        "printer.lan",
    )
    assert result.returncode != 0, result.describe()
    assert "Traceback" not in result.stderr, result.describe()
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.describe()
    assert lines[0].startswith("resolver: error: local_data[1]: 'router.lan A 300.1.1.1'")


def test_the_command_line_answers_local_data_without_upstream(tmp_path: Path) -> None:
    result = run_with_config(
        tmp_path, 'local_data = ["printer.lan A 192.168.1.2"]\n', "query", "printer.lan"
    )
    assert result.returncode == 0, result.describe()
    assert "0 upstream queries" in result.stdout, result.describe()
    assert "printer.lan. 3600 IN A 192.168.1.2" in result.stdout, result.describe()
