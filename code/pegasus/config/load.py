"""Loading, overriding, validating and saving HOCON configs.

A config file may ``include "base.conf"`` (paths relative to the including file) and then
override keys. Command-line overrides are ``section.key=value`` with HOCON values
(``a.b=3``, ``a.c=[1,2]``, ``a.d=null``, ``a.e=some/path``). The merged result is checked
against :data:`pegasus.config.schema.SCHEMA`; every problem (unknown key, wrong type, missing
key, bad choice) is reported together in one :class:`ConfigError`.
"""
from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from pyhocon import ConfigFactory, ConfigTree, HOCONConverter
from pyhocon.config_parser import ConfigParser
from pyhocon.exceptions import ConfigException

from ..utils import atomic_path
from .schema import SCHEMA, Key

__all__ = ["Config", "ConfigError", "load_config", "parse_overrides", "save_config"]


class ConfigError(ValueError):
    """A config could not be read or does not match the schema; the message lists every problem."""


def raise_for_problems(source, section: str, problems: list[str]) -> None:
    """Raises one ConfigError listing ``problems`` (``"key: what is wrong"``) of ``section``.

    For checks beyond the schema (ranges, relations between keys) done by settings classes.
    """
    if problems:
        listing = "\n".join(f"  - {section}.{p}" for p in problems)
        raise ConfigError(f"{source}: {len(problems)} problem(s) in {section}:\n{listing}")


class Config(Mapping):
    """A frozen, validated config: ``cfg["head_model.scale"]`` or ``cfg.head_model.scale``.

    Sections are returned as ``Config`` views; leaf values are plain Python values (lists are
    returned as tuples so the config cannot be mutated).
    """

    def __init__(self, data: Mapping[str, Any], source: str = "<config>"):
        object.__setattr__(self, "_data", dict(data))
        object.__setattr__(self, "source", source)

    def __getitem__(self, key: str) -> Any:
        node: Any = self._data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(f"{self.source}: no config key '{key}'")
            node = node[part]
        return Config(node, self.source) if isinstance(node, dict) else _freeze(node)

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as err:
            raise AttributeError(str(err)) from None

    def __setattr__(self, name, value):
        raise AttributeError("Config is read-only; use load_config(..., overrides=[...])")

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def to_dict(self) -> dict:
        """A deep, mutable copy as nested dicts and lists."""
        return _thaw(self._data)

    def to_hocon(self) -> str:
        """The resolved config as HOCON text (loads back to an equal config)."""
        return HOCONConverter.to_hocon(ConfigFactory.from_dict(self.to_dict())) + "\n"

    def with_overrides(self, overrides: Iterable[str]) -> "Config":
        """A new validated config with ``section.key=value`` overrides applied."""
        tree = ConfigFactory.from_dict(self.to_dict())
        tree = _apply_overrides(tree, overrides)
        return _validated(tree, self.source)


def _freeze(value):
    return tuple(_freeze(v) for v in value) if isinstance(value, list) else value


def _thaw(value):
    if isinstance(value, dict):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_thaw(v) for v in value]
    return value


def parse_overrides(overrides: Iterable[str]) -> list[tuple[str, Any]]:
    """Parses ``section.key=value`` strings into (dotted key, value) pairs.

    The value is read as HOCON (numbers, booleans, null, lists, quoted strings); anything
    that is not valid HOCON on its own (e.g. a bare path) is taken as a string.
    """
    parsed = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"command-line override '{item}': expected section.key=value")
        try:
            value = ConfigFactory.parse_string(f"v = {raw.strip()}")["v"] if raw.strip() else ""
            if isinstance(value, ConfigTree):
                value = value.as_plain_ordered_dict()
        except (ConfigException, Exception):  # pyparsing raises its own types
            value = raw.strip()
        parsed.append((key, value))
    return parsed


def _apply_overrides(tree: ConfigTree, overrides: Iterable[str]) -> ConfigTree:
    """Merges overrides into an *unresolved* tree, then resolves substitutions, so that
    ``synth_db.root=/x`` also moves every key defined as ``${synth_db.root}...``."""
    for key, value in parse_overrides(overrides):
        override = ConfigFactory.from_dict({})
        override.put(key, value)
        tree = ConfigTree.merge_configs(tree, override)
    ConfigParser.resolve_substitutions(tree)
    return tree


def load_config(path: str | os.PathLike, overrides: Iterable[str] = ()) -> Config:
    """Reads a HOCON file (with includes), applies overrides and validates it.

    Raises:
        ConfigError: the file is missing or unparsable, or the merged config breaks the
            schema (all problems listed, each with its dotted key).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        tree = ConfigFactory.parse_file(str(path), resolve=False)
    except Exception as err:  # pyhocon/pyparsing raise assorted exception types
        raise ConfigError(f"{path}: cannot parse HOCON: {err}") from err
    try:
        tree = _apply_overrides(tree, overrides)
    except ConfigException as err:  # e.g. a substitution that names no key
        raise ConfigError(f"{path}: {err}") from err
    return _validated(tree, str(path))


def _validated(tree: ConfigTree, source: str) -> Config:
    data = _thaw(tree.as_plain_ordered_dict())
    errors = validate(data)
    if errors:
        listing = "\n".join(f"  - {e}" for e in errors)
        raise ConfigError(f"{source}: {len(errors)} problem(s) in the config:\n{listing}")
    for key, spec in SCHEMA.items():  # ints given for float keys become floats
        if spec.type is float and isinstance(present := _get(data, key), int):
            _put(data, key, float(present))
    return Config(data, source)


def _get(data: dict, key: str) -> Any:
    for part in key.split("."):
        data = data[part]
    return data


def _put(data: dict, key: str, value: Any) -> None:
    *head, last = key.split(".")
    for part in head:
        data = data[part]
    data[last] = value


def _leaves(data: dict, prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value and dotted not in SCHEMA:
            yield from _leaves(value, dotted + ".")
        else:
            yield dotted, value


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _check_value(key: str, spec: Key, value: Any) -> str | None:
    if value is None:
        return None if spec.nullable else f"{key}: must not be null (expected {spec.type.__name__})"
    ok = {
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
        list: lambda v: isinstance(v, list),
    }[spec.type]
    if not ok(value):
        return f"{key}: expected {spec.type.__name__}, got {_type_name(value)} ({value!r})"
    if spec.type is list:
        if spec.length is not None and len(value) != spec.length:
            return f"{key}: expected a list of {spec.length} items, got {len(value)}"
        if spec.item_type is not None:
            bad = [v for v in value if _check_value(key, Key(spec.item_type, ""), v)]
            if bad:
                return f"{key}: list items must be {spec.item_type.__name__}, got {bad!r}"
    if spec.choices and value not in spec.choices:
        return f"{key}: {value!r} is not one of {list(spec.choices)}"
    return None


def validate(data: dict) -> list[str]:
    """Every schema violation of a plain nested dict, as readable lines (empty when valid)."""
    errors = []
    present = dict(_leaves(data))
    for key, value in present.items():
        spec = SCHEMA.get(key)
        if spec is None:
            close = difflib.get_close_matches(key, SCHEMA.keys(), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            errors.append(f"{key}: unknown key{hint}")
            continue
        problem = _check_value(key, spec, value)
        if problem:
            errors.append(problem)
    for key in SCHEMA:
        if key not in present:
            errors.append(f"{key}: missing required key ({SCHEMA[key].doc})")
    return errors


def save_config(config: Config, path: str | os.PathLike) -> Path:
    """Writes the resolved config as HOCON atomically (temp file + rename); returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(config.to_hocon())
    return Path(path)
