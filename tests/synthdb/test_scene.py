"""Accessory geometry and single-frame renders: parts sit where they belong, labels align."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pegasus.data.parts import NUM_SEMANTIC_LABELS, label_id, part_mask
from pegasus.headmodel import head_model_from_config
from pegasus.synthdb.accessories import GLASSES_STYLES, HAIR_STYLES, HAT_STYLES, glasses_mesh, hair_mesh, hat_mesh
from pegasus.synthdb.people import Variant, sample_population
from pegasus.data.parts import LABEL_COLOURS
from pegasus.synthdb.scene import SceneRenderer, orbit_camera


@pytest.fixture(scope="module")
def renderer(tiny_config_factory, tmp_path_factory):
    cfg = tiny_config_factory(tmp_path_factory.mktemp("scene"))
    settings = cfg.synth_db
    return SceneRenderer(head_model_from_config(cfg), settings)


@pytest.fixture(scope="module")
def target(renderer):
    return sample_population(renderer.settings, renderer.shape_names)[0]


def _face_normals(vertices, faces):
    v = vertices[faces]
    return np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])


@pytest.mark.parametrize("style", sorted(HAIR_STYLES))
def test_hair_lies_over_the_skull_and_faces_outwards(renderer, target, style):
    fit = renderer.head_fit(target)
    mesh = hair_mesh(replace(HAIR_STYLES[style], bun_radius=0.0), fit)  # a bun sits partly in the hair
    assert mesh.faces.min() >= 0 and mesh.faces.max() < len(mesh.vertices)
    assert mesh.uvs.shape == mesh.faces.shape + (2,) and 0 <= mesh.uvs.min() and mesh.uvs.max() <= 1
    assert mesh.joint == "neck" and set(mesh.labels) == {label_id("hair")}
    offsets = mesh.vertices - fit.centre
    radius = np.linalg.norm(offsets, axis=1)
    polar = np.arccos(np.clip(offsets[:, 1] / radius, -1, 1))
    azimuth = np.arctan2(offsets[:, 0], offsets[:, 2])
    on_skull = polar < np.radians(90)  # the part that follows the skull (not hanging or buns)
    assert np.all(radius[on_skull] >= fit.skull_radius(polar[on_skull], azimuth[on_skull]) + 0.005)
    normals = _face_normals(mesh.vertices, mesh.faces)
    area = np.linalg.norm(normals, axis=1)
    outward = (normals * (mesh.vertices[mesh.faces].mean(1) - fit.centre)).sum(1)
    big = area > 1e-8
    assert (outward[big] > 0).mean() > 0.9
    assert mesh.vertices[:, 1].max() > fit.top_y  # covers the crown


@pytest.mark.parametrize("style", sorted(HAT_STYLES))
def test_hats_sit_on_the_head_above_the_brows(renderer, target, style):
    fit = renderer.head_fit(target)
    mesh = hat_mesh(HAT_STYLES[style], fit, HAIR_STYLES["afro"])
    crown_top = mesh.vertices[:, 1].max()
    assert crown_top > fit.top_y + HAIR_STYLES["afro"].thickness
    front = mesh.vertices[(np.abs(mesh.vertices[:, 0]) < 0.05) & (mesh.vertices[:, 2] > fit.centre[2])]
    assert front[:, 1].min() > fit.brow_y  # the brim line stays above the brows


@pytest.mark.parametrize("style", sorted(GLASSES_STYLES))
def test_eyeglasses_are_in_front_of_the_eyes(renderer, target, style):
    fit = renderer.head_fit(target)
    mesh = glasses_mesh(GLASSES_STYLES[style], fit)
    lids = fit.vertices[np.isin(fit.regions, [fit.region_index["left_eyelid"], fit.region_index["right_eyelid"]])]
    style_width = GLASSES_STYLES[style].half_width
    front = mesh.vertices[np.abs(np.abs(mesh.vertices[:, 0]) - fit.joints[3, 0]) < 0.8 * style_width]  # rims
    assert front[:, 2].min() > lids[:, 2].max()
    for eye in fit.joints[3:5]:
        near = np.abs(front[:, 0] - eye[0]) < 0.02
        assert front[near, 1].min() < eye[1] < front[near, 1].max()  # the rim surrounds the eye height
    assert np.abs(mesh.vertices[:, 0]).max() > np.abs(fit.skull_vertices[:, 0]).max()  # temples clear the head


def test_front_render_puts_parts_where_they_belong(renderer, target):
    person = target.with_part("eyeglasses", Variant("round", "black"))
    scene = renderer.scene(person)
    frames = renderer.render(scene, np.zeros((1, renderer.model.n_expr)), np.zeros((1, 15)),
                             orbit_camera(renderer.settings, 0.0, 128), np.array([0.0, 0.0, -1.0]),
                             categories=("eyebrows", "eyes", "hair", "eyeglasses"))
    labels = frames.labels[0]
    rows = np.arange(128)[:, None] * np.ones((1, 128))
    cols = np.ones((128, 1)) * np.arange(128)[None, :]

    def centre(mask):
        assert mask.any()
        return rows[mask].mean(), cols[mask].mean()

    brow_l, brow_r = centre(labels == label_id("l_brow")), centre(labels == label_id("r_brow"))
    eye_l, eye_r = centre(labels == label_id("l_eye")), centre(labels == label_id("r_eye"))
    assert brow_l[0] < eye_l[0] and brow_r[0] < eye_r[0]  # brows above the eyes (rows grow downwards)
    assert brow_l[1] > 64 > brow_r[1] and eye_l[1] > 64 > eye_r[1]  # l_ = subject's left = image right
    hair = centre(labels == label_id("hair"))
    assert hair[0] < brow_l[0]
    glasses = labels == label_id("eyeglasses")
    assert centre(glasses)[0] == pytest.approx(eye_l[0], abs=6)
    assert labels[(frames.masks[0] < 0.5)].max() == 0 and labels[frames.masks[0] == 1].min() > 0
    for name, soft in frames.part_masks.items():
        hard, soft = part_mask(labels, name), soft[0]
        assert np.all(soft[hard] > 0.2) and hard[soft == 1.0].all(), name
    assert np.all(frames.images[0][frames.masks[0] == 0] == 1.0)  # white background


def test_label_palette_has_a_colour_per_label():
    assert LABEL_COLOURS.shape == (NUM_SEMANTIC_LABELS, 3)
    assert len({tuple(c) for c in LABEL_COLOURS}) == NUM_SEMANTIC_LABELS
