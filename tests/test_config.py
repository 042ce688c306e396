"""The configuration file: every kind of key, flags over the file, errors, docs, and a live run.

The loader walks the dataclasses of resolver/config.py, so besides the real `Config` these tests
feed it made-up dataclasses with every kind of field it reads (the kinds the settings use): that
is the promise teammates rely on when they add such a field and expect a key with no loader change.
Errors are checked through the real process (`python -m resolver`), because what an operator sees
is the process: one `resolver: error:` line naming the key, a non-zero exit, no traceback.
Resolution only happens against the loopback test internet.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import signal
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import click
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from resolver import configfile
from resolver.cli import serve
from resolver.config import Config, IPNetwork, bundled_root_hints, config_problem, parse_endpoint
from resolver.configfile import ConfigError, build, keys, load_config
from resolver.testing import TestInternet
from tests.daemon_support import (
    STOPPED_MARKER,
    Daemon,
    Finished,
    _start,
    free_port,
    resolver_command,
    run_resolver,
)

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs" / "configuration.md"
EXAMPLE = REPO / "docs" / "resolver.example.toml"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- every kind of key of the real Config ----------------------------------------------------


def test_every_kind_of_key_of_the_real_config(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path / "resolver.toml",
            """
            listen = ["127.0.0.1:5353", "[::1]:5353", "10.0.0.1", "[2001:DB8::1]:53"]
            allow = ["10.1.2.3/8", "::1", "2001:db8::/32"]
            root_hints = "hints/root.hints"
            edns_payload = 1400
            log_level = "debug"
            # Dotted keys at the top level are the same settings as a [limits] table.
            limits.max_resolution_time = 3      # a whole number is fine for seconds
            limits.tcp_idle_timeout = 2.5

            [cache]
            max_entries = 500
            max_ttl = 60
            min_ttl = 5
            serve_stale = false

            [upstream]
            query_loopback = true
            use_0x20 = true
            port = 5300
            """,
        )
    )
    assert config.listen == (
        ("127.0.0.1", 5353),
        ("::1", 5353),
        ("10.0.0.1", 53),
        ("2001:db8::1", 53),
    )
    assert config.allow == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
        ipaddress.ip_network("2001:db8::/32"),
    )
    # Relative to the file, so the daemon's working directory does not change its meaning.
    assert config.root_hints == tmp_path / "hints" / "root.hints"
    assert (config.edns_payload, config.log_level) == (1400, "debug")
    assert (config.cache.max_entries, config.cache.max_ttl, config.cache.min_ttl) == (500, 60, 5)
    assert config.cache.serve_stale is False
    assert config.limits.max_resolution_time == 3.0
    assert isinstance(config.limits.max_resolution_time, float)
    assert config.limits.tcp_idle_timeout == 2.5
    assert (config.upstream.query_loopback, config.upstream.use_0x20) == (True, True)
    assert config.upstream.port == 5300
    # A table changes only the keys it names; everything else keeps its default.
    defaults = Config()
    assert config.cache.max_negative_ttl == defaults.cache.max_negative_ttl
    assert config.limits.max_cname_chain == defaults.limits.max_cname_chain
    assert config.upstream.timeout == defaults.upstream.timeout


def test_an_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path / "empty.toml", "")) == Config()


def test_home_directory_is_expanded_in_paths(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "c.toml", 'root_hints = "~/root.hints"\n'))
    assert config.root_hints == Path("~/root.hints").expanduser()


def test_the_example_file_loads(tmp_path: Path) -> None:
    config = load_config(EXAMPLE)
    assert ("192.168.1.1", 53) in config.listen
    assert config.cache.max_entries == 200_000
    # Everything the example leaves out or spells as the default is the default.
    assert config.upstream == Config().upstream
    assert config.root_hints == bundled_root_hints()


# --- the generic machinery: fields teammates add later get keys with no loader change ---------


@dataclass(frozen=True)
class Zone:
    name: str
    servers: tuple[tuple[str, int], ...]
    first_only: bool = False

    def __post_init__(self) -> None:
        if not self.servers:
            raise ValueError("a zone needs at least one server")


@dataclass(frozen=True)
class Tuning:
    depth: int = field(default=2, metadata={"ge": 1, "le": 9})
    ratio: float = 0.5


@dataclass(frozen=True)
class Future:
    """A made-up settings class with every kind of field the loader promises to read."""

    count: int = 1
    level: Literal["low", "high"] = "low"
    metrics: tuple[str, int] | None = None
    socket: Path | None = None
    networks: tuple[IPNetwork, ...] = ()
    names: tuple[str, ...] = ()
    zones: tuple[Zone, ...] = ()
    tuning: Tuning = field(default_factory=Tuning)
    ratio: float = field(default=0.5, metadata={"gt": 0, "le": 1})
    user: str | None = None
    code: int = field(default=0, metadata={"parse": lambda text: int(text, 16), "expects": "hex"})


def load_future(text: str, tmp_path: Path) -> Future:
    data = tomllib.loads(text)
    return configfile.from_mapping(data, Future(), origin="f.toml", base_dir=tmp_path)


def test_every_supported_kind_of_field(tmp_path: Path) -> None:
    loaded = load_future(
        """
        count = 7
        level = "high"
        metrics = "127.0.0.1:9153"
        socket = "run/control.sock"
        networks = ["192.0.2.0/24", "2001:db8::/32"]
        names = ["example.com", "lan."]
        ratio = 1
        user = "nobody"
        code = "ff"

        [tuning]
        depth = 5

        [[zones]]
        name = "."
        servers = ["192.0.2.53", "[2001:db8::53]:5353"]

        [[zones]]
        name = "corp.example."
        servers = ["10.0.0.53"]
        first_only = true
        """,
        tmp_path,
    )
    assert loaded.count == 7
    assert loaded.level == "high"
    assert loaded.metrics == ("127.0.0.1", 9153)
    assert loaded.socket == tmp_path / "run" / "control.sock"
    assert loaded.networks == (
        ipaddress.ip_network("192.0.2.0/24"),
        ipaddress.ip_network("2001:db8::/32"),
    )
    assert loaded.names == ("example.com", "lan.")
    assert loaded.ratio == 1.0
    assert isinstance(loaded.ratio, float)
    assert loaded.user == "nobody"
    assert loaded.code == 255
    assert loaded.tuning == Tuning(depth=5, ratio=0.5)
    assert loaded.zones == (
        Zone(".", (("192.0.2.53", 53), ("2001:db8::53", 5353))),
        Zone("corp.example.", (("10.0.0.53", 53),), first_only=True),
    )
    # Optional values stay None when their key is left out.
    assert load_future("", tmp_path).metrics is None
    assert load_future("", tmp_path).user is None


def test_every_field_of_the_real_config_has_a_type_the_loader_reads() -> None:
    """A field of a type the loader does not read fails here, not in an operator's hands."""
    for key in keys():
        try:
            configfile.describe(key.hint, key.metadata)
        except TypeError as error:
            pytest.fail(f"{key.name}: {error}")


