"""Declaring settings: every config section is a frozen dataclass whose fields say what each key is.

A section is declared once, next to the code that owns it::

    @dataclass(frozen=True)
    class TrainSettings(Section):
        epochs: int = setting("epochs to train", ge=1)
        lr_milestones: tuple[int, ...] = setting("epochs at which the lr decays", ge=0, ordered=True)

The field's annotation is its type (``int``, ``float``, ``str``, ``bool``, ``X | None`` for
nullable keys, ``tuple[X, ...]`` / ``tuple[X, X]`` for lists of any / fixed length, ``int |
tuple[int, int]`` for "an int or a pair", a nested :class:`Section` for a sub-section, and
``tuple[SomeEntry, ...]`` for a list of objects such as the dataset's video entries). The
:func:`setting` metadata holds the meaning (with units), bounds, choices and whether a path
must exist. Values, defaults included, live only in ``confs/*.conf``: section fields have no
defaults. Only the fields of *list entries* may have defaults (an entry written by hand
names what it changes), declared with ``setting(..., default=...)``.

Everything else is derived from these declarations: the flat schema of dotted keys
(:func:`schema_of`), validation of a loaded config (:func:`check_value`), and the typed,
frozen settings objects that the code reads (:func:`build`). A section may add a method
``problems(self) -> list[str]`` for checks that relate several keys; each line starts with
the key (relative to the section) it blames.
"""
from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import Any

__all__ = ["Section", "setting", "Key", "schema_of", "check_value", "build", "describe_type", "section_problems"]

_META = "pegasus"


class Section:
    """Base of every declared section and list entry: ``section["key"]`` reads a field."""

    def __getitem__(self, name: str) -> Any:
        try:
            return getattr(self, name)
        except AttributeError:
            raise KeyError(f"{type(self).__name__} has no setting {name!r}") from None

    def to_dict(self) -> dict:
        """Plain nested dicts and lists (the HOCON shape of the section)."""
        return _plain(self)

    def problems(self) -> list[str]:
        """Checks that relate several keys: ``"key: what is wrong"`` lines (none by default)."""
        return []


def _plain(value):
    if isinstance(value, Section):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Key:
    """The derived description of one key (a leaf of the schema).

    Attributes:
        kind: ``int``, ``float``, ``str``, ``bool``, ``list``, ``entries`` (a list of entry
            objects) or ``union`` (any of ``options``).
        doc, bounds, choices, path, ordered: as declared with :func:`setting`.
        nullable: ``null`` is allowed.
        item: the Key of each list item. length: required list length (None: any).
        entry: the entry class of an ``entries`` key.
        options: the alternatives of a ``union`` key (e.g. an int or a pair of ints).
        has_default: the key may be left out (fields of list entries only).
    """

    kind: str
    doc: str = ""
    nullable: bool = False
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple = ()
    path: str | None = None
    ordered: bool = False
    item: "Key | None" = None
    length: int | None = None
    entry: type | None = None
    options: tuple["Key", ...] = ()
    has_default: bool = False


def setting(
    doc: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: tuple = (),
    path: str | None = None,
    ordered: bool = False,
    default: Any = MISSING,
) -> Any:
    """Declares one key of a section (a dataclass field).

    Args:
        doc: what the key means, with units.
        ge, gt, le, lt: bounds of a number (of every item of a list of numbers).
        choices: allowed values (of every item of a list).
        path: ``"file"``, ``"dir"`` or ``"any"``: a non-null value must name an existing file,
            folder or either (user-supplied inputs only; outputs of earlier steps are checked
            where they are read).
        ordered: the list's items must not decrease (ranges ``[min, max]``, milestones).
        default: only for fields of list entries.
    """
    if path not in (None, "file", "dir", "any"):
        raise ValueError(f"setting: path must be file, dir or any, got {path!r}")
    declared = Key("", doc, ge=ge, gt=gt, le=le, lt=lt, choices=tuple(choices), path=path, ordered=ordered)
    return dataclasses.field(default=default, metadata={_META: declared})


