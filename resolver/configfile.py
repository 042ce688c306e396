"""The configuration file: TOML read into a `Config`, with errors that name the key.

The loader walks the dataclasses of `resolver/config.py` and knows no setting by name (the rules
about two keys at once are config.py's `config_problem`), so a new field is a key at once, checked
and documented by the same rules (the docs test fails until docs/configuration.md lists it). A
nested dataclass is a table (`[cache]`), a tuple of them an array of tables (`[[forward_zones]]`).
It reads just the types the settings use (see `describe`): another type is a TypeError, so
supporting one is a deliberate line here. Numbers are `>= 0` unless the metadata bounds them (an
operator never means a negative size or timeout), and relative paths start at the file's directory,
whatever the daemon's own.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeVar

from resolver.config import (
    Config,
    ConfigError,
    HttpsEndpoint,
    IPNetwork,
    TlsEndpoint,
    config_problem,
    parse_endpoint,
    parse_network,
    redact_url,
)

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

# A config dataclass: `dataclasses.replace` accepts only dataclass instances.
D = TypeVar("D", bound="DataclassInstance")


#: Types written as a TOML string: their parser, what messages say is expected, and whether the
#: parser's ValueError is worth adding (an endpoint's says which part is wrong).
_TEXT: dict[Any, tuple[Callable[[str], Any], str, bool]] = {
    str: (str, "a string", False),
    Path: (Path, "a file path", False),
    tuple[str, int]: (parse_endpoint, '"ADDR", "ADDR:PORT" or "[IPv6]:PORT"', True),
    IPNetwork: (parse_network, 'an address or network like "10.0.0.0/8"', False),
    TlsEndpoint: (lambda text: parse_endpoint(text, 853), '"ADDR" (port 853), "ADDR:PORT"', True),
    HttpsEndpoint: (lambda text: parse_endpoint(text, 443), '"ADDR" (port 443), "ADDR:PORT"', True),
}


@dataclass(frozen=True)
class Key:
    """A key: dotted name (`forward_zones.name`, no index, as the docs), hint, default, metadata."""

    name: str
    hint: Any
    default: Any
    metadata: Mapping[str, Any]

    @property
    def required(self) -> bool:
        return self.default is dataclasses.MISSING


@cache
def _fields(cls: type) -> dict[str, Key]:
    """The settable fields of `cls` as keys (config.py's annotations are strings: resolved)."""
    hints, found = typing.get_type_hints(cls), {}
    for item in dataclasses.fields(cls):
        factory = item.default_factory
        default = item.default if factory is dataclasses.MISSING else factory()
        if item.init:
            found[item.name] = Key(item.name, hints[item.name], default, item.metadata)
    return found


def keys(cls: type = Config, prefix: str = "") -> list[Key]:
    """Every key the loader accepts for `cls`, tables and arrays of tables included, in order."""
    found: list[Key] = []
    for item in _fields(cls).values():
        found.append(dataclasses.replace(item, name=prefix + item.name))
        inner = item.hint if _is_table(item.hint) else _unwrap(item.hint)[1]
        if _is_table(inner):
            found += keys(inner, f"{prefix}{item.name}.")
    return found


def key(name: str, cls: type = Config) -> Key:
    """The key called `name` (dotted); KeyError if the loader has no such key."""
    return {candidate.name: candidate for candidate in keys(cls)}[name]


def _unwrap(hint: Any) -> tuple[Any, Any, bool]:
    """(`hint` without `| None`, X if it is `tuple[X, ...]` else None, whether None is allowed)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        (inner,) = (arg for arg in args if arg is not type(None))
        return *_unwrap(inner)[:2], True
    return hint, args[0] if typing.get_origin(hint) is tuple and args[1:] == (...,) else None, False


def _is_table(hint: Any) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def describe(hint: Any, metadata: Mapping[str, Any]) -> str:
    """What a key accepts, in words (`a whole number of seconds >= 0`), as its errors say it."""
    if "expects" in metadata:
        return str(metadata["expects"])
    hint, element, optional = _unwrap(hint)
    if hint is bool:
        text = "true or false"
    elif hint in (int, float):
        text = "a whole number" if hint is int else "a number"
        text += f" of {metadata['unit']}" if "unit" in metadata else ""
        text += " " + _bounds(metadata)
    elif typing.get_origin(hint) is Literal:
        text = "one of " + ", ".join(json.dumps(choice) for choice in typing.get_args(hint))
    elif hint in _TEXT:
        text = _TEXT[hint][1]
    elif _is_table(hint):
        text = "a table"
    elif element is not None:
        least = metadata.get("min_items", 0)
        text = {0: "an array", 1: "a non-empty array"}.get(least, f"an array of {least}+ items")
        text += " of tables" if _is_table(element) else f", each item {describe(element, {})}"
    else:
        raise TypeError(f"the config loader cannot read fields of type {hint!r}")
    return text + (" (or leave the key out)" if optional else "")


def _bounds(metadata: Mapping[str, Any]) -> str:
    ge, le, gt = metadata.get("ge", 0), metadata.get("le"), metadata.get("gt")
    if gt is not None:
        return f"> {gt}" + ("" if le is None else f" and <= {le}")
    return f">= {ge}" if le is None else f"from {ge} to {le}"


def _show(value: object) -> str:
    """A value as it was written in TOML, shortened, for "got ..." in messages."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, float):
        text = repr(value)  # nan and inf as TOML writes them
    elif isinstance(value, str):  # a URL's password (redis://user:pw@host) is not shown
        text = json.dumps(redact_url(value), ensure_ascii=False)
    elif isinstance(value, bool | int | list):
        text = json.dumps(value, ensure_ascii=False, default=str)
    else:
        text = f"{value} (a {type(value).__name__})"  # a TOML date or time
    return text if len(text) <= 60 else text[:57] + "..."


def convert(
    name: str, hint: Any, value: object, metadata: Mapping[str, Any], base_dir: Path | None = None
) -> Any:
    """The TOML `value` of key `name` as the Python value its field's `hint` asks for.

    Raises ConfigError naming the key (with array indexes, `listen[1]`) and what is allowed.
    Relative paths are taken from `base_dir` (joined to it, an absolute path stays as it is).
    """
    plain, element, _ = _unwrap(hint)

    def fail(why: str = "") -> NoReturn:
        raise ConfigError(f"{name}: expected {describe(plain, metadata)}, got {_show(value)}{why}")

    if "parse" in metadata or plain in _TEXT:
        parse, _, explain = (metadata["parse"], "", True) if "parse" in metadata else _TEXT[plain]
        if not isinstance(value, str):
            fail()
        try:
            parsed = parse(value)
        except ValueError as error:
            fail(f" ({error})" if explain else "")
        return (base_dir or Path()) / parsed.expanduser() if isinstance(parsed, Path) else parsed
    if plain is bool or typing.get_origin(plain) is Literal:
        if not isinstance(value, bool) if plain is bool else value not in typing.get_args(plain):
            fail()
        return value
    if plain in (int, float):
        # TOML booleans are not numbers, whatever Python's bool subclassing says.
        if isinstance(value, bool) or not isinstance(value, int if plain is int else int | float):
            fail()
        number = plain(value)
        ge, le, gt = metadata.get("ge", 0), metadata.get("le"), metadata.get("gt")
        if not math.isfinite(number):
            fail(" (not a finite number)")
        if (number <= gt if gt is not None else number < ge) or (le is not None and number > le):
            fail()
        return number
    if _is_table(plain):
        if not isinstance(value, dict):
            fail()
        return _build(plain, value, None, name, base_dir)
    if element is not None:
        if not isinstance(value, list) or len(value) < metadata.get("min_items", 0):
            fail()
        return tuple(convert(f"{name}[{i}]", element, v, {}, base_dir) for i, v in enumerate(value))
    raise TypeError(f"{name}: the config loader cannot read fields of type {hint!r}")


def _build(
    cls: type[D], data: Mapping[str, object], base: D | None, prefix: str, base_dir: Path | None
) -> D:
    """A `cls` from the table `data`: `base` (or the defaults) with the table's keys replaced."""
    fields = _fields(cls)
    table = prefix + "." if prefix else ""
    changes: dict[str, object] = {}
    for sub, value in data.items():
        if sub not in fields:
            raise _unknown(table + sub, table, fields)
        hint, metadata = fields[sub].hint, fields[sub].metadata
        if _is_table(hint) and isinstance(value, dict) and base is not None:
            # A table in the file changes only the keys it names; the rest keep their values.
            changes[sub] = _build(hint, value, getattr(base, sub), table + sub, base_dir)
        else:
            changes[sub] = convert(table + sub, hint, value, metadata, base_dir)
    missing = [n for n, item in fields.items() if item.required and n not in changes]
    if base is None and missing:
        raise ConfigError(f"{table}{missing[0]}: missing; this key has no default")
    try:
        return dataclasses.replace(base, **changes) if base is not None else cls(**changes)
    except (ValueError, TypeError) as error:
        # A check in __post_init__ that starts with its field (`servers[1]: ...`) gets the full
        # dotted key (`forward_zones[0].servers[1]: ...`), like the loader's own errors.
        found = re.match(r"[a-z_][a-z0-9_]*(\[\d+\])*: ", str(error))
        where = table if found or not prefix else f"{prefix}: "
        raise ConfigError(f"{where}{error}") from None


def _unknown(name: str, table: str, fields: Mapping[str, Key]) -> ConfigError:
    """An unknown key, with the nearest real key and the list of what the table does accept."""
    tables = [sub for sub, item in fields.items() if _is_table(item.hint)]
    allowed = [sub for sub in fields if sub not in tables]
    close = difflib.get_close_matches(name.rsplit(".", 1)[-1], allowed + tables, n=1)
    guess = f" (did you mean {table}{close[0]}?)" if close else ""
    where = f"in [{table.rstrip('.')}]" if table else "at the top level"
    listing = ", ".join(allowed)
    if tables:
        listing += "; tables " + ", ".join(f"[{table}{t}]" for t in tables)
    return ConfigError(f"{name}: unknown key{guess}; allowed {where}: {listing}")


def _checked(config: Config, where: str, after: str = "") -> Config:
    """`config` if it keeps the rules about two keys at once; else their error, placed."""
    if (problem := config_problem(config)) is not None:
        raise ConfigError(f"{where}{problem}{after}")
    return config


def from_mapping(
    data: Mapping[str, object], base: D, *, origin: str = "", base_dir: Path | None = None
) -> D:
    """`base` (a config dataclass) with the settings of a parsed TOML table; `origin` prefixes
    every error message. For tests and for other sources of settings."""
    try:
        return _build(type(base), data, base, "", base_dir)
    except ConfigError as error:
        raise ConfigError(f"{origin}: {error}" if origin else str(error)) from None


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed file, or a ConfigError with the file name (and line and column if it is bad)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a configuration file") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ConfigError(f"{path}: line {line}: not UTF-8 text, which TOML requires") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: {_toml_position(error, text)}") from None


