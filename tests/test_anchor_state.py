"""RFC 5011 in the daemon: `ManagedAnchors` (pure, fake clock) and its state file
(`server/anchorstate.py`: atomic writes, at most one a minute, a bad file never fatal)."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rrset
import pytest
import trio
import trio.testing

from resolver.config import Config, DnssecConfig
from resolver.dnssec import (
    KeyState,
    ManagedAnchors,
    StateFileError,
    TrustAnchors,
    parse_trust_anchors,
)
from resolver.server.anchorstate import AnchorState, KeysSeen, load_seeds
from resolver.server.errors import StartupError
from resolver.testing import signed_topology
from resolver.testing.internet import TestInternet
from resolver.testing.signing import (
    DAY,
    KSK_FLAGS,
    NOW,
    ZSK_FLAGS,
    ZoneKey,
    dnskey_rrset,
    make_ds,
    make_key,
    rrsigs,
    sign,
)
from tests.daemon_support import free_port, running_daemon

ROOT = dns.name.root
OLD = make_key(".", flags=KSK_FLAGS, seed="old")
NEW = make_key(".", flags=KSK_FLAGS, seed="new")
ZSK = make_key(".", flags=ZSK_FLAGS, seed="zsk")
SEEDS = parse_trust_anchors(f". IN DS {make_ds('.', OLD).to_text()}\n", "seeds")


def root_keys(*keys: ZoneKey, signers: list[ZoneKey]) -> tuple[dns.rrset.RRset, dns.rrset.RRset]:
    """The root's DNSKEY RRset as an upstream serves it, signed by `signers`."""
    data = dnskey_rrset(".", *keys)
    sigs = [sign(data, key, ".", NOW - DAY, NOW + 400 * DAY) for key in signers]
    return data, rrsigs(data, *sigs)


def trusted(managed: ManagedAnchors) -> set[int]:
    """Key tags of the root keys the validator would trust now."""
    anchors = managed.trust_anchors()
    anchor = anchors.closest(ROOT)
    assert anchor is not None
    return {ZoneKey(None, key).tag for key in anchor.dnskeys}


# -- ManagedAnchors, pure -----------------------------------------------------------------


def test_a_rollover_over_simulated_months_survives_a_save_and_load() -> None:
    managed = ManagedAnchors(SEEDS)
    # Before any observation the seeds themselves are the anchor.
    seeded = managed.trust_anchors().closest(ROOT)
    assert seeded is not None and seeded.ds == SEEDS.ds[ROOT]
    now = float(NOW)
    assert managed.observe(ROOT, *root_keys(OLD, ZSK, signers=[OLD]), now)
    assert trusted(managed) == {OLD.tag}
    # Day 0: the new KSK appears, signed by the trusted one: AddPend, not trusted yet.
    assert managed.observe(ROOT, *root_keys(OLD, NEW, ZSK, signers=[OLD]), now)
    assert managed.zones[ROOT].state_of(NEW.dnskey) is KeyState.ADDPEND
    assert "AddPend" in " ".join(managed.last_changes)
    for _ in range(29):  # a fetch a day for 29 days: nothing changes
        now += DAY
        assert not managed.observe(ROOT, *root_keys(OLD, NEW, ZSK, signers=[OLD]), now)
    assert trusted(managed) == {OLD.tag}
    # The state file round trip in the middle of it: nothing is lost, not even the hold-down.
    managed = ManagedAnchors(SEEDS, managed.to_text(), "state")
    now += DAY  # day 30: the hold-down is over
    assert managed.observe(ROOT, *root_keys(OLD, NEW, ZSK, signers=[OLD]), now)
    assert trusted(managed) == {OLD.tag, NEW.tag}
    # The old KSK is published with REVOKE and signs the set itself: out at once.
    now += 10 * DAY
    revoked = OLD.revoked()
    assert managed.observe(ROOT, *root_keys(revoked, NEW, ZSK, signers=[revoked, NEW]), now)
    assert trusted(managed) == {NEW.tag}
    reloaded = ManagedAnchors(SEEDS, managed.to_text(), "state")
    assert trusted(reloaded) == {NEW.tag}
    assert reloaded.to_text() == managed.to_text()
    # 30 days on it is forgotten; the new key alone is the anchor, though no seed names it.
    now += 31 * DAY
    assert reloaded.observe(ROOT, *root_keys(NEW, ZSK, signers=[NEW]), now)
    assert reloaded.zones[ROOT].state_of(OLD.dnskey) is None
    assert trusted(reloaded) == {NEW.tag}


