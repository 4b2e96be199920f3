"""Image operations of the part-swap synthesis on small generated frames."""
from __future__ import annotations

import numpy as np
import pytest

from pegasus.data import parts
from pegasus.synth import quality
from pegasus.synth.align import align_render, translation
from pegasus.synth.compose import FrameLayers, compose_frame, grow, inpaint
from pegasus.synth.head import fit_skin_shading, shade_skin

SIZE = 32
SKIN, HAIR, BROW = parts.label_id("skin"), parts.label_id("hair"), parts.label_id("l_brow")
SKIN_IDS = np.array([SKIN])
SKIN_RGB = np.array([0.9, 0.7, 0.6], np.float32)


def _frame(part_box, part_label, part_rgb, skin_rgb=SKIN_RGB):
    """A square face of skin on white with one rectangular part: rgb, mask, labels."""
    rgb = np.ones((SIZE, SIZE, 3), np.float32)
    labels = np.zeros((SIZE, SIZE), np.int64)
    rgb[4:28, 4:28], labels[4:28, 4:28] = skin_rgb, SKIN
    y0, y1, x0, x1 = part_box
    rgb[y0:y1, x0:x1], labels[y0:y1, x0:x1] = part_rgb, part_label
    return rgb, (labels > 0).astype(np.float32), labels


def _layers(target, render, category="eyebrows", **extra):
    return FrameLayers(*target, *render, parts.part_mask(target[2], category), parts.part_mask(render[2], category),
                       **extra)


def _compose(layers, method="face_part", **options):
    kwargs = dict(grow_px=1, inpaint_px=3, feather_px=0.0, colour="render", fill_label=SKIN, skin_labels=SKIN_IDS)
    kwargs.update(options)
    return compose_frame(layers, method, **kwargs)


def test_face_part_removes_the_targets_part_and_changes_nothing_outside_its_region():
    target = _frame((8, 11, 8, 20), BROW, (0.2, 0.1, 0.05))
    render = _frame((12, 14, 10, 22), BROW, (0.9, 0.8, 0.2), skin_rgb=(0.5, 0.4, 0.3))
    layers = _layers(target, render)
    out = _compose(layers)
    old_only = layers.old_part & ~grow(layers.new_part, 1)
    # the old brow is gone: its pixels are skin-coloured, labelled skin
    np.testing.assert_allclose(out.image[old_only], np.broadcast_to(SKIN_RGB, out.image[old_only].shape), atol=0.02)
    assert (out.labels[old_only] == SKIN).all()
    # the new brow is pasted with the render's colour and labels
    np.testing.assert_allclose(out.image[layers.new_part], np.broadcast_to([0.9, 0.8, 0.2], (24, 3)), atol=1e-5)
    assert (out.labels[layers.new_part] == BROW).all()
    # nothing changes outside the grown part region
    outside = ~grow(layers.old_part | layers.new_part, 1)
    np.testing.assert_array_equal(out.image[outside], target[0][outside])
    np.testing.assert_array_equal(out.labels[outside], target[2][outside])


@pytest.mark.parametrize("method", ["face_part", "overlay", "bald"])
def test_composites_keep_labels_and_masks_consistent(method):
    target = _frame((4, 9, 4, 28), HAIR, (0.1, 0.1, 0.1))
    render = _frame((2, 8, 6, 26), HAIR, (0.8, 0.5, 0.2))
    extra = {}
    if method == "bald":
        cover = np.zeros((SIZE, SIZE), np.float32)
        cover[4:28, 4:28] = 1.0
        extra = {"bald_rgb": np.full((SIZE, SIZE, 3), 0.8, np.float32), "bald_cover": cover}
    out = _compose(_layers(target, render, "hair", **extra), method, feather_px=0.7)
    assert ((out.labels > 0) == (out.mask >= 0.5)).all()
    assert (out.labels[out.part >= 0.5] == HAIR).all()
    assert out.image.min() >= 0.0 and out.image.max() <= 1.0


def test_bald_puts_the_shaded_scalp_where_the_head_model_covers_and_the_background_elsewhere():
    target = _frame((2, 9, 4, 28), HAIR, (0.1, 0.1, 0.1))
    target[0][target[2] == 0] = 0.6  # a grey room behind the person
    target[0][2:4], target[1][2:4], target[2][2:4] = 0.1, 1.0, HAIR  # hair above the head model
    render = _frame((30, 31, 30, 31), HAIR, (0.8, 0.5, 0.2))  # a one-pixel new part, far away
    cover = np.zeros((SIZE, SIZE), np.float32)
    cover[4:28, 4:28] = 1.0
    scalp = np.full((SIZE, SIZE, 3), 0.77, np.float32)
    out = _compose(_layers(target, render, "hair", bald_rgb=scalp, bald_cover=cover), "bald")
    np.testing.assert_allclose(out.image[4:9, 4:28], 0.77, atol=1e-6)
    assert (out.labels[4:9, 4:28] == SKIN).all()
    np.testing.assert_allclose(out.image[2:4, 4:28], 0.6, atol=0.01)  # inpainted from the background
    assert (out.labels[2:4, 4:28] == 0).all() and (out.mask[2:4, 4:28] == 0).all()


