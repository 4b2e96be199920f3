"""The shell scripts users run: they validate first, pass overrides to every step and fail cleanly."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV = str(Path(sys.executable).parent.parent)  # run/*.sh call $VENV/bin/pegasus


def _bash(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", *args], cwd=cwd, env={**os.environ, "VENV": VENV}, capture_output=True, text=True,
                          timeout=600)


def test_train_script_validates_before_the_database_step(tmp_path):
    database = tmp_path / "db"
    result = _bash("run/train.sh", f"synth_db.root={database}", "train.epocs=3")
    assert result.returncode == 2
    assert "command line: train.epocs=3: unknown key (did you mean 'train.epochs'?)" in result.stderr
    assert not database.exists()  # nothing was generated before the error


def test_db_avatar_script_validates_before_the_database_step(tmp_path):
    database = tmp_path / "db"
    result = _bash("run/db_avatar.sh", f"synth_db.root={database}", "bank.mode=sometimes")
    assert result.returncode == 2 and "bank.mode" in result.stderr and "per_video" in result.stderr
    assert not database.exists()


@pytest.mark.slow
def test_db_avatar_script_runs_local_shards_and_writes_the_summary(tmp_path, tiny_sizes):
    database, bank = tmp_path / "db", tmp_path / "bank"
    people = "bank.people=[{subject = db_00, video = train, role = db}, {subject = db_01, video = train, role = db}]"
    overrides = [f"synth_db.root={database}", f"standin.output={tmp_path / 'standin.npz'}", *tiny_sizes["db"],
                 "synth_db.n_db=2", *tiny_sizes["model"], f"bank.root={bank}", people,
                 "bank.drivers=[{subject = target, video = test}]", "train.epochs=1"]
    result = subprocess.run(["bash", "run/db_avatar.sh", *overrides], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "VENV": VENV, "NPROC": "2"}, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((bank / "bank.json").read_text())
    assert [job["job"] for job in summary["jobs"]] == ["db_00_train", "db_01_train"]
    assert all(job["training"] is not None for job in summary["jobs"])  # one job in each shard process
    assert "shard 0/2" in result.stderr and "shard 1/2" in result.stderr


def test_synthesis_scripts_run_one_category_and_score_it(tmp_path, tiny_db_overrides):
    database = next(o.split("=", 1)[1] for o in tiny_db_overrides if o.startswith("synth_db.root="))
    out = tmp_path / "synth"
    overrides = [*tiny_db_overrides, "dataset.resolution=32", f"synth.root={out}",
                 f"synth.renders={database}/cross_driven", "synth.videos=[test]", "synth.db_people=[db_00]"]
    result = _bash("preprocess/2_synthesis_hair.sh", "confs/embedded.conf", *overrides)
    assert result.returncode == 0, result.stderr[-3000:]
    records = sorted(p.stem for p in (out / "test" / ".records").glob("*.json"))
    assert records == ["hair_db_00"]  # only the script's category
    scores = json.loads((out / "test" / "part_scores.json").read_text())
    assert scores["entries"]["hair_db_00"] == {"scored": 1, "dropped": 0}
    source = _bash("preprocess/3_source.sh", "confs/embedded.conf", *overrides)
    assert source.returncode == 0, source.stderr[-3000:]
    assert (out / "test" / "target" / "target" / "test" / "mask_object").is_dir()
    bad = _bash("preprocess/2_synthesis_nose.sh", "confs/embedded.conf", *overrides, "synth.grow=-1")
    assert bad.returncode == 2 and "synth.grow" in bad.stderr


@pytest.mark.slow
def test_train_script_passes_the_overrides_to_every_step(tmp_path, tiny_sizes):
    database, runs = tmp_path / "db", tmp_path / "runs"
    overrides = [f"synth_db.root={database}", f"standin.output={tmp_path / 'standin.npz'}", *tiny_sizes["db"],
                 *tiny_sizes["model"], f"experiment.output_root={runs}", "train.epochs=1"]
    first = _bash("run/train.sh", *overrides)
    assert first.returncode == 0, first.stderr[-2000:]
    assert (database / "ground_truth" / "manifest.json").is_file()  # the database step got the overrides
    assert (runs / "embedded" / "checkpoints" / "latest.pt").is_file()
    again = _bash("run/train.sh", *overrides)
    assert again.returncode == 2 and "--resume" in again.stderr and "--overwrite" in again.stderr
    assert _bash("run/train.sh", "--resume", *overrides).returncode == 0  # a finished run: nothing to do
    # a log file, not a terminal: the progress bars write a few lines, not one per step
    assert first.stderr.count("\r") <= 6, first.stderr.count("\r")  # measured 0 (one per step before)


@pytest.mark.parametrize("script, args, message", [
    ("preprocess/preprocess_video.sh", ["/no/such/dir/clip.mp4"], "/no/such/dir/clip.mp4: video file not found"),
    ("preprocess/preprocess_folder.sh", ["/no/such/dir", "anna"], "/no/such/dir: video folder not found"),
])
def test_preprocess_scripts_name_a_missing_path(script, args, message):
    result = _bash(script, *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
