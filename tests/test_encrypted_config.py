"""Unusable TLS files are one-line errors at start, naming the key and the path: never a
traceback, and never a daemon that starts and then fails every query of a zone."""

from __future__ import annotations

from pathlib import Path

import pytest

from resolver.config import ConfigError
from resolver.configfile import load_config
from resolver.testing import TestInternet
from resolver.testing.certs import TestCA
from tests.daemon_support import free_port, run_resolver
from tests.test_cli import assert_one_line_error


@pytest.fixture
def hints(internet: TestInternet, tmp_path: Path) -> Path:
    path = tmp_path / "root.hints"
    internet.write_hints(path)
    return path


def bad_file(tmp_path: Path, kind: str) -> Path:
    """A path that is missing, a directory, or a file with no PEM certificate in it."""
    path = tmp_path / f"{kind}.pem"
    if kind == "directory":
        path.mkdir()
    elif kind == "garbage":
        path.write_text("this is not a certificate\n")
    return path


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [
        ("missing", "No such file or directory"),
        ("directory", "Is a directory"),
        ("garbage", "no usable CA certificate"),
    ],
)
@pytest.mark.parametrize("command", ["serve", "serve --workers 2", "query"])
def test_a_bad_tls_ca_file_is_an_error_at_start(
    hints: Path, tmp_path: Path, kind: str, fragment: str, command: str
) -> None:
    ca_file = bad_file(tmp_path, kind)
    config = tmp_path / "resolver.toml"
    config.write_text(
        "[[forward_zones]]\n"
        'name = "fwd.test."\n'
        'servers = ["127.0.0.1"]\n'
        "tls = true\n"
        'tls_name = "dot.test"\n'
        f'tls_ca_file = "{ca_file}"\n'
    )
    args = [*command.split(), "--config", str(config), "--root-hints", str(hints)]
    args += ["a.fwd.test."] if command == "query" else ["--listen", f"127.0.0.1:{free_port()}"]
    result = run_resolver(*args)
    assert_one_line_error(result, "forward_zones[0].tls_ca_file", str(ca_file), fragment)


@pytest.mark.parametrize("broken", ["tls_certificate", "tls_key"])
@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_a_bad_certificate_or_key_path_is_an_error_at_start(
    hints: Path, tmp_path: Path, broken: str, kind: str
) -> None:
    issued = TestCA(tmp_path).issue("server")
    files = {"tls_certificate": issued.certificate, "tls_key": issued.key}
    files[broken] = bad_file(tmp_path, kind)
    config = tmp_path / "resolver.toml"
    config.write_text(
        f'tls_listen = ["127.0.0.1:{free_port()}"]\n'
        + "".join(f'{key} = "{path}"\n' for key, path in files.items())
    )
    result = run_resolver(
        "serve",
        *("--config", str(config), "--root-hints", str(hints)),
        *("--listen", f"127.0.0.1:{free_port()}"),
    )
    assert_one_line_error(result, broken, str(files[broken]))


def test_a_certificate_that_is_not_one_is_an_error_at_start(hints: Path, tmp_path: Path) -> None:
    issued = TestCA(tmp_path).issue("server")
    garbage = bad_file(tmp_path, "garbage")
    config = tmp_path / "resolver.toml"
    config.write_text(
        f'doh_listen = ["127.0.0.1:{free_port()}"]\n'
        f'tls_certificate = "{garbage}"\n'
        f'tls_key = "{issued.key}"\n'
    )
    result = run_resolver(
        "serve",
        *("--config", str(config), "--root-hints", str(hints)),
        *("--listen", f"127.0.0.1:{free_port()}"),
    )
    assert_one_line_error(result, "tls_certificate", str(garbage))


@pytest.mark.parametrize("name", ["", " ", "dot..test", "bad name.test", "-x.test", "a" * 64])
def test_an_invalid_tls_name_is_a_config_error_naming_the_key(tmp_path: Path, name: str) -> None:
    path = tmp_path / "resolver.toml"
    zone = f'name = "."\nservers = ["127.0.0.53"]\ntls = true\ntls_name = "{name}"\n'
    path.write_text("[[forward_zones]]\n" + zone)
    with pytest.raises(ConfigError, match=r"forward_zones\[0\]\.tls_name: "):
        load_config(path)


@pytest.mark.parametrize("name", ["dot.test", "dot.test.", "127.0.0.53", "::1", "x_y.test"])
def test_a_valid_tls_name_loads(tmp_path: Path, name: str) -> None:
    path = tmp_path / "resolver.toml"
    zone = f'name = "."\nservers = ["127.0.0.53"]\ntls = true\ntls_name = "{name}"\n'
    path.write_text("[[forward_zones]]\n" + zone)
    assert load_config(path).forward_zones[0].tls_name == name
