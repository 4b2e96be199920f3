"""The synthetic population: identities with composable parts, sampled deterministically.

A person is an *identity* (identity coefficients of the head model, a skin tone, a shirt
colour, a texture seed) plus one discrete *variant* per part category of
:data:`pegasus.data.parts.LATENT_CATEGORIES`: a style and, for parts that have one, a
colour. Variants and their meaning:

- ears: shape (ear identity components), eyebrows: drawn shape × colour, eyes: iris size ×
  iris colour, hair: style (or bald) × colour, hat: style (or none) × colour, mouth: lip
  shape (lip identity components) × lip colour, nose: shape (nose identity components),
  eyeglasses: style (or none) × frame colour.

Population rules (all deterministic for ``synth_db.seed``; a person's choices depend only on
the seed, the target and their own index, so adding DB people leaves the others unchanged):

- the target and the new person wear no hat and no eyeglasses and have hair;
- the new person differs from the target in every other part;
- every DB person differs from the target in every part that is not worn (style and
  colour), cycling through the variants so that all of them appear; each worn accessory
  (hat, eyeglasses) is worn by about ``db_accessory_fraction`` of the DB people.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, replace

import numpy as np

from ..data.parts import LATENT_CATEGORIES
from .accessories import BROW_SHAPES, GLASSES_STYLES, HAIR_STYLES, HAT_STYLES
from .appearance import (FRAME_COLOURS, HAIR_COLOURS, HAT_COLOURS, IRIS_COLOURS, IRIS_SIZES_DEG,
                         LIP_COLOURS, SHIRT_COLOURS, SKIN_TONES)
from .settings import SynthDbSettings

__all__ = [
    "NOSE_SHAPES", "MOUTH_SHAPES", "EAR_SHAPES", "PartOptions", "CATALOGUE", "ROLES", "Variant", "Identity",
    "Person", "identity_components", "sample_population",
]

#: Nose shapes: identity coefficients of the nose components (head-model units ≈ std).
NOSE_SHAPES: dict[str, dict[str, float]] = {
    "straight": {},
    "button": {"nose_length": -2.2, "nose_width": -0.6, "nose_bridge": -1.8},
    "long": {"nose_length": 2.6, "nose_bridge": 1.0},
    "wide": {"nose_width": 2.6, "nose_bridge": -0.6},
    "aquiline": {"nose_bridge": 3.0, "nose_length": 1.2, "nose_width": -0.5},
    "narrow": {"nose_width": -2.2, "nose_length": 0.6},
}
#: Lip shapes: identity coefficients of the lip components.
MOUTH_SHAPES: dict[str, dict[str, float]] = {
    "medium": {},
    "thin": {"upper_lip_thickness": -2.2, "lower_lip_thickness": -2.2},
    "full": {"upper_lip_thickness": 2.6, "lower_lip_thickness": 2.6},
    "wide": {"mouth_width": 2.6},
    "small": {"mouth_width": -2.2, "upper_lip_thickness": 0.6, "lower_lip_thickness": 0.6},
    "pouty": {"lower_lip_thickness": 3.0, "upper_lip_thickness": 0.8, "mouth_width": -0.8},
}
#: Ear shapes: identity coefficients of the ear components.
EAR_SHAPES: dict[str, dict[str, float]] = {
    "average": {}, "small": {"ear_size": -2.2}, "large": {"ear_size": 2.6}, "protruding": {"ear_angle": 2.6},
}
_SHAPE_TABLES = {"ears": EAR_SHAPES, "mouth": MOUTH_SHAPES, "nose": NOSE_SHAPES}

ROLES = ("target", "db", "new_person")


@dataclass(frozen=True)
class PartOptions:
    """The variants of one part category.

    Attributes:
        styles: style names; ``absent`` (if any) is among them.
        colours: colour names (empty: the part has no colour).
        absent: the style meaning "no such part" (bald, no hat, no eyeglasses), or None.
        worn: an accessory that one wears or not (hat, eyeglasses).
    """

    styles: tuple[str, ...]
    colours: tuple[str, ...] = ()
    absent: str | None = None
    worn: bool = False

    @property
    def present_styles(self) -> tuple[str, ...]:
        return tuple(s for s in self.styles if s != self.absent)


#: Variants per part category (the keys follow the order of LATENT_CATEGORIES).
CATALOGUE: dict[str, PartOptions] = {
    "ears": PartOptions(tuple(EAR_SHAPES)),
    "eyebrows": PartOptions(tuple(BROW_SHAPES), tuple(HAIR_COLOURS)),
    "eyes": PartOptions(tuple(IRIS_SIZES_DEG), tuple(IRIS_COLOURS)),
    "hair": PartOptions(("bald", *HAIR_STYLES), tuple(HAIR_COLOURS), absent="bald"),
    "hat": PartOptions(("none", *HAT_STYLES), tuple(HAT_COLOURS), absent="none", worn=True),
    "mouth": PartOptions(tuple(MOUTH_SHAPES), tuple(LIP_COLOURS)),
    "nose": PartOptions(tuple(NOSE_SHAPES)),
    "eyeglasses": PartOptions(("none", *GLASSES_STYLES), tuple(FRAME_COLOURS), absent="none", worn=True),
}
_PART_CATEGORIES = tuple(c.name for c in LATENT_CATEGORIES if c.is_part)


@dataclass(frozen=True)
class Variant:
    """One choice of a part: a style and, where the part has colours, a colour (None when
    the style is the absent one)."""

    style: str
    colour: str | None = None

    def describe(self) -> str:
        return self.style if self.colour is None else f"{self.colour} {self.style}"


@dataclass(frozen=True)
class Identity:
    """What stays when parts are swapped.

    Attributes:
        coefficients: (name, value) of the identity components not owned by a part.
        skin: skin tone name; shirt: shirt colour name; texture_seed: skin blotch seed.
    """

    coefficients: tuple[tuple[str, float], ...]
    skin: str
    shirt: str
    texture_seed: int


@dataclass(frozen=True)
class Person:
    """A synthetic person: name, role (``target``, ``db`` or ``new_person``), identity and
    one variant per part category (in the order of LATENT_CATEGORIES)."""

    name: str
    role: str
    identity: Identity
    parts: tuple[tuple[str, Variant], ...]

    def part(self, category: str) -> Variant:
        for name, variant in self.parts:
            if name == category:
                return variant
        raise KeyError(f"person {self.name!r} has no part category {category!r}; "
                       f"categories: {[n for n, _ in self.parts]}")

    def has_part(self, category: str) -> bool:
        """False where the variant is the absent one (bald, no hat, no eyeglasses)."""
        return self.part(category).style != CATALOGUE[category].absent

    def with_part(self, category: str, variant: Variant) -> "Person":
        """The same person wearing another variant of one part (e.g. a DB person's hair)."""
        self.part(category)
        return replace(self, parts=tuple((n, variant if n == category else v) for n, v in self.parts))

    def shape_coefficients(self) -> dict[str, float]:
        """Identity coefficients by component name: the identity's plus the part shapes'."""
        coefficients = dict(self.identity.coefficients)
        for category, table in _SHAPE_TABLES.items():
            coefficients.update(table[self.part(category).style])
        return coefficients

    def texture_parts(self) -> dict[str, tuple[str | None, str | None]]:
        """{category: (style, colour)} plus ``shirt`` → (None, colour), for the painter."""
        parts = {name: (v.style, v.colour) for name, v in self.parts}
        parts["shirt"] = (None, self.identity.shirt)
        return parts

    def to_json(self) -> dict:
        """A JSON-ready description (also hashed into the records)."""
        return {
            "name": self.name,
            "role": self.role,
            "identity": {"skin": self.identity.skin, "shirt": self.identity.shirt,
                         "texture_seed": self.identity.texture_seed,
                         "coefficients": {k: round(v, 6) for k, v in self.identity.coefficients}},
            "parts": {name: {"style": v.style, "colour": v.colour} for name, v in self.parts},
        }


def identity_components(shape_names) -> tuple[str, ...]:
    """The head model's identity components that no part owns (sampled per identity).

    Raises:
        ValueError: a part table names a component the head model does not have.
    """
    names = tuple(str(n) for n in shape_names)
    owned = {name for table in _SHAPE_TABLES.values() for shape in table.values() for name in shape}
    missing = sorted(owned - set(names))
    if missing:
        raise ValueError(f"head model: identity components {missing} used by the part shapes are missing; "
                         f"the model has {list(names)} (the synthetic database needs the stand-in head)")
    return tuple(n for n in names if n not in owned)


def _rng(seed: int, *keys: str | int) -> np.random.Generator:
    """A generator for one purpose: the seed plus stable keys (names are CRC32-hashed)."""
    return np.random.default_rng([seed, *(zlib.crc32(k.encode()) if isinstance(k, str) else k for k in keys)])


def _cycle(options: tuple[str, ...], seed: int, key: str, index: int) -> str:
    """The index-th choice of a sequence that visits every option once per round, in a
    seeded order that changes every round."""
    count = len(options)
    order = _rng(seed, "cycle", key, index // count).permutation(count)
    return options[int(order[index % count])]


def _identity(seed: int, name: str, components: tuple[str, ...], std: float) -> Identity:
    rng = _rng(seed, "identity", name)
    values = np.clip(rng.normal(0.0, std, len(components)), -2.5 * std, 2.5 * std)
    return Identity(tuple((c, float(v)) for c, v in zip(components, values)),
                    skin=str(rng.choice(list(SKIN_TONES))), shirt=str(rng.choice(list(SHIRT_COLOURS))),
                    texture_seed=int(rng.integers(2 ** 31)))


def _variant(options: PartOptions, style: str, colour: str | None) -> Variant:
    return Variant(style, None if style == options.absent or not options.colours else colour)


def _others(values: tuple[str, ...], excluded: str | None) -> tuple[str, ...]:
    """The values other than ``excluded`` (all of them if that leaves none)."""
    rest = tuple(v for v in values if v != excluded)
    return rest or values


def _plain_parts(seed: int, name: str, avoid: "Person | None") -> tuple[tuple[str, Variant], ...]:
    """Parts of the target (avoid None) or of the new person (differing from ``avoid``):
    no worn accessories, hair present, every other part chosen at random."""
    rng = _rng(seed, "parts", name)
    parts = []
    for category in _PART_CATEGORIES:
        options = CATALOGUE[category]
        if options.worn:
            parts.append((category, Variant(options.absent)))
            continue
        avoid_variant = avoid.part(category) if avoid is not None else Variant("")
        style = str(rng.choice(_others(options.present_styles, avoid_variant.style)))
        colour = str(rng.choice(_others(options.colours, avoid_variant.colour))) if options.colours else None
        parts.append((category, _variant(options, style, colour)))
    return tuple(parts)


def _db_parts(seed: int, index: int, target: Person, fraction: float) -> tuple[tuple[str, Variant], ...]:
    """Parts of the index-th DB person (see the module docstring)."""
    parts = []
    for position, category in enumerate(_PART_CATEGORIES):
        options = CATALOGUE[category]
        own = target.part(category)
        colour = None
        if options.colours:
            colour = _cycle(_others(options.colours, own.colour), seed, f"{category}/colour", index)
        if options.worn:
            offset = float(_rng(seed, "wears", category).random())
            wears = (offset + index * 0.6180339887) % 1.0 < fraction
            style = _cycle(options.present_styles, seed, f"{category}/style", index) if wears else options.absent
        else:
            style = _cycle(_others(options.styles, own.style), seed, f"{category}/style", index)
        parts.append((category, _variant(options, style, colour)))
    return tuple(parts)


def sample_population(settings: SynthDbSettings, shape_names) -> tuple[Person, ...]:
    """The target, the DB people (``settings.db_names``) and the new person, in that order.

    Args:
        shape_names: the head model's identity component names (``extras["shape_names"]``).
    """
    components = identity_components(shape_names)
    seed, std = settings.seed, settings.identity_std
    target = Person(settings.target, "target", _identity(seed, settings.target, components, std),
                    _plain_parts(seed, settings.target, None))
    db = [Person(name, "db", _identity(seed, name, components, std),
                 _db_parts(seed, k, target, settings.db_accessory_fraction))
          for k, name in enumerate(settings.db_names)]
    new_person = Person(settings.new_person, "new_person", _identity(seed, settings.new_person, components, std),
                        _plain_parts(seed, settings.new_person, target))
    return (target, *db, new_person)
