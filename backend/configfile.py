"""`lobby serve --config lobby.toml`: what doesn't fit on a command line, in TOML (stdlib tomllib).

Every flag of `lobby serve` can be set under its own name (`irc-port = 6667`), plus two tables:

    [operators]                 # server operators: name = hash from `lobby hash-password`
    teacher = "scrypt$16384$8$1$..."

    [rooms."#lobby"]            # a room's topic and modes until an operator changes them
    topic = "Welcome to class"
    modes = "+nt"

Flags on the command line override the file. A bad file is one line naming the key and its
line, and `lobby serve` exits 2. Part of the wiring (with cli.py), not of any layer.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .core.passwords import is_hash
from .core.room import FLAG_MODES
from .irc import is_valid_channel

# What a flag's value may be: its converter (int, float, str) and, for choices, the allowed ones.
Converter = Callable[[Any], Any]


class ConfigError(Exception):
    """A configuration file that can't be used; the message names the file, line and key."""


@dataclass
class ConfigFile:
    """What a file sets: flag values by argparse dest, operators, and rooms' initial settings."""

    values: dict[str, Any] = field(default_factory=dict)
    operators: dict[str, str] = field(default_factory=dict)
    rooms: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Flag:
    """One `lobby serve` flag as the file may set it."""

    dest: str
    convert: Converter
    choices: tuple[str, ...] | None = None


def load(path: str, flags: dict[str, Flag]) -> ConfigFile:
    """Read and check a configuration file; ConfigError with a one-line reason if it is wrong."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read it: {err.strerror or err}") from err
    text = raw.decode("utf-8", errors="replace")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err
    out = ConfigFile()
    for key, value in data.items():
        where = f"{path}:{_line_of(text, key)}"
        if key == "operators":
            out.operators = _operators(value, text, path)
        elif key == "rooms":
            out.rooms = _rooms(value, where)
        else:
            flag = flags.get(key.replace("_", "-"))
            if flag is None:
                known = ", ".join(sorted(flags))
                raise ConfigError(f"{where}: unknown key {key!r} (known: {known}, operators, rooms)")
            out.values[flag.dest] = _value(flag, key, value, where)
    return out


def _value(flag: Flag, key: str, value: Any, where: str) -> Any:
    if isinstance(value, list) and key.replace("_", "-") == "auto-join":
        value = ",".join(str(v) for v in value)
    if isinstance(value, dict | list):
        raise ConfigError(f"{where}: {key} must be a single value")
    if isinstance(value, bool) and flag.choices == ("on", "off"):
        value = "on" if value else "off"
    try:
        converted = flag.convert(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {key} = {value!r} is not a valid value") from None
    if flag.choices is not None and converted not in flag.choices:
        raise ConfigError(f"{where}: {key} must be one of {', '.join(flag.choices)}")
    return converted


def _operators(value: Any, text: str, path: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigError(f"{path}:{_line_of(text, 'operators')}: operators must be a table of name = hash")
    out: dict[str, str] = {}
    for name, stored in value.items():
        where = f"{path}:{_line_of(text, name)}"
        if not isinstance(stored, str) or not is_hash(stored):
            raise ConfigError(f"{where}: operator {name!r} needs a password hash, never the password itself: "
                              "make one with `lobby hash-password`")
        out[str(name)] = stored
    return out


def _rooms(value: Any, where: str) -> dict[str, dict[str, str]]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: rooms must be a table of rooms")
    out: dict[str, dict[str, str]] = {}
    for name, settings in value.items():
        if not is_valid_channel(name):
            raise ConfigError(f"{where}: rooms: {name!r} is not a room name (# then no spaces or commas)")
        if not isinstance(settings, dict) or set(settings) - {"topic", "modes"}:
            raise ConfigError(f"{where}: rooms.{name} may set topic and modes only")
        modes = str(settings.get("modes", "")).lstrip("+")
        if set(modes) - set(FLAG_MODES):
            raise ConfigError(f"{where}: rooms.{name}: modes are letters of +{FLAG_MODES}")
        out[name] = {k: str(v) for k, v in settings.items()}
    return out


def _line_of(text: str, key: str) -> int:
    """The line where key is set or its table starts (1 if it can't be found)."""
    pattern = re.compile(rf'^\s*(\[\s*)?"?{re.escape(key)}"?\s*(=|\]|\.)', re.MULTILINE)
    match = pattern.search(text)
    return text.count("\n", 0, match.start()) + 1 if match else 1


def render(values: dict[str, Any], flags: dict[str, Flag], file: ConfigFile) -> str:
    """The configuration in effect, as TOML (`lobby serve --print-config`); secrets are left out."""
    lines = ["# The configuration in effect (flags, then the file, then defaults)."]
    for name, flag in sorted(flags.items()):
        value = values.get(flag.dest)
        if name == "password":
            lines.append(f"# {name} = (set)" if value else f"# {name} = (none)")
        elif value is None:
            lines.append(f"# {name} = (none)")
        else:
            lines.append(f"{name} = {_toml(value)}")
    if file.operators:
        lines += ["", "[operators]", *(f"{_toml(name)} = {_toml(h)}" for name, h in sorted(file.operators.items()))]
    for room, settings in sorted(file.rooms.items()):
        lines += ["", f"[rooms.{_toml(room)}]", *(f"{k} = {_toml(v)}" for k, v in sorted(settings.items()))]
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
