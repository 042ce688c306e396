"""The control channel through the real interface: `resolver serve --control-socket`, then the
`resolver stats` and `resolver cache` commands as processes, against the loopback test internet.

Every number checked here is one an operator would read: queries sent by the test, cache hits
and misses they must have caused, upstream queries counted by the test internet's own servers.
Nothing is timed: the warm-restart test moves the dump's `$TIME` line back instead of sleeping.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rcode
import pytest
import trio

from resolver.server.control import dispatch
from resolver.testing import TestInternet
from tests.daemon_support import Finished, free_port, run_resolver, running_daemon

EXAMPLE_SERVERS = ("ns1.example.test.", "ns2.example.test.")
TLD_SERVERS = ("ns1.nic.test.", "ns2.nic.test.")


@pytest.fixture
def hints(internet: TestInternet, tmp_path: Path) -> Iterator[Path]:
    with internet.in_thread():
        yield internet.write_hints(tmp_path / "test.hints")


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: a Unix socket path must fit in 107 bytes, and pytest's
    tmp_path (which contains the test's name) does not always."""
    directory = Path(tempfile.mkdtemp(prefix="rc-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def ask(port: int, name: str, rdtype: str = "A") -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    return dns.query.udp(query, "127.0.0.1", port=port, timeout=5)


def served(internet: TestInternet, names: tuple[str, ...]) -> int:
    return sum(internet.servers[name].query_count for name in names)


def succeed(*args: str) -> Finished:
    result = run_resolver(*args)
    assert result.returncode == 0, result.describe()
    assert result.stderr == "", result.describe()
    return result


def stats(control: Path) -> dict[str, Any]:
    return json.loads(succeed("stats", "--control-socket", str(control), "--json").stdout)


def one_error_line(result: Finished, *needles: str) -> str:
    assert result.returncode != 0, result.describe()
    assert "Traceback" not in result.stderr, result.describe()
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.describe()
    assert lines[0].startswith("resolver: error: "), result.describe()
    for needle in needles:
        assert needle in lines[0], result.describe()
    return lines[0]


def test_stats_count_queries_hits_misses_and_upstream_queries(
    hints: Path, internet: TestInternet, short_dir: Path
) -> None:
    # The socket comes from the config file, for the daemon and for `stats` alike.
    control = short_dir / "control.sock"
    config = short_dir / "resolver.toml"
    config.write_text(f'control_socket = "{control}"\n', encoding="utf-8")
    port = free_port()
    with running_daemon(hints, [f"127.0.0.1:{port}"], ["--config", str(config)]):
        before = json.loads(succeed("stats", "--config", str(config), "--json").stdout)
        assert before["queries"] == 0
        assert before["hit_rate"] is None  # nothing to divide yet: null, not a made-up 0

        assert ask(port, "alias.example.test.").answer  # miss: resolved upstream
        assert ask(port, "alias.example.test.").answer  # packet-cache hit
        assert ask(port, "www.example.test.").answer  # hit: cached by the CNAME chase
        numbers = json.loads(succeed("stats", "--config", str(config), "--json").stdout)
        text = succeed("stats", "--config", str(config)).stdout

    assert numbers["workers"] == 1
    assert numbers["queries"] == 3
    assert numbers["packet_hits"] == 1
    assert numbers["resolutions"] == 2
    assert numbers["resolutions_from_cache"] == 1
    assert numbers["cache_hits"] == 2
    assert numbers["cache_misses"] == 1
    assert numbers["hit_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert numbers["packet_hit_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert numbers["upstream_queries"] == internet.total_queries() > 0
    assert numbers["servfails"] == 0
    assert numbers["in_flight"] == 0
    assert numbers["cache_packets"] == 2  # alias and www
    assert numbers["cache_rrsets"] >= 2  # the CNAME and the A record at least
    assert numbers["cache_delegations"] > 0  # test. and example.test. NS sets and glue
    assert numbers["latency_samples"] >= 2  # the two full-path queries, at least
    assert 0 < numbers["latency_p50_ms"] <= numbers["latency_p99_ms"]
    # flat: every value a number (or null), for scripts
    assert all(isinstance(value, int | float) or value is None for value in numbers.values())

    assert re.search(r"^queries\s+3$", text, re.MULTILINE), text
    assert re.search(r"^cache hits\s+2 \(66\.7% of hits\+misses", text, re.MULTILINE), text


def test_the_socket_is_0600_and_gone_after_a_clean_stop(hints: Path, short_dir: Path) -> None:
    control = short_dir / "control.sock"
    with running_daemon(
        hints, [f"127.0.0.1:{free_port()}"], ["--control-socket", str(control)]
    ) as daemon:
        mode = os.stat(control).st_mode
        assert stat.S_ISSOCK(mode)
        assert stat.S_IMODE(mode) == 0o600
        assert stats(control)["queries"] == 0
    assert "control socket at" in daemon.stop().stderr
    assert not control.exists()


def test_flushing_a_name_sends_it_upstream_again(
    hints: Path, internet: TestInternet, short_dir: Path
) -> None:
    control = short_dir / "control.sock"
    port = free_port()
    with running_daemon(hints, [f"127.0.0.1:{port}"], ["--control-socket", str(control)]):
        ask(port, "www.example.test.")
        ask(port, "www.example.test.")  # a packet-cache hit
        assert stats(control)["packet_hits"] == 1
        example, tld = served(internet, EXAMPLE_SERVERS), served(internet, TLD_SERVERS)

        flushed = succeed("cache", "flush", "www.example.test", "--control-socket", str(control))
        assert "flushed www.example.test.: 1 cache entries" in flushed.stdout
        # The packet cache must not keep serving the flushed name: this goes upstream again,
        # straight to example.test's servers (its delegation was not flushed).
        assert ask(port, "www.example.test.").answer[0][0].address == "192.0.2.1"
        assert served(internet, EXAMPLE_SERVERS) > example
        assert served(internet, TLD_SERVERS) == tld
        numbers = stats(control)
        assert numbers["packet_hits"] == 1
        assert numbers["cache_misses"] == 2

        # --subtree takes the zone's delegation too: the TLD is asked again.
        example = served(internet, EXAMPLE_SERVERS)
        succeed("cache", "flush", "example.test", "--subtree", "--control-socket", str(control))
        assert ask(port, "www.example.test.").answer
        assert served(internet, TLD_SERVERS) > tld
        assert served(internet, EXAMPLE_SERVERS) > example

        # No name: everything, the root's NS set included.
        everything = succeed("cache", "flush", "--control-socket", str(control))
        assert everything.stdout.startswith("flushed everything:")
        assert stats(control)["cache_rrsets"] == 0


def dumped_ttl(text: str, kind: str, name: str, rdtype: str) -> int:
    found = re.search(rf"^{kind} {re.escape(name)} (\d+) IN {rdtype} ", text, re.MULTILINE)
    assert found, text
    return int(found.group(1))


def shift_time(text: str, seconds: float) -> str:
    """The dump as if it had been written `seconds` earlier (a restart that took that long)."""
    found = re.search(r"^\$TIME (\S+)", text, re.MULTILINE)
    assert found, text
    return text.replace(found.group(0), f"$TIME {float(found.group(1)) - seconds:.3f}")


def test_dump_and_load_across_a_restart_keep_ttls_counting(
    hints: Path, internet: TestInternet, short_dir: Path
) -> None:
    control = short_dir / "control.sock"
    dump_file = short_dir / "cache.txt"
    arguments = ["--control-socket", str(control)]
    port = free_port()
    with running_daemon(hints, [f"127.0.0.1:{port}"], arguments):
        ask(port, "www.example.test.")
        assert ask(port, "nope.example.test.").rcode() == dns.rcode.NXDOMAIN
        result = succeed("cache", "dump", str(dump_file), *arguments)
        assert f"to {dump_file}" in result.stdout
    assert stat.S_IMODE(os.stat(dump_file).st_mode) == 0o600
    text = dump_file.read_text(encoding="utf-8")
    www_ttl = dumped_ttl(text, "answer", "www.example.test.", "A")
    assert 0 < www_ttl <= 300
    assert dumped_ttl(text, "referral", "example.test.", "NS") > 3600
    assert dumped_ttl(text, "glue", "ns1.example.test.", "A") > 3600
    assert re.search(r"^nxdomain nope\.example\.test\. example\.test\. \d+ IN SOA ", text, re.M)

    # The daemon was "down" for 100 s: the restored TTLs must be 100 s lower.
    dump_file.write_text(shift_time(text, 100), encoding="utf-8")
    with running_daemon(hints, [f"127.0.0.1:{port}"], arguments):
        loaded = succeed("cache", "load", str(dump_file), *arguments)
        assert re.match(r"loaded \d+ entries; 0 expired", loaded.stdout), loaded.stdout
        before = internet.total_queries()
        answer = ask(port, "www.example.test.")
        assert answer.answer[0][0].address == "192.0.2.1"
        assert answer.answer[0].ttl <= www_ttl - 100
        negative = ask(port, "nope.example.test.")
        assert negative.rcode() == dns.rcode.NXDOMAIN
        assert internet.total_queries() == before  # both answered from the loaded cache

        # Down for 1000 s: the 300 s answer has expired, the two-day delegation has not.
        succeed("cache", "flush", *arguments)
        dump_file.write_text(shift_time(text, 1000), encoding="utf-8")
        loaded = succeed("cache", "load", str(dump_file), *arguments)
        counted = re.search(r"(\d+) expired", loaded.stdout)
        assert counted is not None, loaded.stdout
        expired = int(counted.group(1))
        assert expired >= 2  # www's A record and the NXDOMAIN, at least
        tld, example = served(internet, TLD_SERVERS), served(internet, EXAMPLE_SERVERS)
        assert ask(port, "www.example.test.").answer
        assert served(internet, EXAMPLE_SERVERS) > example  # asked again...
        assert served(internet, TLD_SERVERS) == tld  # ...directly, from the loaded delegation


def test_errors_are_one_clear_line(hints: Path, short_dir: Path) -> None:
    control = short_dir / "control.sock"
    one_error_line(run_resolver("stats", "--control-socket", str(control)), "no control socket at")
    one_error_line(run_resolver("stats"), "no control socket: give --control-socket")

    # A socket file nobody listens on (a resolver that was killed left it behind).
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(control))
    stale.close()
    one_error_line(
        run_resolver("cache", "flush", "--control-socket", str(control)),
        "no resolver is listening on",
    )

    # The daemon replaces such a stale socket, but never a file that is not a socket...
    precious = short_dir / "precious.txt"
    precious.write_text("keep me\n", encoding="utf-8")
    one_error_line(
        run_resolver(
            "serve",
            "--root-hints",
            str(hints),
            "--listen",
            f"127.0.0.1:{free_port()}",
            "--control-socket",
            str(precious),
        ),
        "not a socket",
    )
    assert precious.read_text(encoding="utf-8") == "keep me\n"

    with running_daemon(hints, [f"127.0.0.1:{free_port()}"], ["--control-socket", str(control)]):
        # ...nor the socket of a resolver that is running.
        one_error_line(
            run_resolver(
                "serve",
                "--root-hints",
                str(hints),
                "--listen",
                f"127.0.0.1:{free_port()}",
                "--control-socket",
                str(control),
            ),
            "another resolver is answering on it",
        )
        broken = short_dir / "broken.txt"
        broken.write_text("$TIME 1\nanswer www.example.test. 300 IN A not-an-address\n")
        one_error_line(
            run_resolver("cache", "load", str(broken), "--control-socket", str(control)),
            f"{broken}: line 2:",
        )
        one_error_line(
            run_resolver(
                "cache", "load", str(short_dir / "missing.txt"), "--control-socket", str(control)
            ),
            "cannot read",
        )
        one_error_line(
            run_resolver("cache", "flush", "--subtree", "--control-socket", str(control)),
            "--subtree needs a NAME",
        )
        one_error_line(
            run_resolver("cache", "flush", "a..b", "--control-socket", str(control)),
            "is not a domain name",
        )


def test_workers_answer_as_one_resolver(
    hints: Path, internet: TestInternet, short_dir: Path
) -> None:
    """With --workers the supervisor owns the socket and relays to every worker's own cache."""
    control = short_dir / "control.sock"
    dump_file = short_dir / "cache.txt"
    arguments = ["--control-socket", str(control)]
    port = free_port()
    with running_daemon(hints, [f"127.0.0.1:{port}"], ["--workers", "2", *arguments]):
        for _ in range(40):  # new source port each time: the kernel spreads them over both
            assert ask(port, "www.example.test.").answer
        numbers = stats(control)
        assert numbers["workers"] == 2
        assert numbers["queries"] == 40
        # each worker that saw the name resolved it once; every other query was a hit
        resolved = numbers["cache_misses"]
        assert 1 <= resolved <= 2
        assert numbers["cache_hits"] == 40 - resolved
        assert numbers["upstream_queries"] == internet.total_queries()

        succeed("cache", "dump", str(dump_file), *arguments)
        text = dump_file.read_text(encoding="utf-8")
        # one cache's worth: the two workers' copies are merged into one line per record
        assert len(re.findall(r"^answer www\.example\.test\. \d+ IN A ", text, re.M)) == 1

        flushed = succeed("cache", "flush", "www.example.test", *arguments)
        assert f"{resolved} cache entries" in flushed.stdout
        loaded = succeed("cache", "load", str(dump_file), *arguments)
        assert "into 2 workers' caches" in loaded.stdout
        before = internet.total_queries()
        for _ in range(10):
            assert ask(port, "www.example.test.").answer
        assert internet.total_queries() == before  # every worker got the dump


def test_one_dispatcher_answers_every_request_alike() -> None:
    """The daemon and the --workers supervisor share `dispatch`: a handler gets the arguments,
    a refused request and a handler that breaks are each one error object, never a crash."""

    async def echo(arguments: Any) -> Any:
        return dict(arguments)

    async def broken(_arguments: Any) -> Any:
        raise ValueError("oops")

    handlers = {"echo": echo, "broken": broken}

    def answer(line: bytes) -> dict[str, Any]:
        return trio.run(dispatch, handlers, line)

    assert answer(b'{"command": "echo", "path": "/x"}') == {"ok": True, "result": {"path": "/x"}}
    assert answer(b'{"command": "nonsense"}') == {
        "ok": False,
        "error": "unknown command 'nonsense' (known: broken, echo)",
    }
    assert answer(b"[1]")["error"] == 'a request is an object with a "command" string'
    assert answer(b'{"command": "broken"}') == {"ok": False, "error": "internal error: oops"}
