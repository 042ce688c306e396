"""The configuration file: TOML read into a `Config`, with errors that name the key.

The loader knows no setting by name (except the cross-checks of two keys at once, at the end).
It walks the dataclasses of `resolver/config.py` and converts each TOML value by the field's type
hint, so a field added there is a key of the file at once, checked and documented by the same
rules (`tests/test_config.py` fails until docs/configuration.md lists it). Top-level keys are
`Config`'s own fields; a nested dataclass is a table (`[cache]`), a tuple of dataclasses an array
of tables (`[[forward_zones]]`).

What a type means in the file:
- `int`, `float`: numbers, `>= 0` unless the field's metadata says otherwise (`ge`, `le`, `gt`);
  an operator never means a negative size or timeout, so the default bound catches typos early.
- `bool`, `str`, `Literal[...]`, enums (by value or name): as expected.
- `Path`: a string; relative paths are taken from the file's own directory, so a config file
  means the same thing whatever directory the daemon is started from.
- IP networks and addresses, `dns.name.Name`: their usual text forms.
- `tuple[str, int]`: an endpoint, `"ADDR"`, `"ADDR:PORT"` or `"[IPv6]:PORT"` (what `--listen`
  takes; the same parser serves both, see `parse_endpoint`).
- `tuple[X, ...]`, `list[X]`, `frozenset[X]`: arrays; `dict[str, X]`: a table of any keys.
- `X | None`: leave the key out for None (TOML has no null).
Field metadata may also carry `parse` (a str -> value function raising ValueError) and `expects`
(its description) for a type none of the above covers.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import ipaddress
import json
import math
import re
import tomllib
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeVar

import dns.exception
import dns.name

from resolver.config import Config, ConfigError, IPNetwork, parse_server_address

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T")
# A config dataclass: the loader builds and replaces them with `dataclasses`, whose functions
# accept only dataclass instances.
D = TypeVar("D", bound="DataclassInstance")

_NETWORK_TYPES = frozenset({ipaddress.IPv4Network, ipaddress.IPv6Network})
_ADDRESS_TYPES = frozenset({ipaddress.IPv4Address, ipaddress.IPv6Address})
_ENDPOINT_EXPECTS = '"ADDR", "ADDR:PORT" or "[IPv6]:PORT"'
_NETWORK_EXPECTS = 'an address or network like "10.0.0.0/8"'


class _Invalid(Exception):
    """A value that does not fit its key; turned into a ConfigError once the key is known."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


# --- values shared with the command line -----------------------------------------------------


def parse_endpoint(text: str, default_port: int = 53) -> tuple[str, int]:
    """`ADDR`, `ADDR:PORT` or `[IPv6]:PORT` as (address, port); ValueError says what is wrong.

    Shared by `--listen`, every endpoint key of the file and the forwarders' addresses, so all
    accept exactly the same spellings and reject the same typos.
    """
    address, port = parse_server_address(text)
    return address, default_port if port is None else port


def parse_network(text: str) -> IPNetwork:
    """An address or CIDR network; host bits are allowed (`10.1.2.3/8` means 10.0.0.0/8).

    Non-strict because operators write a host's own address with its prefix length; refusing that
    would be pedantry, and the meaning is not in doubt.
    """
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"{text!r} is not an address or network like 10.0.0.0/8") from None


def _parse_name(text: str) -> dns.name.Name:
    try:
        return dns.name.from_text(text)
    except (dns.exception.DNSException, ValueError) as error:
        raise ValueError(f"{text!r} is not a domain name: {error}") from None


#: Types read from a TOML string by a parser, with the description used in error messages.
PARSERS: dict[type, tuple[Callable[[str], object], str]] = {
    Path: (Path, "a file path"),
    ipaddress.IPv4Address: (ipaddress.IPv4Address, "an IPv4 address"),
    ipaddress.IPv6Address: (ipaddress.IPv6Address, "an IPv6 address"),
    dns.name.Name: (_parse_name, 'a domain name like "example.com."'),
}


