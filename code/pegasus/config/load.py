"""Loading, overriding, validating and saving HOCON configs.

A config file may ``include "base.conf"`` (paths relative to the including file) and then
override keys. Command-line overrides are ``section.key=value`` with HOCON values
(``a.b=3``, ``a.c=[1,2]``, ``a.d=null``, ``a.e=some/path``), applied before ``${...}``
substitutions resolve. The result is checked against the declared settings
(:mod:`pegasus.config.sections`): types, bounds, choices, paths that must exist, and the
checks of each section. Every problem is reported in one :class:`ConfigError`, each line
naming where the value came from, e.g. ``confs/my.conf: train.epochs = 0: must be ≥ 1`` or
``command line: train.epocs=3: unknown key (did you mean 'train.epochs'?)``.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Iterable

from pyhocon import ConfigFactory, ConfigTree, HOCONConverter
from pyhocon.config_parser import ConfigParser
from pyhocon.exceptions import ConfigException

from ..utils import atomic_path
from .declare import Section, build, check_value
from .sections import schema, sections

__all__ = ["Config", "ConfigError", "load_config", "parse_overrides", "save_config", "MAX_LISTED"]

MAX_LISTED = 10
"""Missing keys listed one by one before the rest are counted."""

_INCLUDE = re.compile(r'^[ \t]*include[ \t]+(?:required\([ \t]*)?(?:file\([ \t]*)?"([^"]+)"', re.MULTILINE)


class ConfigError(ValueError):
    """A config could not be read or does not match the declarations; the message lists every problem."""


class Config(Mapping):
    """A validated config: ``cfg.model`` is the typed, frozen :class:`ModelSettings`,
    ``cfg["model.points.init_count"]`` a value; ``source`` names the file it came from."""

    def __init__(self, data: Mapping[str, Any], source: str = "<config>"):
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "_sections", {name: build(cls, data[name]) for name, cls in sections().items()})

    @classmethod
    def from_data(cls, data: Mapping[str, Any], source: str = "<config>") -> "Config":
        """Validates plain nested data (e.g. :meth:`to_dict` sent to a worker process)."""
        return _validated(dict(data), _Origins(source))

    def __getitem__(self, key: str) -> Any:
        name, _, rest = key.partition(".")
        if name not in self._sections:
            raise KeyError(f"{self.source}: no config section {name!r}")
        node: Any = self._sections[name]
        for part in rest.split(".") if rest else ():
            node = node[part]
        return node

    def __getattr__(self, name: str) -> Any:
        try:
            return self._sections[name]
        except KeyError:
            raise AttributeError(f"{self.source}: no config section {name!r}") from None

    def __setattr__(self, name, value):
        raise AttributeError("Config is read-only; use load_config(..., overrides=[...]) or with_overrides")

    def __iter__(self):
        return iter(self._sections)

    def __len__(self) -> int:
        return len(self._sections)

    def to_dict(self) -> dict:
        """A deep, mutable copy as nested dicts and lists."""
        return {name: section.to_dict() for name, section in self._sections.items()}

    def to_hocon(self) -> str:
        """The resolved config as HOCON text (loads back to an equal config)."""
        return HOCONConverter.to_hocon(ConfigFactory.from_dict(self.to_dict())) + "\n"

    def with_overrides(self, overrides: Iterable[str]) -> "Config":
        """A new validated config with ``section.key=value`` overrides applied."""
        overrides = list(overrides)
        origins = _Origins(self.source, overrides=parse_overrides(overrides))
        tree = _apply_overrides(ConfigFactory.from_dict(self.to_dict()), origins.overrides)
        return _validated(_plain(tree), origins)


def _plain(tree: ConfigTree) -> dict:
    def thaw(value):
        if isinstance(value, dict):
            return {k: thaw(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [thaw(v) for v in value]
        return value

    return thaw(tree.as_plain_ordered_dict())


def parse_overrides(overrides: Iterable[str]) -> list[tuple[str, Any, str]]:
    """Parses ``section.key=value`` strings into (dotted key, value, the text as given).

    The value is read as HOCON (numbers, booleans, null, lists, objects, quoted strings);
    anything that is not valid HOCON on its own (e.g. a bare path) is taken as a string.
    """
    parsed = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"command line: {item!r}: expected section.key=value")
        try:
            value = ConfigFactory.parse_string(f"v = {raw.strip()}")["v"] if raw.strip() else ""
            if isinstance(value, ConfigTree):
                value = value.as_plain_ordered_dict()
            elif isinstance(value, list):
                value = [v.as_plain_ordered_dict() if isinstance(v, ConfigTree) else v for v in value]
        except Exception:  # pyparsing and pyhocon raise assorted exception types
            value = raw.strip()
        parsed.append((key, value, item))
    return parsed


def _apply_overrides(tree: ConfigTree, overrides: Iterable[tuple[str, Any, str]]) -> ConfigTree:
    """Merges overrides into an *unresolved* tree, then resolves substitutions, so that
    ``synth_db.root=/x`` also moves every key defined as ``${synth_db.root}...``."""
    for key, value, _ in overrides:
        override = ConfigFactory.from_dict({})
        override.put(key, value)
        tree = ConfigTree.merge_configs(tree, override)
    ConfigParser.resolve_substitutions(tree)
    return tree


def _include_chain(path: Path, stack: tuple[Path, ...] = ()) -> list[Path]:
    """The files a config reads, in load order (included files first).

    Raises:
        ConfigError: an include names a missing file (naming the including file), or
            includes form a cycle.
    """
    chain: list[Path] = []
    for match in _INCLUDE.finditer(path.read_text(encoding="utf-8")):
        target = Path(match.group(1))
        target = target if target.is_absolute() else path.parent / target
        if not target.is_file():
            raise ConfigError(f'{path}: include "{match.group(1)}": file not found ({target.resolve()})')
        if target.resolve() in stack:
            raise ConfigError(f'{path}: include "{match.group(1)}" includes itself (cycle)')
        chain += _include_chain(target, stack + (path.resolve(),))
    chain.append(path)
    return chain


def _defined_keys(path: Path) -> set[str]:
    """Dotted keys a file sets itself (its includes left out)."""
    text = _INCLUDE.sub("", path.read_text(encoding="utf-8"))
    try:
        tree = ConfigFactory.parse_string(text, resolve=False)
    except Exception:
        return set()
    keys: set[str] = set()

    def walk(node, prefix):
        for name, value in node.items():
            dotted = f"{prefix}{name}"
            keys.add(dotted)
            if isinstance(value, ConfigTree):
                walk(value, dotted + ".")

    walk(tree, "")
    return keys


@dataclasses.dataclass
class _Origins:
    """Where each key's value came from: the command line, or the last file that sets it."""

    source: str
    files: list[tuple[Path, set[str]]] = dataclasses.field(default_factory=list)
    overrides: list[tuple[str, Any, str]] = dataclasses.field(default_factory=list)

    def override_of(self, key: str) -> str | None:
        for name, _, raw in reversed(self.overrides):
            if key == name or key.startswith(name + "."):
                return raw
        return None

    def file_of(self, key: str) -> str:
        parts = key.split(".")
        prefixes = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
        for path, keys in reversed(self.files):
            if keys & prefixes:
                return str(path)
        return self.source

    def line(self, key: str, value: Any, problem: str) -> str:
        raw = self.override_of(key)
        if raw is not None:
            return f"command line: {raw if len(raw) <= 80 else raw[:77] + '…'}: {problem}"
        shown = "" if value is _ABSENT else f" = {_show(value)}"
        return f"{self.file_of(key)}: {key}{shown}: {problem}"


