"""The preprocess config section (pegasus.preprocess.settings)."""
from __future__ import annotations

import pytest

from pegasus.config import ConfigError


def test_shipped_defaults_are_usable(chain_settings):
    assert chain_settings.image_size == 512 and chain_settings.problems() == []
    assert chain_settings.video_suffixes[0] == ".mp4"


@pytest.mark.parametrize("override, key", [
    ("preprocess.crop.scale=0", "preprocess.crop.scale"),
    ("preprocess.max_frames=0", "preprocess.max_frames"),
    ("preprocess.parsing.foreground_threshold=1.5", "preprocess.parsing.foreground_threshold"),
    ("preprocess.accessories.worn=[earrings]", "preprocess.accessories.worn"),
])
def test_bad_values_name_the_key(chain_config, tmp_path, override, key):
    with pytest.raises(ConfigError, match=key):
        chain_config(tmp_path, override).preprocess


def test_schema_rejects_an_unknown_backend(chain_config, tmp_path):
    with pytest.raises(ConfigError, match="command line: preprocess.matte.backend=rembg: must be one of"):
        chain_config(tmp_path, "preprocess.matte.backend=rembg")