# --- the keys --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """One key of the file: its dotted name, type hint, default and field metadata.

    Keys of an array of tables are named without an index (`forward_zones.name`), as the docs do.
    """

    name: str
    hint: Any
    default: Any
    metadata: Mapping[str, Any]

    @property
    def required(self) -> bool:
        return self.default is dataclasses.MISSING


@cache
def _hints(cls: type) -> dict[str, Any]:
    """Resolved type hints (config.py uses postponed annotations, so they are strings)."""
    return typing.get_type_hints(cls)


def _fields(cls: type) -> Iterator[tuple[dataclasses.Field[Any], Any]]:
    """The settable fields of a dataclass with their resolved hints (init=False ones are not)."""
    hints = _hints(cls)
    for item in dataclasses.fields(cls):
        if item.init:
            yield item, hints[item.name]


def _default(item: dataclasses.Field[Any]) -> Any:
    if item.default is not dataclasses.MISSING:
        return item.default
    if item.default_factory is not dataclasses.MISSING:
        return item.default_factory()
    return dataclasses.MISSING


def keys(cls: type = Config, prefix: str = "") -> list[Key]:
    """Every key the loader accepts for `cls`, tables and arrays of tables included, in order."""
    found: list[Key] = []
    for item, hint in _fields(cls):
        name = prefix + item.name
        found.append(Key(name, hint, _default(item), item.metadata))
        inner = _table_class(hint)
        if inner is not None:
            found.extend(keys(inner, name + "."))
    return found


def _table_class(hint: Any) -> type | None:
    """The dataclass behind a table or an array of tables, if `hint` is one."""
    hint = _strip_optional(hint)
    if _is_dataclass_type(hint):
        return hint
    if typing.get_origin(hint) in (tuple, list) and _is_dataclass_type(_element(hint)):
        return _element(hint)
    return None


def key(name: str, cls: type = Config) -> Key:
    """The key called `name` (dotted); KeyError if the loader has no such key."""
    for candidate in keys(cls):
        if candidate.name == name:
            return candidate
    raise KeyError(name)


# --- type helpers ----------------------------------------------------------------------------


def _is_dataclass_type(hint: Any) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def _union_args(hint: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return None


def _strip_optional(hint: Any) -> Any:
    args = _union_args(hint)
    if args is not None and type(None) in args:
        rest = tuple(arg for arg in args if arg is not type(None))
        return rest[0] if len(rest) == 1 else typing.Union[rest]  # noqa: UP007 - built at runtime
    return hint


def _element(hint: Any) -> Any:
    """The element type of `tuple[X, ...]`, `list[X]` or `frozenset[X]`."""
    args = typing.get_args(hint)
    return args[0] if args else Any


def _is_endpoint(hint: Any) -> bool:
    return typing.get_origin(hint) is tuple and typing.get_args(hint) == (str, int)


def _is_homogeneous(hint: Any) -> bool:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is tuple:
        return len(args) == 2 and args[1] is Ellipsis
    return origin in (list, frozenset, set)


# --- describing what a key accepts -----------------------------------------------------------


def _bounds(metadata: Mapping[str, Any]) -> str:
    ge, le, gt = metadata.get("ge"), metadata.get("le"), metadata.get("gt")
    if ge is None and gt is None and "ge" not in metadata:
        ge = 0
    if ge is not None and le is not None:
        return f" from {ge} to {le}"
    parts = []
    if gt is not None:
        parts.append(f"> {gt}")
    elif ge is not None:
        parts.append(f">= {ge}")
    if le is not None:
        parts.append(f"<= {le}")
    return " " + " and ".join(parts) if parts else ""


def describe(hint: Any, metadata: Mapping[str, Any] | None = None) -> str:
    """What a key accepts, in words: `a whole number of seconds >= 0`, `true or false`, ...

    The same words appear in error messages and can be used by docs, so they cannot disagree.
    """
    metadata = metadata or {}
    if "expects" in metadata:
        return str(metadata["expects"])
    unit = metadata.get("unit")
    of_unit = f" of {unit}" if unit else ""
    optional = type(None) in (_union_args(hint) or ())
    hint = _strip_optional(hint)
    union = _union_args(hint)
    text: str
    if hint is bool:
        text = "true or false"
    elif hint is int:
        text = f"a whole number{of_unit}{_bounds(metadata)}"
    elif hint is float:
        text = f"a number{of_unit}{_bounds(metadata)}"
    elif hint is str:
        text = "a string"
    elif typing.get_origin(hint) is Literal:
        text = "one of " + ", ".join(_show(choice) for choice in typing.get_args(hint))
    elif isinstance(hint, type) and issubclass(hint, enum.Enum):
        text = "one of " + ", ".join(_show(_enum_text(member)) for member in hint)
    elif _is_dataclass_type(hint):
        text = "a table"
    elif _is_endpoint(hint):
        text = _ENDPOINT_EXPECTS
    elif hint in PARSERS:
        text = PARSERS[hint][1]
    elif union is not None and set(union) <= _NETWORK_TYPES:
        text = _NETWORK_EXPECTS
    elif union is not None and set(union) <= _ADDRESS_TYPES:
        text = "an IP address"
    elif union is not None:
        text = " or ".join(describe(arg) for arg in union)
    elif _is_homogeneous(hint):
        element = _element(hint)
        least = metadata.get("min_items", 0)
        text = {0: "an array", 1: "a non-empty array"}.get(least, f"an array of {least}+ items")
        if _is_dataclass_type(element):
            text += " of tables"
        else:
            text += f", each item {describe(element)}"
    elif typing.get_origin(hint) is tuple:
        text = "an array of " + ", ".join(describe(arg) for arg in typing.get_args(hint))
    elif typing.get_origin(hint) is dict:
        text = f"a table, each value {describe(typing.get_args(hint)[1])}"
    else:
        text = "any value"
    if optional:
        text += " (or leave the key out)"
    return text


def _enum_text(member: enum.Enum) -> object:
    return member.value if isinstance(member.value, str | int) else member.name


def _show(value: object, limit: int = 60) -> str:
    """A value as it was written in TOML, shortened, for "got ..." in messages."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, list):
        text = "[" + ", ".join(_show(item, limit) for item in value) + "]"
    elif isinstance(value, int | float):
        text = repr(value)
    else:
        text = f"{value} (a {type(value).__name__})"
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- converting TOML values ------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    """Where values come from: paths in the file are relative to the file's directory."""

    base_dir: Path | None