_ABSENT = object()


def _show(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def load_config(path: str | os.PathLike, overrides: Iterable[str] = ()) -> Config:
    """Reads a HOCON file (with includes), applies overrides and validates it.

    Raises:
        ConfigError: the file or an include is missing or unparsable, an override is
            malformed, or the merged config breaks the declarations (all problems listed,
            each with its origin and key; unknown keys with a did-you-mean).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    chain = _include_chain(path)
    origins = _Origins(str(path), [(p, _defined_keys(p)) for p in chain], parse_overrides(overrides))
    try:
        tree = ConfigFactory.parse_file(str(path), resolve=False)
    except Exception as err:  # pyhocon/pyparsing raise assorted exception types
        raise ConfigError(f"{path}: cannot parse HOCON: {err}") from err
    try:
        tree = _apply_overrides(tree, origins.overrides)
    except ConfigException as err:  # e.g. a substitution that names no key
        raise ConfigError(f"{path}: {err}") from err
    return _validated(_plain(tree), origins)


def _listing(where: str, problems: list[str]) -> str:
    lines = "\n".join(f"  - {p}" for p in problems)
    return f"{len(problems)} problem(s) in {where}:\n{lines}"


def _leaves(data: dict, keys: Mapping, prefix: str = "") -> Iterable[tuple[str, Any]]:
    for name, value in data.items():
        dotted = f"{prefix}{name}"
        if isinstance(value, dict) and value and dotted not in keys:
            yield from _leaves(value, keys, dotted + ".")
        else:
            yield dotted, value


def _key_problems(data: dict, origins: _Origins) -> list[tuple[str, str]]:
    """(dotted key, line naming origin and key) of every problem of single keys."""
    keys = schema()
    present = dict(_leaves(data, keys))
    problems = []
    for key, value in present.items():
        spec = keys.get(key)
        if spec is None:
            close = difflib.get_close_matches(key, keys, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append((key, origins.line(key, _ABSENT, f"unknown key{hint}")))
            continue
        shown = _ABSENT if spec.kind == "entries" else value  # entry problems name the entry
        problems += [(key, origins.line(key, shown, p)) for p in check_value(spec, value)]
    missing = [key for key in keys if key not in present]
    if len(missing) * 2 > len(keys):
        problems.append(("", f"{origins.source}: {len(missing)} of {len(keys)} keys are missing: does the config "
                             'start with include "base.conf" (which sets every key)?'))
    problems += [(key, f"{origins.source}: {key}: missing required key ({keys[key].doc})")
                 for key in missing[:MAX_LISTED]]
    if len(missing) > MAX_LISTED:
        problems.append(("", f"{origins.source}: … and {len(missing) - MAX_LISTED} more missing keys"))
    return problems


def _section_problems(name: str, section: Section) -> list[tuple[str, str]]:
    """(dotted key, problem) of a section's own checks and those of its sub-sections."""
    out = []
    for line in section.problems():
        key, _, problem = line.partition(": ")
        out.append((f"{name}.{key}", problem))
    for field in dataclasses.fields(section):
        value = getattr(section, field.name)
        if isinstance(value, Section):
            out += _section_problems(f"{name}.{field.name}", value)
    return out


def _validated(data: dict, origins: _Origins) -> Config:
    found = _key_problems(data, origins)
    problems = [line for _, line in found]
    for name, cls in sections().items():  # each section's own checks, with the problems of single keys
        try:
            checks = _section_problems(name, build(cls, data[name]))
        except Exception:  # noqa: BLE001 - a missing or mistyped key, already listed above
            continue
        problems += [origins.line(key, _value_at(data, key), problem) for key, problem in checks]
    if problems:
        raise ConfigError(_listing(f"the config ({origins.source})", problems))
    return Config(data, origins.source)


def _value_at(data: dict, key: str) -> Any:
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _ABSENT
        node = node[part]
    return node


def save_config(config: Config, path: str | os.PathLike) -> Path:
    """Writes the resolved config as HOCON atomically (temp file + rename); returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(config.to_hocon())
    return Path(path)