def test_a_type_the_loader_does_not_read_is_an_error_naming_the_key() -> None:
    @dataclass(frozen=True)
    class Odd:
        pair: tuple[int, str] = (0, "")

    with pytest.raises(TypeError, match="pair: the config loader cannot read"):
        configfile.from_mapping({"pair": [1, "x"]}, Odd())


def test_keys_include_tables_and_arrays_of_tables() -> None:
    names = [key.name for key in keys(Future)]
    assert "zones" in names
    assert {"zones.name", "zones.servers", "zones.first_only"} <= set(names)
    assert {"tuning.depth", "tuning.ratio"} <= set(names)
    assert configfile.key("zones.name", Future).required


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('level = "mid"', 'level: expected one of "low", "high", got "mid"'),
        ("level = true", 'level: expected one of "low", "high", got true'),
        ("metrics = 9153", "metrics: expected"),
        ('metrics = "127.0.0.1:0"', "metrics: expected"),
        ("names = [1]", "names[0]: expected a string, got 1"),
        ("ratio = 0", "ratio: expected a number > 0 and <= 1, got 0"),
        ("ratio = inf", "ratio: expected a number > 0 and <= 1, got inf (not a finite number)"),
        ("user = 5", "user: expected a string, got 5"),
        ("[tuning]\ndepth = 10", "tuning.depth: expected a whole number from 1 to 9, got 10"),
        ("[[zones]]\nservers = []", "zones[0].name: missing; this key has no default"),
        ('[[zones]]\nname = "x."\nservers = []', "zones[0]: a zone needs at least one server"),
        ('[[zones]]\nname = "x."\nservers = ["1.2.3.4"]\nport = 5', "zones[0].port: unknown key"),
        ("zones = 5", "zones: expected an array of tables, got 5"),
        ("zones = [5]", "zones[0]: expected a table, got 5"),
        ('networks = ["300.1.1.1"]', "networks[0]: expected an address or network like"),
        ("networks = {}", "networks: expected an array, each item an address or network"),
        ('code = "zz"', 'code: expected hex, got "zz"'),
        ("count = true", "count: expected a whole number >= 0, got true"),
        ("count = 1.5", "count: expected a whole number >= 0, got 1.5"),
    ],
)
def test_generic_errors_name_the_key(text: str, expected: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_future(text, tmp_path)
    message = str(raised.value)
    assert message.startswith("f.toml: "), message
    assert expected in message, message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'cache.max_ttl = "a day"',
            'cache.max_ttl: expected a whole number of seconds from 0 to 2147483647, got "a day"',
        ),
        ("cache.max_ttl = -1", "cache.max_ttl: expected a whole number of seconds"),
        ("[cache]\nmax_tll = 60", "cache.max_tll: unknown key (did you mean cache.max_ttl?)"),
        ("lisen = []", "lisen: unknown key (did you mean listen?); allowed at the top level: "),
        ("[cach]\nmax_ttl = 1", "cach: unknown key (did you mean cache?)"),
        ("cache = 5", "cache: expected a table, got 5"),
        ('listen = "127.0.0.1:53"', "listen: expected a non-empty array"),
        ("listen = []", "listen: expected a non-empty array"),
        (
            'listen = ["127.0.0.1:99999"]',
            'listen[0]: expected "ADDR", "ADDR:PORT" or '
            '"[IPv6]:PORT", got "127.0.0.1:99999" (\'99999\' is not a port number (1-65535))',
        ),
        ('listen = ["[127.0.0.1]:53"]', "brackets are only for IPv6 addresses"),
        ('allow = ["10.0.0.0/33"]', 'allow[0]: expected an address or network like "10.0.0.0/8"'),
        ("allow = [10]", "allow[0]: expected an address or network"),
        ("root_hints = 5", "root_hints: expected a file path, got 5"),
        ("edns_payload = 511", "edns_payload: expected a whole number of bytes from 512 to 65535"),
        ('log_level = "loud"', 'log_level: expected one of "debug", "info", "warning", "error"'),
        ("upstream.timeout = 0", "upstream.timeout: expected a number of seconds > 0, got 0"),
        ("upstream.timeout = nan", "upstream.timeout: expected a number of seconds > 0, got nan"),
        ("upstream.port = 0", "upstream.port: expected a whole number from 1 to 65535, got 0"),
        ("upstream.do_ip6 = 0", "upstream.do_ip6: expected true or false, got 0"),
        ('upstream.do_ip6 = "no"', 'upstream.do_ip6: expected true or false, got "no"'),
        ("limits.max_in_flight = 0", "limits.max_in_flight: expected a whole number >= 1, got 0"),
        ("cache.max_entries = 1e6", "cache.max_entries: expected a whole number of entries >= 1"),
        (
            "[cache]\nmin_ttl = 100\nmax_ttl = 50",
            "cache.min_ttl: must not exceed cache.max_ttl (50), got 100",
        ),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(
    text: str, expected: str, tmp_path: Path
) -> None:
    path = write(tmp_path / "bad.toml", text + "\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: "), message
    assert expected in message, message
    assert "\n" not in message


