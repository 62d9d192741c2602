"""Load a TOML file into a pydantic model, turning every problem into one line."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ValidationError

from sparwatt.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


SECRET_ERROR = "secret_in_config"  # the error type of a validator that found a secret


def problems_of(exc: ValidationError, source: str) -> list[str]:
    """One line per validation error: file, key path, what is wrong, the bad value."""
    lines = []
    for err in exc.errors(include_url=False):
        msg = err["msg"].removeprefix("Value error, ")
        where = _key_path(err["loc"])
        if err["type"] == "value_error" and "\n" in msg:
            # a cross-field check reports several problems at once, one per line
            lines += [f"{source}: {where}: {part}" for part in msg.splitlines()]
            continue
        if err["type"] == "string_pattern_mismatch":
            msg = "must be an id: lowercase letters, digits, '-' or '_', at most 63 characters"
        line = f"{source}: {where}: {msg}"
        # a secret found where it must not be is named, never shown
        shown = err["type"] not in ("missing", SECRET_ERROR)
        if shown and not isinstance(err.get("input"), dict | list):
            line += f" (got {_shown(err.get('input'))})"
        lines.append(line)
    return lines


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


TimeZoneName = Annotated[str, AfterValidator(_time_zone)]  # an IANA name, checked on load


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """TOML that did not come from a file (a pushed config), failing as read_toml does."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{source}: not valid TOML: {exc}"]) from None


def validate(model: type[M], data: dict[str, Any], source: str, **context: Any) -> M:
    try:
        return model.model_validate(data, context={"source": source, **context})
    except ValidationError as exc:
        raise ConfigError(problems_of(exc, source)) from None


def pop_moved(data: dict[str, Any], moved: Mapping[str, str]) -> list[tuple[str, str]]:
    """Take keys that now live in another file out of `data`: (key path, where it went).

    `moved` maps a dotted key path to a hint; `*` stands for any one table name and the
    names it stood for fill the hint's `{0}`, `{1}`. A table left empty is taken out too,
    so the rest validates as usual and every other mistake is still reported.
    """
    found: list[tuple[str, str]] = []
    for pattern, hint in moved.items():
        for where, names, value in _take(data, pattern.split("."), []):
            found.append((where, f"{hint.format(*names)} (got {_shown(value)})"))
    return found


def _take(
    table: dict[str, Any], parts: list[str], names: list[str], prefix: str = ""
) -> Iterator[tuple[str, list[str], Any]]:
    head, rest = parts[0], parts[1:]
    for name in list(table) if head == "*" else [head]:
        if name not in table:
            continue
        where = f"{prefix}.{name}" if prefix else name
        caught = [*names, name] if head == "*" else names
        if not rest:
            yield where, caught, table.pop(name)
        elif isinstance(table[name], dict):
            yield from _take(table[name], rest, caught, where)
            if not table[name]:
                del table[name]


def load(
    model: type[M], path: Path, *, moved: Mapping[str, str] | None = None, **context: Any
) -> M:
    """Read and validate `path`; a key listed in `moved` gets one line saying where it went."""
    data = read_toml(path)
    problems = [f"{path}: {where}: {hint}" for where, hint in pop_moved(data, moved or {})]
    try:
        config = validate(model, data, str(path), base_dir=path.parent, **context)
    except ConfigError as exc:
        raise ConfigError(problems + exc.problems) from None
    if problems:
        raise ConfigError(problems)
    return config


def read_secret(path: Path | None, env_name: str, environ: dict[str, str]) -> str | None:
    """A secret from its own file, else the environment; never from the main config."""
    if path is not None:
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise ConfigError([f"{path}: cannot read secret: {exc.strerror}"]) from None
    return environ.get(env_name)