def test_own_outline_fills_the_targets_part_with_the_renders_colours():
    eye = parts.label_id("l_eye")
    target = _frame((12, 15, 10, 18), eye, (0.95, 0.95, 0.95))
    render = _frame((12, 15, 11, 16), eye, (0.2, 0.4, 0.8))
    layers = _layers(target, render, "eyes")
    out = _compose(layers, own_outline=True)
    np.testing.assert_array_equal(out.labels, target[2])  # the target's outline and labels stay
    filled = np.broadcast_to([0.2, 0.4, 0.8], (3, 8, 3))
    np.testing.assert_allclose(out.image[12:15, 10:18], filled, atol=0.02)
    untouched = ~layers.old_part
    np.testing.assert_array_equal(out.image[untouched], target[0][untouched])


def test_inpainting_draws_only_on_its_source_pixels():
    rgb = np.ones((SIZE, SIZE, 3), np.float32) * SKIN_RGB
    rgb[:, :10] = 0.0  # black hair on the left
    region = np.zeros((SIZE, SIZE), bool)
    region[10:20, 10:14] = True
    skin = np.ones((SIZE, SIZE), bool)
    skin[:, :10] = False
    filled = inpaint(rgb, region, 3, source=skin & ~region)
    np.testing.assert_allclose(filled[region], np.broadcast_to(SKIN_RGB, filled[region].shape), atol=0.01)
    assert filled[region].min() > 0.5  # no black pulled in
    leaky = inpaint(rgb, region, 3)
    assert leaky[region].min() < 0.5  # without the source, the hair bleeds in


def test_reshade_pastes_the_given_colours():
    target = _frame((18, 22, 13, 19), parts.label_id("nose"), (0.7, 0.5, 0.4))
    render = _frame((18, 23, 14, 18), parts.label_id("nose"), (0.3, 0.2, 0.1))
    shaded = np.full((SIZE, SIZE, 3), 0.55, np.float32)
    layers = _layers(target, render, "nose", reshaded_rgb=shaded)
    out = _compose(layers, colour="reshade")
    np.testing.assert_allclose(out.image[layers.new_part], 0.55, atol=1e-6)
    with pytest.raises(ValueError, match="reshade"):
        _compose(_layers(target, render, "nose"), colour="reshade")


def test_skin_shading_fit_recovers_a_linear_shading():
    rng = np.random.default_rng(0)
    normals = rng.normal(size=(16, 16, 3)).astype(np.float32)
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
    truth = np.array([[0.5, 0.4, 0.3], [0.1, 0.0, 0.05], [-0.1, 0.05, 0.0], [0.2, 0.1, 0.1]], np.float32)
    rgb = shade_skin(normals, truth)
    fitted = fit_skin_shading(rgb, normals, np.ones((16, 16), bool))
    np.testing.assert_allclose(fitted, truth, atol=1e-4)
    assert fit_skin_shading(rgb, normals, np.zeros((16, 16), bool)) is None


def test_alignment_shifts_each_group_by_its_landmarks():
    rgb = np.ones((SIZE, SIZE, 3), np.float32)
    labels = np.zeros((SIZE, SIZE), np.int64)
    rgb[10, 5], labels[10, 5] = 0.0, BROW   # left group's dot
    rgb[10, 25], labels[10, 25] = 0.0, BROW  # right group's dot
    render_lmk = np.array([[5.5, 10.5], [25.5, 10.5]])
    target_lmk = np.array([[7.5, 12.5], [24.5, 9.5]])
    np.testing.assert_allclose(translation(render_lmk[:1], target_lmk[:1]), [[1, 0, 2], [0, 1, 2]])
    _, warped = align_render([rgb, labels], render_lmk, target_lmk, [(0, 1), (1, 2)])
    assert warped[12, 7] == BROW and warped[9, 24] == BROW
    assert (warped == BROW).sum() == 2
    same = align_render([rgb, labels], render_lmk, target_lmk, [])
    assert same[0] is rgb


def test_quality_rules():
    assert quality.part_missing(np.zeros((8, 8), bool), 0.0)
    small = np.zeros((10, 10), bool)
    small[0, 0] = True
    assert quality.part_missing(small, 0.02) and not quality.part_missing(small, 0.01)
    # relative areas: a mouth twice as open with the target's is no jump; a vanished one is
    assert quality.area_jumps([10, 20, 10, 1], [10, 20, 10, 10], 0.5) == [False, False, False, True]
    target = np.full((16, 16, 3), 0.5, np.float32)
    target[::2] = 0.2
    render = np.full((16, 16, 3), 0.9, np.float32)
    region = np.ones((16, 16), bool)
    assert not quality.blend_failed(target.copy(), target, render, region)
    assert quality.blend_failed(render.copy(), target, render, region)
    assert quality.blend_failed(target, target, render, np.zeros((16, 16), bool))
