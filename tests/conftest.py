"""Shared pytest fixtures and switches.

`pytorch3d`-marked tests run only in the PyTorch3D environment (`make test-pytorch3d`);
there `PEGASUS_REQUIRE_PYTORCH3D=1` turns a missing PyTorch3D into a failure rather than a
skip, so CI cannot silently lose the parity tests.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = REPO_ROOT.parent / "shared" / "data" / "real"


@pytest.fixture
def pytorch3d():
    """The pytorch3d module, or a skip (a failure under PEGASUS_REQUIRE_PYTORCH3D=1)."""
    try:
        import pytorch3d  # noqa: F401
    except ImportError as err:  # pragma: no cover - depends on the environment
        if os.environ.get("PEGASUS_REQUIRE_PYTORCH3D") == "1":
            pytest.fail(f"PyTorch3D required but not importable: {err}")
        pytest.skip("PyTorch3D not installed (run `make test-pytorch3d`)")
    import pytorch3d

    return pytorch3d


@pytest.fixture
def real_data_dir() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(f"real clips not found at {REAL_DATA}")
    return REAL_DATA


@pytest.fixture(autouse=True)
def _seed_everything():
    import numpy as np
    import torch

    torch.manual_seed(0)
    np.random.seed(0)
    yield
