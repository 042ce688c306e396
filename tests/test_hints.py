"""Root hints: the bundled IANA file, and clear errors for files that cannot be used."""

from __future__ import annotations

from pathlib import Path

import dns.name
import pytest

from resolver.config import Config
from resolver.core.hints import HintsError, load_root_hints, parse_root_hints


def test_bundled_hints_are_the_default_and_list_the_13_root_servers() -> None:
    path = Config().root_hints
    assert path.name == "root.hints" and path.parent.name == "resolver"
    hints = load_root_hints(path)
    names = {rdata.target for rdata in hints.ns}
    assert len(names) == 13
    assert dns.name.from_text("a.root-servers.net.") in names
    assert hints.addresses[dns.name.from_text("a.root-servers.net.")] == (
        "198.41.0.4",
        "2001:503:ba3e::2:30",
    )


def test_the_repository_root_hints_is_the_bundled_file() -> None:
    top = Path(__file__).resolve().parent.parent / "root.hints"
    assert top.read_text() == Config().root_hints.read_text()


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("this is not a zone file at all\n", "not a valid root hints file"),
        ("a.root. 3600 A 192.0.2.1\n", "no NS records for the root"),
        (". 3600 NS a.root.\n", "no A or AAAA record"),
    ],
)
def test_unusable_hints_are_rejected_with_a_reason(text: str, complaint: str) -> None:
    with pytest.raises(HintsError, match=complaint):
        parse_root_hints(text, "bad.hints")


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(HintsError, match="cannot read root hints"):
        load_root_hints(tmp_path / "missing.hints")