_SCALARS = {int: "int", float: "float", str: "str", bool: "bool"}


def _is_section(tp) -> bool:
    return isinstance(tp, type) and issubclass(tp, Section) and dataclasses.is_dataclass(tp)


def _key_of_type(tp, declared: Key, owner: str) -> Key:
    """The declared Key (meaning, bounds, ...) completed with what the annotation ``tp`` says."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        nullable = len(args) < len(typing.get_args(tp))
        if len(args) == 1:
            return dataclasses.replace(_key_of_type(args[0], declared, owner), nullable=nullable)
        options = tuple(_key_of_type(a, declared, owner) for a in args)
        return dataclasses.replace(declared, kind="union", nullable=nullable, options=options)
    if tp in _SCALARS:
        return dataclasses.replace(declared, kind=_SCALARS[tp], ordered=False)
    if origin is tuple:
        args = typing.get_args(tp)
        variadic = len(args) == 2 and args[1] is Ellipsis
        if not variadic and len(set(args)) != 1:
            raise TypeError(f"{owner}: tuple settings need one item type, got {tp}")
        item_type = args[0]
        if _is_section(item_type):
            return Key("entries", declared.doc, entry=item_type)
        return Key("list", declared.doc, item=_key_of_type(item_type, declared, owner),
                   length=None if variadic else len(args), ordered=declared.ordered)
    raise TypeError(f"{owner}: unsupported setting type {tp}")


@functools.cache
def _fields(cls: type) -> tuple[tuple[str, Any, Key | None], ...]:
    """(name, annotation, Key or None for a sub-section) of every field of a section class."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if _is_section(tp):
            out.append((f.name, tp, None))
            continue
        declared = f.metadata.get(_META)
        if declared is None:
            raise TypeError(f"{cls.__name__}.{f.name}: declare it with pegasus.config.declare.setting(...)")
        key = _key_of_type(tp, declared, f"{cls.__name__}.{f.name}")
        has_default = f.default is not MISSING or f.default_factory is not MISSING
        out.append((f.name, tp, dataclasses.replace(key, has_default=has_default)))
    return tuple(out)


