from pathlib import Path

import pytest

from pegasus.config import SCHEMA, ConfigError, load_config, parse_overrides, save_config

CONFS = Path(__file__).resolve().parents[2] / "confs"


def test_every_shipped_config_loads():
    files = sorted(CONFS.glob("*.conf"))
    assert files, "no configs shipped"
    for path in files:
        cfg = load_config(path)
        assert set(k for k in SCHEMA) <= set(_dotted(cfg.to_dict()))


def _dotted(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict) and f"{prefix}{k}" not in SCHEMA:
            yield from _dotted(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}"


def test_include_and_inheritance(tmp_path):
    (tmp_path / "child.conf").write_text(f'include "{CONFS / "base.conf"}"\nhead_model.n_expr = 20\n')
    cfg = load_config(tmp_path / "child.conf")
    assert cfg.head_model.n_expr == 20
    assert cfg.head_model.scale == 4.0  # inherited
    assert cfg["experiment.seed"] == 0


def test_overrides_types_and_strings():
    cfg = load_config(CONFS / "base.conf", [
        "head_model.scale=2", "head_model.path=/data/flame/generic_model.pkl",
        "head_model.iris_vertex_ids=[1, 2]", "experiment.name=run one", "head_model.texture_space=null",
    ])
    assert cfg.head_model.scale == 2.0 and isinstance(cfg.head_model.scale, float)
    assert cfg.head_model.path == "/data/flame/generic_model.pkl"
    assert cfg.head_model.iris_vertex_ids == (1, 2)
    assert cfg.experiment.name == "run one"
    assert cfg.head_model.texture_space is None
    assert parse_overrides(["a.b=[1,2]"]) == [("a.b", [1, 2])]


def test_several_mistakes_reported_together(tmp_path):
    bad = tmp_path / "bad.conf"
    bad.write_text(
        f'include "{CONFS / "base.conf"}"\n'
        "head_model.scal = 3\n"           # unknown key (typo)
        'picture.image_size = "big"\n'    # wrong type
        "experiment.device = tpu\n"       # not an allowed choice
        "head_model.iris_vertex_ids = [1]\n"  # wrong length
        "extra { thing = 1 }\n"           # unknown section
    )
    with pytest.raises(ConfigError) as info:
        load_config(bad, ["standin.seed=1.5"])  # wrong type from the command line
    msg = str(info.value)
    assert str(bad) in msg and "6 problem(s)" in msg
    for needle in ["head_model.scal: unknown key (did you mean 'head_model.scale'?)",
                   "picture.image_size: expected int, got str",
                   "experiment.device: 'tpu' is not one of",
                   "head_model.iris_vertex_ids: expected a list of 2 items",
                   "extra.thing: unknown key", "standin.seed: expected int, got float"]:
        assert needle in msg, needle


def test_missing_required_keys(tmp_path):
    partial = tmp_path / "partial.conf"
    partial.write_text("experiment { name = x, output_root = y, seed = 0, device = cpu }\n")
    with pytest.raises(ConfigError) as info:
        load_config(partial)
    msg = str(info.value)
    assert "head_model.scale: missing required key" in msg
    assert "picture.output: missing required key" in msg


def test_bad_files_and_overrides(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.conf")
    broken = tmp_path / "broken.conf"
    broken.write_text("a { b = \n")
    with pytest.raises(ConfigError, match="broken.conf: cannot parse"):
        load_config(broken)
    with pytest.raises(ConfigError, match="expected section.key=value"):
        load_config(CONFS / "base.conf", ["novalue"])


def test_saved_config_round_trips_and_is_frozen(tmp_path):
    cfg = load_config(CONFS / "base.conf", ["experiment.name=saved"])
    out = save_config(cfg, tmp_path / "run" / "config.conf")
    again = load_config(out)
    assert again.to_dict() == cfg.to_dict()
    assert not list(out.parent.glob(".*tmp*"))
    with pytest.raises(AttributeError):
        cfg.experiment = None
    assert cfg.with_overrides(["experiment.seed=3"]).experiment.seed == 3
    assert cfg.experiment.seed == 0


def test_overrides_apply_before_substitutions_resolve():
    cfg = load_config(CONFS / "embedded.conf", ["synth_db.root=/elsewhere/db"])
    assert cfg.dataset.root == "/elsewhere/db"
    assert cfg.test.driving_flame_params.startswith("/elsewhere/db/")


def test_unresolvable_substitution_is_a_config_error(tmp_path):
    bad = tmp_path / "subst.conf"
    bad.write_text(f'include "{CONFS / "base.conf"}"\nexperiment.name = ${{nowhere.key}}\n')
    with pytest.raises(ConfigError, match="subst.conf"):
        load_config(bad)