def test_invalid_toml_gives_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.toml", 'listen = []\nallow = ["10.0.0.0/8"\ncache = {\n')
    with pytest.raises(ConfigError, match=r"bad\.toml: line 3, column \d+: not valid TOML"):
        load_config(path)
    path = write(tmp_path / "end.toml", "[cache]\nmax_ttl =")
    with pytest.raises(ConfigError, match=r"line 2, column 10 \(the end of the file\)"):
        load_config(path)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.toml: no such file"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'# caf\xe9\nlog_level = "info"\n')
    with pytest.raises(ConfigError, match=r"line 1: not UTF-8"):
        load_config(path)


# --- flags over the file ---------------------------------------------------------------------


def test_flags_override_the_file_and_leave_the_rest(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.toml",
        'listen = ["127.0.0.1:5353"]\n[cache]\nmax_entries = 10\nmax_ttl = 60\n',
    )
    config = build(path, {"listen": (("::1", 53),), "cache.max_entries": 99})
    assert config.listen == (("::1", 53),)
    assert config.cache.max_entries == 99
    assert config.cache.max_ttl == 60  # not named by a flag: the file's value stays
    assert build(None, {"upstream.query_loopback": True}).upstream.query_loopback is True


def test_the_defaults_keep_the_rules_about_two_keys_and_a_broken_one_is_named() -> None:
    assert config_problem(Config()) is None
    shared = dataclasses.replace(Config().shared_cache, url="redis://127.0.0.1:6379")
    assert config_problem(dataclasses.replace(Config(), shared_cache=shared)) == (
        "shared_cache.secret: needs 16 or more characters when shared_cache.url is set"
    )