def schema_of(cls: type, prefix: str = "") -> dict[str, Key]:
    """Flat ``{dotted key: Key}`` of a section class and its sub-sections."""
    flat: dict[str, Key] = {}
    for name, tp, key in _fields(cls):
        if key is None:
            flat.update(schema_of(tp, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = key
    return flat


def describe_type(key: Key) -> str:
    """A short human-readable type of a key, e.g. ``list of 2 float`` or ``int or [H, W]``."""
    if key.kind == "list":
        count = f"{key.length} " if key.length else ""
        text = f"list of {count}{describe_type(key.item)}"
    elif key.kind == "entries":
        text = f"list of {key.entry.__name__} objects"
    elif key.kind == "union":
        text = " or ".join(describe_type(o) for o in key.options)
    else:
        text = key.kind
    return f"{text} or null" if key.nullable else text


def _type_ok(kind: str, value) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    return isinstance(value, (list, tuple)) if kind in ("list", "entries") else False


def _bound_problem(key: Key, value) -> str | None:
    for bound, test, word in ((key.ge, lambda v, b: v >= b, "≥"), (key.gt, lambda v, b: v > b, ">"),
                              (key.le, lambda v, b: v <= b, "≤"), (key.lt, lambda v, b: v < b, "<")):
        if bound is not None and not test(value, bound):
            return f"must be {word} {bound:g}"
    if key.choices and value not in key.choices:
        return f"must be one of {list(key.choices)}"
    return None


def check_value(key: Key, value) -> list[str]:
    """Problems of ``value`` against ``key`` (empty when valid); each names no key.

    Entries of an ``entries`` key come back as ``"[i] (subject/video): field: problem"``.
    Path existence is checked relative to the working directory.
    """
    if value is None:
        return [] if key.nullable else [f"must not be null (expected {describe_type(key)})"]
    if key.kind == "union":
        for option in key.options:
            if not check_value(option, value):
                return []
        return [f"expected {describe_type(key)}, got {value!r}"]
    if not _type_ok(key.kind, value):
        return [f"expected {describe_type(key)}, got {_type_name(value)} {value!r}"]
    if key.kind == "entries":
        return _entries_problems(key.entry, value)
    if key.kind == "list":
        if key.length is not None and len(value) != key.length:
            return [f"expected a list of {key.length} items, got {len(value)}"]
        for i, item in enumerate(value):
            problems = check_value(key.item, item)
            if problems:
                return [f"item {i} ({item!r}): {problems[0]}"]
        if key.ordered and any(b < a for a, b in zip(value, value[1:])):
            return ["items must not decrease (e.g. [min, max])"]
        return []
    problem = _bound_problem(key, value)
    if problem:
        return [problem]
    if key.path and not _path_exists(key.path, value):
        kind = {"file": "file", "dir": "folder", "any": "file or folder"}[key.path]
        return [f"{kind} not found: {Path(value).resolve()}"]
    return []


def _path_exists(kind: str, value: str) -> bool:
    path = Path(value)
    return {"file": path.is_file, "dir": path.is_dir, "any": path.exists}[kind]()


def _type_name(value) -> str:
    return "null" if value is None else {dict: "object", list: "list"}.get(type(value), type(value).__name__)


def _entry_label(value) -> str:
    if not isinstance(value, dict):
        return ""
    parts = [str(value[k]) for k in ("subject", "video", "manifest") if value.get(k) is not None]
    return f" ({'/'.join(parts)})" if parts else ""


def _entries_problems(entry_cls: type, values) -> list[str]:
    problems = []
    fields = schema_of(entry_cls)
    for i, value in enumerate(values):
        where = f"[{i}]{_entry_label(value)}"
        if not isinstance(value, dict):
            problems.append(f"{where}: expected an object {{...}}, got {_type_name(value)} {value!r}")
            continue
        found = [f"{where}: unknown field {name!r} (fields: {sorted(fields)})" for name in value if name not in fields]
        for name, key in fields.items():
            if name not in value:
                if not key.has_default:
                    found.append(f"{where}: {name}: missing ({key.doc})")
                continue
            found += [f"{where}: {name}: {p}" for p in check_value(key, value[name])]
        if not found:
            found = [f"{where}: {p}" for p in build(entry_cls, value).problems()]
        problems += found
    return problems


def build(cls: type, data: dict):
    """The typed, frozen instance of section ``cls`` from validated plain data.

    Lists become tuples, ints given for float keys become floats, sub-sections and list
    entries become their classes; fields of entries that are left out take their defaults.
    """
    values = {}
    for name, tp, key in _fields(cls):
        if key is None:
            values[name] = build(tp, data[name])
        elif name in data:
            values[name] = _convert(key, data[name])
    return cls(**values)


def _convert(key: Key, value):
    if value is None:
        return None
    if key.kind == "float":
        return float(value)
    if key.kind == "entries":
        return tuple(build(key.entry, v) for v in value)
    if key.kind == "list":
        return tuple(_convert(key.item, v) for v in value)
    if key.kind == "union":
        for option in key.options:
            if not check_value(option, value):
                return _convert(option, value)
    return value


def section_problems(section: Section) -> list[str]:
    """Every problem of a section object made in code (e.g. with ``dataclasses.replace``):
    each key checked against its declaration, then the section's own checks, recursively.
    Lines start with the key relative to the section."""
    problems = []
    for name, _, key in _fields(type(section)):
        value = getattr(section, name)
        if key is None:
            problems += [f"{name}.{line}" for line in section_problems(value)]
        else:
            problems += [f"{name}: {p}" for p in check_value(key, _plain(value))]
    return problems or section.problems()