def test_an_rrset_signed_by_no_trusted_key_changes_nothing() -> None:
    managed = ManagedAnchors(SEEDS)
    intruder = make_key(".", flags=KSK_FLAGS, seed="intruder")
    assert not managed.observe(ROOT, *root_keys(OLD, intruder, signers=[intruder]), NOW)
    assert managed.to_text().count("\n") == 1  # the header only
    assert not managed.observe(dns.name.from_text("sec."), *root_keys(OLD, signers=[OLD]), NOW)


def test_dnskey_seeds_negative_anchors_and_foreign_state_lines() -> None:
    seeds = parse_trust_anchors(signed_topology.trust_anchor_text(), "anchors")
    key = seeds.dnskeys[ROOT][0]
    foreign = f"example. Valid 1 {key.to_text()}\n"
    managed = ManagedAnchors(seeds, foreign, "state")
    assert list(managed.zones) == [ROOT], "a zone that is no seed is dropped"
    anchors = managed.trust_anchors([dns.name.from_text("broken.sec.")])
    anchor = anchors.closest(ROOT)
    assert anchor is not None and anchor.dnskeys == (key,)
    assert anchors.is_negative(dns.name.from_text("www.broken.sec."))
    # A DNSKEY seed is followed too: its own DS starts RFC 5011.
    root = make_key(".")  # signed_topology's root KSK
    assert root.dnskey == key
    assert managed.observe(ROOT, *root_keys(root, signers=[root]), NOW)
    assert managed.zones[ROOT].state_of(key) is KeyState.VALID


@pytest.mark.parametrize(
    "text",
    [". Bogus 0 257 3 15 abcd\n", ". Valid nan 257 3 15 abcd\n", ". Valid 1\n"],
    ids=["state", "time", "fields"],
)
def test_a_corrupt_state_text_raises_naming_the_line(text: str) -> None:
    with pytest.raises(StateFileError, match=r"^state:1: "):
        ManagedAnchors(SEEDS, text, "state")


# -- the state file -----------------------------------------------------------------------


def config_with(tmp_path: Path) -> Config:
    return Config(dnssec=DnssecConfig(trust_anchor_state=tmp_path / "anchors.state"))


def changed_state(tmp_path: Path) -> AnchorState:
    state = AnchorState.open(config_with(tmp_path), seeds=SEEDS)
    assert state.observe(ROOT, *root_keys(OLD, ZSK, signers=[OLD]), NOW)
    return state


def test_the_state_is_written_atomically_with_mode_0644(tmp_path: Path) -> None:
    state = changed_state(tmp_path)
    assert state.save() and not state.save(), "written once, then nothing new to write"
    path = tmp_path / "anchors.state"
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert AnchorState.open(config_with(tmp_path), seeds=SEEDS).managed.to_text() == (
        path.read_text(encoding="utf-8")
    )
    assert os.listdir(tmp_path) == ["anchors.state"], "no temporary file left"


def test_a_crash_mid_write_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "anchors.state"
    path.write_text("; the old state\n", encoding="utf-8")
    state = changed_state(tmp_path)
    pid = os.fork()
    if pid == 0:  # the child dies while writing, after the data and before the rename
        os.fsync = lambda _fd: os._exit(9)  # type: ignore[assignment]  # a crash in the child
        state.save()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 9
    assert path.read_text(encoding="utf-8") == "; the old state\n"
    assert state.save(), "the next write succeeds beside the dead process's temporary file"
    assert "Valid" in path.read_text(encoding="utf-8")


def test_a_failed_write_is_logged_and_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = changed_state(tmp_path)
    state.path = tmp_path / "missing-directory" / "anchors.state"
    with caplog.at_level(logging.WARNING):
        assert not state.save()
    assert "dnssec.trust_anchor_state not saved" in caplog.text
    assert state.unsaved


@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe not text", b". Valid 1 257 3 15 !!!\n", b"x" * (1024 * 1024 + 1)],
    ids=["binary", "bad-key", "huge"],
)
def test_a_corrupt_state_file_is_one_log_line_and_a_start_from_the_seeds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    (tmp_path / "anchors.state").write_bytes(content)
    with caplog.at_level(logging.INFO):
        state = AnchorState.open(config_with(tmp_path), seeds=SEEDS)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "dnssec.trust_anchor_state" in warnings[0].getMessage()
    assert state.managed.trust_anchors().ds == SEEDS.ds


def test_a_missing_state_file_is_a_first_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        state = AnchorState.open(config_with(tmp_path), seeds=SEEDS)
    assert not caplog.records and state.managed.trust_anchors().ds == SEEDS.ds