def _fail(
    name: str, hint: Any, metadata: Mapping[str, Any], value: object, why: str = ""
) -> NoReturn:
    detail = f" ({why})" if why else ""
    raise _Invalid(name, f"expected {describe(hint, metadata)}, got {_show(value)}{detail}")


def _check_number(
    name: str, hint: Any, metadata: Mapping[str, Any], number: float, value: object
) -> None:
    """Apply the field's bounds (`>= 0` by default) to `number`; `value` is what the file said."""
    ge = metadata.get("ge", 0 if "gt" not in metadata else None)
    le, gt = metadata.get("le"), metadata.get("gt")
    if (
        (ge is not None and number < ge)
        or (gt is not None and number <= gt)
        or (le is not None and number > le)
    ):
        _fail(name, hint, metadata, value)


def convert(
    name: str,
    hint: Any,
    value: object,
    metadata: Mapping[str, Any] | None = None,
    context: _Context | None = None,
) -> Any:
    """The TOML `value` of key `name` as the Python value its field's `hint` asks for.

    Raises _Invalid naming the key (with array indexes, `listen[1]`) and what is allowed.
    """
    metadata = metadata or {}
    context = context or _Context(None)
    hint = _strip_optional(hint)
    if "parse" in metadata:
        if not isinstance(value, str):
            _fail(name, hint, metadata, value)
        try:
            return metadata["parse"](value)
        except ValueError as error:
            _fail(name, hint, metadata, value, str(error))
    if hint is Any or hint is object:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            _fail(name, hint, metadata, value)
        return value
    if hint is int:
        # TOML booleans are not numbers, whatever Python's bool subclassing says.
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(name, hint, metadata, value)
        _check_number(name, hint, metadata, value, value)
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            _fail(name, hint, metadata, value)
        number = float(value)
        if not math.isfinite(number):
            _fail(name, hint, metadata, value, "not a finite number")
        _check_number(name, hint, metadata, number, value)
        return number
    if hint is str:
        if not isinstance(value, str):
            _fail(name, hint, metadata, value)
        return value
    if typing.get_origin(hint) is Literal:
        if value not in typing.get_args(hint) or isinstance(value, bool):
            _fail(name, hint, metadata, value)
        return value
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _convert_enum(name, hint, value, metadata)
    if _is_dataclass_type(hint):
        if not isinstance(value, dict):
            _fail(name, hint, metadata, value)
        return _build(hint, value, None, name, context)
    if _is_endpoint(hint):
        return _from_text(name, hint, value, metadata, parse_endpoint)
    if hint in PARSERS:
        parsed = _from_text(
            name, hint, value, metadata, PARSERS[hint][0], explain=hint is dns.name.Name
        )
        if isinstance(parsed, Path):
            parsed = parsed.expanduser()
            if context.base_dir is not None and not parsed.is_absolute():
                parsed = context.base_dir / parsed
        return parsed
    union = _union_args(hint)
    if union is not None:
        if set(union) <= _NETWORK_TYPES:
            return _from_text(name, hint, value, metadata, parse_network, explain=False)
        if set(union) <= _ADDRESS_TYPES:
            return _from_text(name, hint, value, metadata, ipaddress.ip_address, explain=False)
        for alternative in union:
            try:
                return convert(name, alternative, value, {}, context)
            except _Invalid:
                continue
        _fail(name, hint, metadata, value)
    if _is_homogeneous(hint):
        return _convert_array(name, hint, value, metadata, context)
    origin = typing.get_origin(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, list) or len(value) != len(args):
            _fail(name, hint, metadata, value)
        return tuple(
            convert(f"{name}[{index}]", arg, item, {}, context)
            for index, (arg, item) in enumerate(zip(args, value, strict=True))
        )
    if origin is dict:
        if not isinstance(value, dict):
            _fail(name, hint, metadata, value)
        element = typing.get_args(hint)[1]
        return {
            str(sub): convert(f"{name}.{sub}", element, item, {}, context)
            for sub, item in value.items()
        }
    raise TypeError(f"{name}: the config loader cannot read fields of type {hint!r}")