def test_a_cross_check_also_applies_after_the_flags(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "[cache]\nmin_ttl = 100\nmax_ttl = 200\n")
    with pytest.raises(ConfigError, match=r"cache\.min_ttl: must not exceed cache\.max_ttl"):
        build(path, {"cache.max_ttl": 50})


@pytest.mark.parametrize("text", ["127.0.0.1:0", "[::1", "[127.0.0.1]:53", "host:53", "::1]:53"])
def test_listen_flag_and_file_share_one_parser(text: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError) as parsed:
        parse_endpoint(text)
    with pytest.raises(click.BadParameter) as flag:
        listen = next(option for option in serve.params if option.name == "listen")
        listen.type.convert(text, None, None)
    with pytest.raises(ConfigError) as loaded:
        load_config(write(tmp_path / "c.toml", f"listen = [{text!r}]\n".replace("'", '"')))
    assert str(parsed.value) in flag.value.format_message()
    assert str(parsed.value) in str(loaded.value)


# --- the docs cannot rot ---------------------------------------------------------------------


def documented_rows() -> dict[str, list[str]]:
    """Rows of docs/configuration.md's key tables: key -> [type, default, unbound, meaning]."""
    rows: dict[str, list[str]] = {}
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        found = re.match(r"\| `([a-z_][a-z0-9_.]*)` \|(.*)\|\s*$", line)
        if found:
            cells = [cell.strip() for cell in found.group(2).split("|")]
            assert len(cells) == 4, f"a key row needs 5 columns: {line}"
            assert found.group(1) not in rows, f"{found.group(1)} is documented twice"
            rows[found.group(1)] = cells
    return rows


