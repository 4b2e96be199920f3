"""The configured head model: component counts follow the model file unless a config sets them."""
from __future__ import annotations

import logging
from pathlib import Path

from pegasus.config import load_config
from pegasus.headmodel import head_model_from_config

CONFS = Path(__file__).resolve().parents[2] / "confs"


def test_component_counts_follow_the_model_unless_configured(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    cfg = load_config(CONFS / "base.conf", [f"standin.output={tmp_path / 'standin.npz'}"])
    model = head_model_from_config(cfg)  # base.conf on the stand-in head: no padding
    assert (model.n_shape, model.n_expr) == (cfg.standin.n_shape, cfg.standin.n_expr)
    assert "zero-padding" not in caplog.text
    padded = head_model_from_config(cfg.with_overrides(["head_model.n_expr=50"]))
    assert padded.n_expr == 50 and "zero-padding" in caplog.text
