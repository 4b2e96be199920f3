import pickle
import random

import numpy as np
import pytest
import torch

from pegasus.train.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from pegasus.train.distributed import init_distributed, resolve_device, seed_everything


def test_rng_state_round_trip_through_a_checkpoint(tmp_path):
    seed_everything(5)
    random.gauss(0, 1)  # leaves a cached gaussian in python's state
    path = save_checkpoint(tmp_path / "checkpoints" / "a.pt", {"rng": rng_state(), "epoch": 3})
    expected = (random.gauss(0, 1), np.random.randn(), torch.rand(2).tolist())
    state = load_checkpoint(path)
    set_rng_state(state["rng"])
    assert (random.gauss(0, 1), np.random.randn(), torch.rand(2).tolist()) == expected
    assert state["epoch"] == 3
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoints" / "latest.pt"
    assert load_checkpoint(latest_checkpoint(tmp_path))["epoch"] == 3


class _Payload:
    def __reduce__(self):
        return (print, ("executed",))


def test_loading_refuses_arbitrary_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"x": _Payload()}, path)
    with pytest.raises(CheckpointError, match="evil.pt: unreadable checkpoint"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")


def test_failed_write_keeps_the_previous_checkpoint(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", {"epoch": 1}, update_latest=False)
    with pytest.raises((pickle.PicklingError, AttributeError)):
        save_checkpoint(path, {"bad": lambda: None}, update_latest=False)
    assert load_checkpoint(path)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]  # no temp file left


def test_seeds_offset_by_rank_and_device_resolution(monkeypatch):
    assert seed_everything(10, rank=2) == 12
    a = torch.rand(1)
    seed_everything(12)
    assert torch.equal(a, torch.rand(1))
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(RuntimeError, match="experiment.device = cpu"):
            resolve_device("cuda")
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    env = init_distributed("cpu")
    assert (env.rank, env.world_size, env.is_main, env.distributed) == (0, 1, True, False)