def is_table(key: configfile.Key) -> bool:
    return configfile._is_table(key.hint)


def doc_problems(accepted: list[configfile.Key]) -> list[str]:
    """Every way docs/configuration.md disagrees with the keys in `accepted`."""
    rows = documented_rows()
    text = DOCS.read_text(encoding="utf-8")
    problems: list[str] = []
    for key in accepted:
        if is_table(key):
            if f"`[{key.name}]`" not in text:
                problems.append(f"table [{key.name}] has no section in {DOCS.name}")
            continue
        if key.name not in rows:
            problems.append(
                f"{key.name} is missing: add a row `| `{key.name}` | type | default | Unbound "
                f"option | meaning |` to {DOCS.name}"
            )
            continue
        _, default_cell, unbound_cell, _ = rows[key.name]
        problems += check_default(key, default_cell)
        for option in str(key.metadata.get("unbound", "")).split(","):
            if option.strip() and f"`{option.strip()}`" not in unbound_cell:
                problems.append(f"{key.name}: the Unbound column should name `{option.strip()}`")
    names = {key.name for key in accepted}
    problems += [f"{DOCS.name} documents {row}, which is not a key" for row in rows.keys() - names]
    return problems


def test_every_key_is_documented_with_its_true_default() -> None:
    problems = doc_problems(keys())
    assert not problems, "\n".join(problems)


def test_the_docs_check_catches_an_undocumented_field() -> None:
    """The docs test is only worth something if a field added without a row fails it."""
    problems = doc_problems(keys(Future))
    assert any(problem.startswith("count is missing") for problem in problems), problems
    assert any("table [tuning] has no section" in problem for problem in problems), problems


def check_default(key: configfile.Key, cell: str) -> list[str]:
    """The doc's default must be the real one, written as TOML (prose only for install paths)."""
    if key.required:
        return [] if cell == "required" else [f"{key.name}: default should read `required`"]
    if key.default is None:
        return [] if cell == "unset" else [f"{key.name}: default should read `unset`"]
    if isinstance(key.default, Path):
        return []  # where the package is installed; the docs describe it in words
    found = re.fullmatch(r"`(.*)`", cell)
    if not found:
        return [f"{key.name}: default {cell!r} should be a TOML value in backticks"]
    try:
        documented = configfile.convert(
            key.name, key.hint, tomllib.loads(f"v = {found.group(1)}")["v"], key.metadata
        )
    except (tomllib.TOMLDecodeError, ConfigError) as error:
        return [f"{key.name}: documented default {cell} does not load: {error}"]
    if documented != key.default:
        return [f"{key.name}: documented default {cell}, real default {key.default!r}"]
    return []