def _from_text(
    name: str,
    hint: Any,
    value: object,
    metadata: Mapping[str, Any],
    parse: Callable[[str], T],
    *,
    explain: bool = True,
) -> T:
    """Parse a string value; `explain` adds the parser's reason when it says more than "bad"."""
    if not isinstance(value, str):
        _fail(name, hint, metadata, value)
    try:
        return parse(value)
    except ValueError as error:
        _fail(name, hint, metadata, value, str(error) if explain else "")


def _convert_enum(
    name: str, hint: type[enum.Enum], value: object, metadata: Mapping[str, Any]
) -> enum.Enum:
    for member in hint:
        if value == _enum_text(member) or (
            isinstance(value, str) and value.lower() == member.name.lower()
        ):
            return member
    _fail(name, hint, metadata, value)


def _convert_array(
    name: str, hint: Any, value: object, metadata: Mapping[str, Any], context: _Context
) -> Any:
    if not isinstance(value, list):
        _fail(name, hint, metadata, value)
    items: list[Any] = value
    if len(items) < metadata.get("min_items", 0):
        _fail(name, hint, metadata, value)
    element = _element(hint)
    converted = [
        convert(f"{name}[{i}]", element, item, {}, context) for i, item in enumerate(items)
    ]
    origin = typing.get_origin(hint)
    if origin is list:
        return converted
    if origin in (frozenset, set):
        return frozenset(converted)
    return tuple(converted)


def _unknown(name: str, table: str, allowed: list[str], tables: list[str]) -> _Invalid:
    """An unknown key, with the nearest real key and the list of what the table does accept."""
    short = name.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(short, allowed + tables, n=1)
    guess = f" (did you mean {table}{close[0]}?)" if close else ""
    where = f"in [{table.rstrip('.')}]" if table else "at the top level"
    listing = ", ".join(allowed)
    if tables:
        listing += "; tables " + ", ".join(f"[{table}{t}]" for t in tables)
    return _Invalid(name, f"unknown key{guess}; allowed {where}: {listing}")


def _build(
    cls: type[D], data: Mapping[str, object], base: D | None, prefix: str, context: _Context
) -> D:
    """A `cls` from the table `data`: `base` (or the defaults) with the table's keys replaced."""
    fields = dict((item.name, (item, hint)) for item, hint in _fields(cls))
    table = prefix + "." if prefix else ""
    plain = [n for n, (_, h) in fields.items() if not _is_table(h)]
    tables = [n for n, (_, h) in fields.items() if _is_table(h)]
    changes: dict[str, object] = {}
    for sub, value in data.items():
        name = table + sub
        if sub not in fields:
            raise _unknown(name, table, plain, tables)
        item, hint = fields[sub]
        if _is_table(hint) and isinstance(value, dict) and base is not None:
            # A table in the file changes only the keys it names; the rest keep their values.
            current = getattr(base, sub)
            if current is not None:
                changes[sub] = _build(type(current), value, current, name, context)
                continue
        changes[sub] = convert(name, hint, value, item.metadata, context)
    if base is not None:
        return _construct(prefix, lambda: dataclasses.replace(base, **changes))
    missing = [n for n, (item, _) in fields.items() if _default(item) is dataclasses.MISSING]
    missing = [n for n in missing if n not in changes]
    if missing:
        raise _Invalid(f"{table}{missing[0]}", "missing; this key has no default")
    return _construct(prefix, lambda: cls(**changes))


