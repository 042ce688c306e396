"""A Redis password never reaches a message: not in a config error, not in a start error.

The URL may carry the password (`redis://user:secret@host`), or `shared_cache.password` may;
either way the text an operator sees (and a log keeps) says `***` instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from resolver.config import SharedCacheConfig, redact_url
from resolver.configfile import ConfigError, load_config
from resolver.server.errors import StartupError

PASSWORD = "hunter2-s3cret"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"redis://app:{PASSWORD}@10.0.0.5:6379/0", "redis://***@10.0.0.5:6379/0"),
        (f"rediss://:{PASSWORD}@cache/", "rediss://***@cache/"),
        (f"http://u:{PASSWORD}@h/", "http://***@h/"),
        (f"u:{PASSWORD}@host:6379", "***@host:6379"),
        ("redis://10.0.0.5:6379", "redis://10.0.0.5:6379"),
    ],
)
def test_userinfo_is_stripped(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_a_bad_url_in_the_config_file_is_reported_without_its_password(tmp_path: Path) -> None:
    path = tmp_path / "resolver.toml"
    path.write_text(f'[shared_cache]\nurl = "http://app:{PASSWORD}@10.0.0.5:6379"\n')
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = str(raised.value)
    assert "shared_cache" in message and "***@10.0.0.5" in message
    assert PASSWORD not in message


def test_a_url_the_client_refuses_is_reported_without_the_password() -> None:
    pytest.importorskip("coredis")
    from resolver.server.sharedcache import SharedCacheClient

    for config in (
        SharedCacheConfig(url=f"redis://app:{PASSWORD}@10.0.0.5:notaport/0", secret="x" * 32),
        SharedCacheConfig(url="redis://10.0.0.5:notaport/x", password=PASSWORD, secret="x" * 32),
    ):
        with pytest.raises(StartupError) as raised:
            SharedCacheClient(config)
        assert str(raised.value).startswith("shared_cache.url: ")
        assert PASSWORD not in str(raised.value), str(raised.value)
