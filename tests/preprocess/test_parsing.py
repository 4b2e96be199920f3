"""Label maps from the face mesh and the matte (pegasus.preprocess.parsing)."""
from __future__ import annotations

import numpy as np
import pytest

from pegasus.data.parts import NUM_SEMANTIC_LABELS, label_id
from pegasus.preprocess.face import FaceMeshTracker
from pegasus.preprocess.matte import SelfieSegmenter, refine_matte
from pegasus.preprocess.parsing import mesh_polygons, parse_face

FEATURES = ("l_brow", "r_brow", "l_eye", "r_eye", "nose", "u_lip", "l_lip")
PRODUCIBLE = {label_id(n) for n in ("background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "nose", "mouth",
                                    "u_lip", "l_lip", "neck", "cloth", "hair")}


def _centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])


def _parse(images: np.ndarray, settings) -> list[np.ndarray]:
    """Label maps of whole frames (mesh found on each frame, shipped matte and parsing settings)."""
    segmenter = SelfieSegmenter(settings.matte.model_selection)
    with FaceMeshTracker(0.5, 0.5, static=True) as tracker:
        return [parse_face(image, refine_matte(image, segmenter(image), settings.matte), tracker(image),
                           settings.parsing) for image in images]


def test_polygons_are_loops_of_the_mesh():
    polygons = mesh_polygons()
    assert len(set(polygons.face_oval)) == len(polygons.face_oval) == 36
    assert len(polygons.left_eye) == len(polygons.right_eye) == 16 and len(polygons.mouth) == 20
    assert {61, 291, 78, 308, 0, 13} <= set(polygons.upper_lip) and {17, 14} <= set(polygons.lower_lip)
    assert not {0, 13} & set(polygons.lower_lip) and not {17, 14} & set(polygons.upper_lip)
    assert all(len(path) == 5 for path in (*polygons.left_brow, *polygons.right_brow))
    assert all(0 <= i < 468 for loop in (polygons.face_oval, polygons.nose, polygons.mouth) for i in loop)


def test_features_land_on_the_known_parts_of_synthetic_faces(synthetic_faces, chain_settings):
    for labels, truth, landmarks in zip(_parse(synthetic_faces.images, chain_settings), synthetic_faces.labels,
                                        synthetic_faces.landmarks):
        assert labels.dtype == np.uint8 and labels.max() < NUM_SEMANTIC_LABELS
        scale = np.linalg.norm(landmarks[36:42].mean(0) - landmarks[42:48].mean(0))
        for name in ("l_eye", "r_eye", "nose"):
            mine, known = labels == label_id(name), truth == label_id(name)
            assert mine.any() and known.any(), name
            offset = np.linalg.norm(_centroid(mine) - _centroid(known)) / scale
            assert offset < 0.25, (name, offset)  # measured: eyes ≤ 0.04, nose ≤ 0.16 inter-ocular distances
        lips = np.isin(labels, [label_id(n) for n in ("u_lip", "l_lip", "mouth")])
        known_lips = np.isin(truth, [label_id(n) for n in ("u_lip", "l_lip", "mouth")])
        assert (lips & known_lips).sum() / (lips | known_lips).sum() > 0.6  # measured 0.73–0.87
        # l_ is the subject's left: the image's right for a face looking at the camera.
        assert _centroid(labels == label_id("l_eye"))[0] > _centroid(labels == label_id("r_eye"))[0]
        assert _centroid(labels == label_id("l_brow"))[0] > _centroid(labels == label_id("r_brow"))[0]


@pytest.mark.real_data
def test_real_label_maps_are_valid_complete_and_stable(real_crops, chain_settings):
    segmenter = SelfieSegmenter(chain_settings.matte.model_selection)
    for clip, data in real_crops.items():
        maps = np.stack([parse_face(crop, refine_matte(crop, segmenter(crop), chain_settings.matte), mesh,
                                    chain_settings.parsing)
                         for crop, mesh in zip(data.crops, data.meshes)])
        assert set(np.unique(maps)) <= PRODUCIBLE, (clip, np.unique(maps))
        for name in (*FEATURES, "skin", "hair"):
            assert (maps == label_id(name)).any((1, 2)).all(), (clip, name)
        # Smallest IoU of consecutive frames of one shot; measured: skin ≥ 0.93, nose ≥ 0.86 (a small
        # region: ~1 px of mesh jitter), hair ≥ 0.87 (d20: dark hair against dark foliage).
        for name, least in (("skin", 0.88), ("nose", 0.78), ("hair", 0.78)):
            region = maps == label_id(name)
            ious = (region[1:] & region[:-1]).sum((1, 2)) / (region[1:] | region[:-1]).sum((1, 2))
            assert ious[data.same_shot].min() > least, (clip, name, ious)


def test_no_foreground_gives_background(synthetic_faces, chain_settings):
    image = synthetic_faces.images[0]
    with FaceMeshTracker(0.5, 0.5, static=True) as tracker:
        mesh = tracker(image)
    labels = parse_face(image, np.zeros(image.shape[:2], np.float32), mesh, chain_settings.parsing)
    assert not labels.any()