def test_at_most_one_write_a_minute() -> None:
    async def main(tmp: Path) -> list[int]:
        state = changed_state(tmp)
        writes = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(state.run)
            now = float(NOW)
            await trio.sleep(5)
            for _ in range(10):  # a change every 10 s, at 5, 15, ... 95 s
                await trio.sleep(10)
                now += 40 * DAY
                state.observe(
                    ROOT, *root_keys(OLD, make_key(".", seed=str(now)), signers=[OLD]), now
                )
                writes.append(state.writes)
            nursery.cancel_scope.cancel()
        return writes

    with tempfile.TemporaryDirectory() as tmp:
        writes = trio.run(main, Path(tmp), clock=trio.testing.MockClock(autojump_threshold=0))
    assert writes == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1], "one write at 60 s for six changes"


class Host:
    """A stand-in for the engine context `attach` wires into (`Context`'s two members)."""

    def __init__(self) -> None:
        self.trust_anchors = TrustAnchors()
        self.anchor_listeners: list[KeysSeen] = []

    def replace_trust_anchors(self, anchors: TrustAnchors) -> None:
        self.trust_anchors = anchors


def test_attach_installs_the_anchors_and_the_hook(tmp_path: Path) -> None:
    state = AnchorState.open(config_with(tmp_path), seeds=SEEDS)
    host = Host()
    state.attach(host)
    assert host.trust_anchors.ds == SEEDS.ds
    (listener,) = host.anchor_listeners
    listener(ROOT, *root_keys(OLD, NEW, signers=[OLD]), NOW)
    assert host.trust_anchors.dnskeys[ROOT] == (OLD.dnskey,) and state.unsaved


def test_the_engine_context_takes_the_anchors_and_reports_root_keys(tmp_path: Path) -> None:
    """The real `Context`: `attach` replaces its anchors (its NTAs still apply) and its
    `anchor_keys_seen` reaches the RFC 5011 state."""
    from resolver.config import bundled_root_hints
    from resolver.core.hints import load_root_hints
    from resolver.engine import Engine

    engine = Engine(Config(), load_root_hints(bundled_root_hints()), lambda: NOW)
    context = engine.context
    context.negative_trust_anchors.add(dns.name.from_text("nta.example."))
    state = AnchorState.open(config_with(tmp_path), seeds=SEEDS)
    state.attach(context)
    assert context.trust_anchors.ds == SEEDS.ds
    assert context.trust_anchors.is_negative(dns.name.from_text("www.nta.example."))
    dnskeys, rrsigs = root_keys(OLD, NEW, signers=[OLD])
    context.anchor_keys_seen(ROOT, dnskeys, rrsigs, NOW)
    assert context.trust_anchors.dnskeys[ROOT] == (OLD.dnskey,) and state.unsaved


def test_a_bad_trust_anchor_file_names_the_key(tmp_path: Path) -> None:
    anchors = tmp_path / "anchors"
    anchors.write_text(". IN A 192.0.2.1\n", encoding="utf-8")
    with pytest.raises(StartupError, match=r"^dnssec.trust_anchor_file: .*anchors:1: A record"):
        load_seeds(Config(dnssec=DnssecConfig(trust_anchor_file=anchors)))
    with pytest.raises(StartupError, match=r"dnssec.trust_anchor_file: .*missing"):
        load_seeds(Config(dnssec=DnssecConfig(trust_anchor_file=tmp_path / "missing")))


def test_the_daemon_starts_with_a_corrupt_state_file(
    internet: TestInternet, tmp_path: Path
) -> None:
    hints = internet.write_hints(tmp_path / "test.hints")
    state_file = tmp_path / "anchors.state"
    state_file.write_bytes(b"\x00garbage\n")
    config = tmp_path / "resolver.toml"
    config.write_text(f'[dnssec]\ntrust_anchor_state = "{state_file}"\n', encoding="utf-8")
    port = free_port()
    with (
        internet.in_thread(),
        running_daemon(hints, [f"127.0.0.1:{port}"], ["--config", str(config)]) as daemon,
    ):
        query = dns.message.make_query("www.example.test.", "A")
        reply = dns.query.udp(query, "127.0.0.1", port=port, timeout=5)
        assert reply.rcode() == dns.rcode.NOERROR
        stderr = daemon.stderr_text()
    assert stderr.count("dnssec.trust_anchor_state") == 1 and "Traceback" not in stderr, stderr
    assert state_file.read_bytes() == b"\x00garbage\n", "nothing observed: nothing rewritten"
