"""The config's sections and the module that declares each one.

Each section is a :class:`pegasus.config.declare.Section` dataclass declared by the code that
owns it; this table only says which class is which top-level section. The flat schema of
dotted keys is derived from the declarations (:func:`schema`).
"""
from __future__ import annotations

import functools

from .declare import Key, schema_of

__all__ = ["sections", "schema"]


@functools.cache
def sections() -> dict[str, type]:
    """``{section name: declaring class}`` in the order of ``confs/base.conf``."""
    from ..avatar.settings import LossSettings, ModelSettings
    from ..bank.settings import BankSettings
    from ..data.settings import DatasetSettings
    from ..eval.settings import PictureSettings, TestSettings
    from ..generative.settings import GenerativeSettings
    from ..headmodel.settings import HeadModelSettings, StandinSettings
    from ..preprocess.settings import PreprocessSettings
    from ..synth.settings import SynthSettings
    from ..synthdb.settings import SynthDbSettings
    from ..train.settings import ExperimentSettings, TrainSettings

    return {
        "experiment": ExperimentSettings,
        "head_model": HeadModelSettings,
        "standin": StandinSettings,
        "picture": PictureSettings,
        "dataset": DatasetSettings,
        "train": TrainSettings,
        "synth_db": SynthDbSettings,
        "test": TestSettings,
        "model": ModelSettings,
        "loss": LossSettings,
        "preprocess": PreprocessSettings,
        "bank": BankSettings,
        "synth": SynthSettings,
        "generative": GenerativeSettings,
    }


@functools.cache
def schema() -> dict[str, Key]:
    """Every config key: ``{"section.key": Key}``, derived from the declarations."""
    flat: dict[str, Key] = {}
    for name, cls in sections().items():
        flat.update(schema_of(cls, f"{name}."))
    return flat
