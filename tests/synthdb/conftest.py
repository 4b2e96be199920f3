"""A tiny synthetic database built once per test session (4 people, 64² frames)."""
from __future__ import annotations

from pathlib import Path

import pytest

from pegasus.config import load_config

CONFS = Path(__file__).resolve().parents[2] / "confs"

# Seed 11 with two DB people gives a hat wearer (db_00) and a bald eyeglasses wearer (db_01).
TINY = ["synth_db.seed=11", "synth_db.n_db=2", "synth_db.image_size=64", "synth_db.train_frames=5",
        "synth_db.test_frames=4", "synth_db.gt_frame_stride=2", "synth_db.texture_size=256", "synth_db.workers=1",
        "synth_db.contact_tile=64", "synth_db.batch_size=3", "synth_db.driven_frame_stride=2"]


def tiny_config(root: Path, standin: Path, *extra: str):
    """The tiny database's config writing to ``root`` (stand-in head cached at ``standin``)."""
    return load_config(CONFS / "embedded.conf", [f"synth_db.root={root}", f"standin.output={standin}", *TINY, *extra])


@pytest.fixture(scope="session")
def standin_path(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("standin") / "standin_head.npz"


@pytest.fixture(scope="session")
def tiny_config_factory(standin_path):
    """tiny_config(root, *overrides) with the session's stand-in head."""
    return lambda root, *extra: tiny_config(root, standin_path, *extra)


@pytest.fixture(scope="session")
def tiny_db(tmp_path_factory, tiny_config_factory):
    """(config, BuildReport) of the tiny database, built once."""
    from pegasus.synthdb.build import build_database

    cfg = tiny_config_factory(tmp_path_factory.mktemp("synth_db") / "db")
    return cfg, build_database(cfg)


@pytest.fixture(scope="session")
def tiny_settings(tiny_db):

    return tiny_db[0].synth_db


@pytest.fixture(scope="session")
def head_model(tiny_db):
    from pegasus.headmodel import head_model_from_config

    return head_model_from_config(tiny_db[0])
