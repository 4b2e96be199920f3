from pathlib import Path

import numpy as np
import pytest

from pegasus.cli.main import main
from pegasus.config import load_config

CONFS = Path(__file__).resolve().parents[2] / "confs"


@pytest.fixture
def standin_overrides(tmp_path):
    """Small stand-in settings that write into tmp_path (keeps tests independent of data/)."""
    return [f"standin.output={tmp_path / 'standin.npz'}", f"picture.output={tmp_path / 'head.png'}",
            "picture.image_size=96", "picture.n_random=2"]


def test_config_command_prints_resolved_config(capsys):
    assert main(["config", "--conf", str(CONFS / "embedded.conf"), "experiment.seed=7"]) == 0
    assert "seed = 7" in capsys.readouterr().out


def test_bad_config_gives_exit_code_2_and_names_problems(caplog):
    assert main(["config", "--conf", str(CONFS / "embedded.conf"), "head_model.scal=1", "picture.focal=x"]) == 2
    text = caplog.text
    assert "command line: head_model.scal=1: unknown key (did you mean 'head_model.scale'?)" in text
    assert "command line: picture.focal=x: expected float" in text and "2 problem(s)" in text


def test_missing_flame_file_is_a_clear_error(caplog, tmp_path, standin_overrides):
    flame = tmp_path / "generic_model.pkl"
    assert main(["picture", "--conf", str(CONFS / "embedded.conf"), f"head_model.path={flame}",
                 *standin_overrides]) == 2
    assert f"file not found: {flame}" in caplog.text


def test_picture_writes_png_and_resolved_config(tmp_path, standin_overrides):
    assert main(["picture", "--conf", str(CONFS / "embedded.conf"), *standin_overrides]) == 0
    import cv2

    image = cv2.imread(str(tmp_path / "head.png"))
    assert image is not None and image.shape[0] > 96 and image.shape[1] > 4 * 96
    # tiles are not blank: the head covers a good part of the first tile
    tile = image[4:100, 4:100].astype(float)
    assert (tile.mean(-1) < 240).mean() > 0.1
    saved = load_config(tmp_path / "head.conf")
    assert saved.picture.image_size == 96


def test_standin_is_cached_and_regenerated_when_settings_change(tmp_path, standin_overrides):
    assert main(["standin", "--conf", str(CONFS / "embedded.conf"), *standin_overrides]) == 0
    path = tmp_path / "standin.npz"
    first = path.stat().st_mtime_ns
    assert main(["standin", "--conf", str(CONFS / "embedded.conf"), *standin_overrides]) == 0
    assert path.stat().st_mtime_ns == first  # reused
    assert main(["standin", "--conf", str(CONFS / "embedded.conf"), *standin_overrides, "standin.seed=3"]) == 0
    with np.load(path) as npz:
        assert int(npz["seed"]) == 3


def test_synth_db_when_used_skips_a_dataset_elsewhere(tmp_path, caplog):
    caplog.set_level("INFO")
    database = tmp_path / "db"
    elsewhere = [f"synth_db.root={database}", f"dataset.root={tmp_path / 'real'}"]
    assert main(["synth-db", "--when-used", "dataset", "--conf", str(CONFS / "embedded.conf"), *elsewhere]) == 0
    assert not database.exists() and "the dataset does not read" in caplog.text
    # the bank's entries name no root either: they read dataset.root too
    assert main(["synth-db", "--when-used", "bank", "--conf", str(CONFS / "embedded.conf"), *elsewhere]) == 0
    assert not database.exists() and "the bank does not read" in caplog.text