def _toml_position(error: tomllib.TOMLDecodeError, text: str) -> str:
    """`line 3, column 9: not valid TOML (Invalid value)` from tomllib's message.

    tomllib before Python 3.14 keeps the position only inside the message text, and says "end of
    document" rather than where that is; an editor needs a line and column either way.
    """
    where = r"(.*) \(at (?:line (\d+), column (\d+)|end of document)\)"
    found = re.fullmatch(where, str(error), re.DOTALL)
    if found is None:
        return f"not valid TOML ({error})"
    what, line, column = found.groups()
    if line is None:
        lines = text.split("\n")
        line, column = str(len(lines)), f"{len(lines[-1]) + 1} (the end of the file)"
    return f"line {line}, column {column}: not valid TOML ({what})"


def load_config(path: Path, base: Config | None = None) -> Config:
    """The settings of the TOML file at `path`, on top of `base` (the defaults if None)."""
    config = from_mapping(read_toml(path), base or Config(), origin=str(path), base_dir=path.parent)
    return _checked(config, f"{path}: ")


def override(config: D, changes: Mapping[str, object]) -> D:
    """`config` with the already typed values of dotted keys replaced (the command line's flags).

    The values come from click, which parsed and checked them; this only places them.
    """
    for dotted, value in changes.items():
        head, _, rest = dotted.partition(".")
        inner = override(getattr(config, head), {rest: value}) if rest else value
        config = dataclasses.replace(config, **{head: inner})
    return config


def build(path: Path | None, changes: Mapping[str, object]) -> Config:
    """The defaults, then the file (if any), then the command line's flags; checked as a whole.

    Flags win over the file because they are the more specific, more recent intent: an operator
    tries `--listen 127.0.0.1:5353` without editing the file the service normally uses.
    """
    config = override(load_config(path) if path is not None else Config(), changes)
    return _checked(config, "" if path is None else f"{path}: ", " (after the command-line flags)")
