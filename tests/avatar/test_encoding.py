import math

import pytest
import torch

from pegasus.avatar.encoding import PositionalEncoding


def test_layout_and_values():
    pe = PositionalEncoding(3, 2)
    assert pe.out_dim == 15
    x = torch.tensor([[0.5, -1.0, 2.0]])
    out = pe(x)
    assert out.shape == (1, 15)
    torch.testing.assert_close(out[0, :3], x[0])
    expected = []
    for f in (1.0, 2.0):
        expected += [math.sin(f * v) for v in x[0].tolist()] + [math.cos(f * v) for v in x[0].tolist()]
    torch.testing.assert_close(out[0, 3:], torch.tensor(expected))


def test_identity_without_frequencies_and_shape_check():
    x = torch.randn(2, 5, 3)
    assert torch.equal(PositionalEncoding(3, 0)(x), x)
    assert PositionalEncoding(3, 6)(x).shape == (2, 5, 39)
    with pytest.raises(ValueError, match="expected"):
        PositionalEncoding(3, 2)(torch.randn(4, 2))