def documented_flags() -> tuple[dict[str, str], set[str]]:
    """The flags table of docs/configuration.md (flag -> key) and the flags it says have no key."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Command-line flags and their keys", 1)[1].split("\n## ", 1)[0]
    with_key = {
        found.group(1): found.group(2)
        for found in re.finditer(r"^\| `(--[a-z0-9-]+)[^|]*\| `([a-z0-9_.]+)`", section, re.M)
    }
    no_key_text = section.split("Flags with no key", 1)[1]
    return with_key, set(re.findall(r"`(--[a-z0-9-]+)`", no_key_text))


def all_flags(command: click.Command) -> set[str]:
    """Every long option of `command` and of its subcommands, recursively."""
    flags = {
        name
        for param in command.params
        if isinstance(param, click.Option)
        for name in (*param.opts, *param.secondary_opts)
        if name.startswith("--")
    }
    flags.add("--help")
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            flags |= all_flags(sub)
    return flags


def test_every_flag_has_a_documented_key_or_is_declared_keyless() -> None:
    """Every setting-like flag must be a key too; the docs table says which, and is checked."""
    from resolver.cli import cli

    with_key, without_key = documented_flags()
    accepted = {key.name for key in keys()}
    problems = [
        f"{flag} is in neither the flags table of {DOCS.name} (with the key it sets) nor its "
        f"'Flags with no key' line"
        for flag in sorted(all_flags(cli))
        if flag not in with_key and flag not in without_key
    ]
    problems += [
        f"{DOCS.name}: {flag} is documented as setting {key}, which is not a key"
        for flag, key in with_key.items()
        if key not in accepted
    ]
    problems += [
        f"{DOCS.name} lists {flag}, which no command has"
        for flag in (with_key.keys() | without_key) - all_flags(cli)
    ]
    assert not problems, "\n".join(problems)


# --- the real process ------------------------------------------------------------------------


def assert_one_error_line(result: Finished, *needles: str) -> str:
    assert result.returncode != 0, result.describe()
    assert "Traceback" not in result.stderr, result.describe()
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.describe()
    line = lines[0]
    assert line.startswith("resolver: error: "), result.describe()
    for needle in needles:
        assert needle in line, result.describe()
    return line


@pytest.mark.parametrize(
    ("name", "text", "needles"),
    [
        ("unknown top-level key", "listen_on = []\n", ["listen_on: unknown key", "listen"]),
        ("unknown key in a table", "[upstream]\ntimout = 2\n", ["upstream.timout: unknown key"]),
        ("wrong type", 'cache.max_ttl = "a day"\n', ["cache.max_ttl: expected", '"a day"']),
        ("out of range", "[upstream]\nport = 70000\n", ["upstream.port: expected", "70000"]),
        ("bad listen", 'listen = ["127.0.0.1:53", "localhost:53"]\n', ["listen[1]: expected"]),
        ("bad CIDR", 'allow = ["10.0.0.0/8", "10.0.0.0/40"]\n', ["allow[1]: expected"]),
        ("invalid TOML", "[cache]\nmax_ttl = = 5\n", ["line 2, column 11: not valid TOML"]),
    ],
)
@pytest.mark.parametrize("command", ["serve", "query"])
def test_config_errors_through_the_cli(
    command: str, name: str, text: str, needles: list[str], tmp_path: Path
) -> None:
    path = write(tmp_path / "bad.toml", text)
    args = ["serve"] if command == "serve" else ["query", "www.example.test"]
    result = run_resolver(*args, "--config", str(path), "--query-loopback")
    assert_one_error_line(result, f"{path}: ", *needles)


def test_missing_config_file_through_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    result = run_resolver("serve", "--config", str(path))
    assert_one_error_line(result, f"{path}: no such file")


# --- end to end against the test internet ----------------------------------------------------


@pytest.fixture
def live_internet(internet: TestInternet) -> Iterator[TestInternet]:
    with internet.in_thread():
        yield internet


@contextmanager
def serving(*args: str) -> Iterator[Daemon]:
    """`resolver serve ARGS` with nothing added (running_daemon adds --root-hints and --listen,
    which would hide whether the file's own settings took effect); always stopped."""
    daemon = _start(resolver_command("serve", *args))
    try:
        yield daemon
    except BaseException:
        daemon.kill()
        raise
    finished = daemon.stop(signal.SIGTERM)
    assert finished.returncode == 0, finished.describe()
    assert STOPPED_MARKER in finished.stdout, finished.describe()


def ask(port: int, name: str = "www.example.test") -> dns.message.Message:
    query = dns.message.make_query(name, dns.rdatatype.A)
    return dns.query.udp(query, "127.0.0.1", port=port, timeout=10)


def good_config(tmp_path: Path, internet: TestInternet, port: int, extra: str = "") -> Path:
    # A relative root_hints path: resolved from the file's directory, not the daemon's cwd.
    internet.write_hints(tmp_path / "test.hints")
    return write(
        tmp_path / "good.toml",
        f"""
        listen = ["127.0.0.1:{port}"]
        root_hints = "test.hints"
        log_level = "warning"
        {extra}

        [cache]
        max_entries = 1000
        max_ttl = 60

        [upstream]
        query_loopback = true
        timeout = 2.0

        # The unsigned test internet: no anchor fits its root.
        [dnssec]
        validate = false
        """,
    )


def test_serve_with_only_a_config_file_answers_from_the_test_internet(
    live_internet: TestInternet, tmp_path: Path
) -> None:
    port = free_port()
    path = good_config(tmp_path, live_internet, port)
    with serving("--config", str(path)) as daemon:
        assert f"127.0.0.1:{port}" in daemon.banner
        response = ask(port)
        assert response.rcode() == dns.rcode.NOERROR, response
        (rrset,) = response.answer
        assert [rdata.to_text() for rdata in rrset] == ["192.0.2.1"]
        # The zone says 300; the file's cache.max_ttl says 60, so the file was obeyed.
        assert rrset.ttl <= 60, response
        assert live_internet.total_queries() > 0
    finished = daemon.stop()
    # log_level = "warning" silenced the INFO line about the signal.
    assert "received SIGTERM" not in finished.stderr, finished.describe()


def test_flags_override_the_file_in_a_running_daemon(
    live_internet: TestInternet, tmp_path: Path
) -> None:
    file_port, flag_port = free_port(), free_port()
    while flag_port == file_port:
        flag_port = free_port()
    # The file alone would refuse us (allow) and listen elsewhere.
    path = good_config(tmp_path, live_internet, file_port, extra='allow = ["192.0.2.0/24"]')
    with serving("--config", str(path), "--listen", f"127.0.0.1:{flag_port}") as daemon:
        assert f"127.0.0.1:{flag_port}" in daemon.banner
        assert f":{file_port}" not in daemon.banner
        refused = ask(flag_port)
        assert refused.rcode() == dns.rcode.REFUSED, refused
    args = ["--config", str(path), "--listen", f"127.0.0.1:{flag_port}", "--allow", "127.0.0.1"]
    with serving(*args) as daemon:
        answered = ask(flag_port)
        assert answered.rcode() == dns.rcode.NOERROR, answered
        assert answered.answer[0].ttl <= 60  # the file's cache.max_ttl still applies
    # --log-level before the command beats the file's log_level = "warning".
    command = resolver_command("--log-level", "info", "serve", *args)
    daemon = _start(command)
    try:
        finished = daemon.stop(signal.SIGTERM)
    finally:
        daemon.kill()
    assert finished.returncode == 0, finished.describe()
    assert "received SIGTERM" in finished.stderr, finished.describe()


def test_query_reads_the_config_file(live_internet: TestInternet, tmp_path: Path) -> None:
    path = good_config(tmp_path, live_internet, free_port())
    result = run_resolver("query", "--config", str(path), "www.example.test")
    assert result.returncode == 0, result.describe()
    # root_hints and query_loopback came from the file; the TTL shows its cache.max_ttl.
    assert result.stdout.splitlines()[-1] == "www.example.test. 60 IN A 192.0.2.1", result.stdout


def test_the_example_file_works_for_a_real_query(
    live_internet: TestInternet, tmp_path: Path
) -> None:
    """The example through the real program; the flags point it at the test internet only."""
    hints = live_internet.write_hints(tmp_path / "test.hints")
    flags = ["--root-hints", str(hints), "--query-loopback", "--no-validate"]
    result = run_resolver("query", "--config", str(EXAMPLE), *flags, "www.example.test")
    assert result.returncode == 0, result.describe()
    assert result.stdout.splitlines()[-1] == "www.example.test. 300 IN A 192.0.2.1"
    result = run_resolver("query", "--config", str(EXAMPLE), *flags, "router.lan")
    assert result.returncode == 0, result.describe()
    assert "192.168.1.1" in result.stdout.splitlines()[-1], result.stdout