def _is_table(hint: Any) -> bool:
    return _is_dataclass_type(_strip_optional(hint))


def _construct(prefix: str, make: Callable[[], T]) -> T:
    """Build the dataclass; a check in its __post_init__ becomes an error naming the table.

    A check that starts its message with the field it is about (`servers[1]: ...`) gets the
    full dotted key (`forward_zones[0].servers[1]: ...`), like the loader's own errors.
    """
    try:
        return make()
    except (ValueError, TypeError) as error:
        message = str(error)
        found = re.match(r"([a-z_][a-z0-9_]*(?:\[\d+\])*): (.*)", message, re.DOTALL)
        if found and prefix:
            raise _Invalid(f"{prefix}.{found.group(1)}", found.group(2)) from None
        raise _Invalid(prefix or "(top level)", message) from None


# --- cross-checks ----------------------------------------------------------------------------


def _cross_checks(config: Config) -> Iterator[_Invalid]:
    """Rules about two keys at once, which no single key's type can express."""
    cache_config = config.cache
    if cache_config.min_ttl > cache_config.max_ttl:
        yield _Invalid(
            "cache.min_ttl",
            f"must not exceed cache.max_ttl ({cache_config.max_ttl}), got {cache_config.min_ttl}",
        )


# --- entry points ----------------------------------------------------------------------------


def from_mapping(
    data: Mapping[str, object], base: D, *, origin: str = "", base_dir: Path | None = None
) -> D:
    """`base` (any config dataclass instance) with the settings of an already parsed TOML table.

    Exposed for tests and for other sources of settings; `origin` prefixes every error message.
    """
    try:
        result = _build(type(base), data, base, "", _Context(base_dir))
    except _Invalid as error:
        raise ConfigError(f"{origin}: {error}" if origin else str(error)) from None
    return result


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
    message = str(error)
    found = re.fullmatch(r"(.*) \(at line (\d+), column (\d+)\)", message, re.DOTALL)
    if found:
        what, line, column = found.groups()
        return f"line {line}, column {column}: not valid TOML ({what})"
    found = re.fullmatch(r"(.*) \(at end of document\)", message, re.DOTALL)
    if found:
        lines = text.split("\n")
        end = f"line {len(lines)}, column {len(lines[-1]) + 1} (the end of the file)"
        return f"{end}: not valid TOML ({found.group(1)})"
    return f"not valid TOML ({message})"


def load_config(path: Path, base: Config | None = None) -> Config:
    """The settings of the TOML file at `path`, on top of `base` (the defaults if None)."""
    data = read_toml(path)
    config = from_mapping(data, base or Config(), origin=str(path), base_dir=path.parent)
    for problem in _cross_checks(config):
        raise ConfigError(f"{path}: {problem}")
    return config


def override(config: D, changes: Mapping[str, object]) -> D:
    """`config` with the already typed values of dotted keys replaced (the command line's flags).

    The values come from click, which parsed and checked them; this only places them.
    """
    for dotted, value in changes.items():
        config = _replace_path(config, dotted.split("."), value)
    return config


def _replace_path(obj: D, path: list[str], value: object) -> D:
    head, *rest = path
    if not rest:
        return dataclasses.replace(obj, **{head: value})
    return dataclasses.replace(obj, **{head: _replace_path(getattr(obj, head), rest, value)})


def build(path: Path | None, changes: Mapping[str, object]) -> Config:
    """The defaults, then the file (if any), then the command line's flags; checked as a whole.

    Flags win over the file because they are the more specific, more recent intent: an operator
    tries `--listen 127.0.0.1:5353` without editing the file the service normally uses.
    """
    config = load_config(path) if path is not None else Config()
    config = override(config, changes)
    for problem in _cross_checks(config):
        where = f"{path}: " if path is not None else ""
        raise ConfigError(f"{where}{problem} (after the command-line flags)")
    return config


def to_toml(value: object) -> str:
    """A setting's value in TOML syntax, as the docs and the example file write defaults."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, enum.Enum):
        return to_toml(_enum_text(value))
    if isinstance(value, str | Path | dns.name.Name):
        return json.dumps(str(value))
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return json.dumps(str(value))
    if (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
    ):
        address, port = value
        return json.dumps(f"[{address}]:{port}" if ":" in address else f"{address}:{port}")
    if isinstance(value, tuple | list | frozenset):
        return "[" + ", ".join(to_toml(item) for item in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")
