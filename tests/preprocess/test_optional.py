"""Optional backends (pegasus.preprocess.optional): clear errors when their files or packages
are missing, and their pre/post-processing around a stand-in network."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from pegasus.data.images import DataError
from pegasus.preprocess import optional
from pegasus.preprocess.analysis import FrameAnalyser
from pegasus.preprocess.optional import (BisenetParsing, FaceAlignmentLandmarks, MissingBackendError, ModnetMatting,
                                         SamAccessories)


class _StandInNet:
    """Replaces an OpenCV DNN net: records the input blob, returns ``respond(blob)``."""

    def __init__(self, respond):
        self.respond, self.blob = respond, None

    def setInput(self, blob):  # noqa: N802 (OpenCV's name)
        self.blob = blob

    def forward(self):
        return self.respond(self.blob)


@pytest.fixture
def weights_file(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"stand-in")
    return path


@pytest.mark.parametrize("backend, key, source", [
    (ModnetMatting, "preprocess.matte.modnet_weights", "github.com/ZHKKKe/MODNet"),
    (BisenetParsing, "preprocess.parsing.bisenet_weights", "79999_iter.pth"),
])
def test_missing_weights_name_the_key_and_the_source(backend, key, source, tmp_path):
    with pytest.raises(MissingBackendError) as err:
        backend(None)
    assert f"{key} is null" in str(err.value) and source in str(err.value)
    missing = tmp_path / "nowhere.onnx"
    with pytest.raises(MissingBackendError) as err:
        backend(str(missing))
    assert str(missing) in str(err.value) and key in str(err.value) and source in str(err.value)


@pytest.mark.parametrize("backend", [ModnetMatting, BisenetParsing])
def test_a_file_that_is_not_onnx_is_named(backend, weights_file):
    with pytest.raises(MissingBackendError, match=f"{weights_file}: .* is not an ONNX model"):
        backend(str(weights_file))


def test_modnet_normalises_to_minus_one_one_and_resizes_back(weights_file, monkeypatch):
    net = _StandInNet(lambda blob: (blob[:, :1] + 1) / 2)  # alpha = the red channel back in [0, 1]
    monkeypatch.setattr(optional.cv2.dnn, "readNetFromONNX", lambda path: net)
    rgb = np.zeros((100, 70, 3), np.uint8)
    rgb[:, 35:, 0] = 255
    alpha = ModnetMatting(str(weights_file))(rgb)
    assert net.blob.shape == (1, 3, 128, 128) and net.blob.min() == -1 and net.blob.max() == 1
    assert alpha.shape == (100, 70) and alpha[:, :30].max() < 0.05 and alpha[:, 40:].min() > 0.95


def test_bisenet_labels_are_the_argmax_at_the_input_size(weights_file, monkeypatch):
    def logits(blob):
        out = np.zeros((1, 19, 512, 512), np.float32)
        out[0, 17, :256] = 1.0  # hair in the top half
        out[0, 1, 256:] = 1.0  # skin in the bottom half
        return out

    net = _StandInNet(logits)
    monkeypatch.setattr(optional.cv2.dnn, "readNetFromONNX", lambda path: net)
    labels = BisenetParsing(str(weights_file))(np.full((300, 300, 3), 128, np.uint8))
    assert net.blob.shape == (1, 3, 512, 512) and abs(float(net.blob.mean()) - (0.502 - 0.449) / 0.226) < 0.05
    assert labels.shape == (300, 300) and labels.dtype == np.uint8
    assert (labels[:140] == 17).all() and (labels[160:] == 1).all()


@pytest.mark.skipif(importlib.util.find_spec("face_alignment") is not None, reason="face-alignment is installed")
def test_face_alignment_without_the_package_says_how_to_install_it():
    with pytest.raises(MissingBackendError, match="pip install face-alignment"):
        FaceAlignmentLandmarks("cpu")


def test_sam_needs_a_checkpoint_and_the_package(weights_file):
    with pytest.raises(MissingBackendError, match="preprocess.accessories.sam_checkpoint is null.*segment-anything"):
        SamAccessories(None, "vit_b", ["eyeglasses"], "cpu")
    if importlib.util.find_spec("segment_anything") is None:
        with pytest.raises(MissingBackendError, match="'segment_anything'.*pip install segment-anything"):
            SamAccessories(str(weights_file), "vit_b", ["eyeglasses"], "cpu")


def test_the_chain_refuses_a_backend_without_its_file(chain_config, tmp_path):

    cfg = chain_config(tmp_path, "preprocess.parsing.backend=bisenet")
    with pytest.raises(DataError, match="preprocess.parsing.bisenet_weights is null"):
        FrameAnalyser(cfg.preprocess)


# --- DECA initialisation ------------------------------------------------------------------

def _deca_codes(head_model, count: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Plausible DECA codes (shape, exp, pose, cam) of ``count`` frames of one person."""
    rng = np.random.default_rng(seed)
    shape = np.zeros(100)
    shape[:20] = rng.normal(size=20)
    pose = np.concatenate([rng.normal(scale=[0.15, 0.35, 0.1], size=(count, 3)),
                           np.abs(rng.normal(scale=[0.15, 0.02, 0.02], size=(count, 3)))], 1)
    cam = np.stack([rng.uniform(7.0, 9.0, count), rng.normal(scale=0.01, size=count),
                    rng.normal(scale=0.01, size=count) + 0.01], 1)
    return {"shape": np.repeat(shape[None], count, 0), "exp": rng.normal(scale=0.5, size=(count, 50)),
            "pose": pose, "cam": cam}


def _orthographic_landmarks(head_model, codes: dict[str, np.ndarray], tform: np.ndarray, kappa: float) -> np.ndarray:
    """(T, 70, 2) pixels: DECA's orthographic projection of the head model (global rotation in the
    global slot, FLAME metres = head units / kappa), drawn in the frame through ``tform``."""
    import torch

    from pegasus.headmodel.lbs import POSE_SLOTS

    pose = np.zeros((len(codes["cam"]), 15))
    pose[:, POSE_SLOTS["global"]], pose[:, POSE_SLOTS["jaw"]] = codes["pose"][:, :3], codes["pose"][:, 3:]
    f32 = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    with torch.no_grad():
        points = head_model(f32(codes["shape"][:, :head_model.n_shape]), f32(codes["exp"][:, :head_model.n_expr]),
                            f32(pose)).landmarks.double().numpy() / kappa
    s, shift = codes["cam"][:, None, :1], codes["cam"][:, None, 1:]
    normalised = s * (points[..., :2] + shift) * np.array([1.0, -1.0])
    inverse = np.linalg.inv(tform)
    pixels = 112.0 * (normalised + 1.0)
    return np.einsum("tij,tlj->tli", inverse[:, :2, :2], pixels) + inverse[:, None, :2, 2] + 0.5


@pytest.fixture(scope="module")
def deca_head(chain_config, tmp_path_factory):
    from pegasus.headmodel import head_model_from_config

    cfg = chain_config(tmp_path_factory.mktemp("deca"), "head_model.n_shape=100", "head_model.n_expr=50")  # DECA: FLAME's sizes
    return cfg, head_model_from_config(cfg)


@pytest.mark.parametrize("cropped", [True, False])
def test_deca_codes_convert_to_the_orthographic_geometry(deca_head, tmp_path, cropped):
    import torch

    from pegasus.headmodel.lbs import POSE_SLOTS
    from pegasus.preprocess.tracking import project_landmarks

    cfg, head_model = deca_head
    size, count, kappa, focal = 256, 4, cfg.head_model.scale, cfg.preprocess.tracking.focal
    codes = _deca_codes(head_model, count)
    if cropped:  # DECA's crop around a face box of ~100 px, moving over the frames
        boxes = np.stack([np.linspace(70, 90, count), np.linspace(60, 50, count)], 1)
        box_landmarks = boxes[:, None] + 0.5 + np.array([[0.0, 0.0], [100.0, 110.0]])
        tform = optional.deca_crop_transforms(np.repeat(box_landmarks, 34, 1))
        codes["tform"] = tform
    else:  # the whole frame resized to 224² (DECA's iscrop=False)
        codes["cam"][:, 0] *= 0.5  # the face covers about half the frame
        tform = np.repeat(np.diag([223 / (size - 1), 223 / (size - 1), 1.0])[None], count, 0)
    expected = _orthographic_landmarks(head_model, codes, tform, kappa)
    path = tmp_path / "codes.npz"
    np.savez(path, **codes)
    read = optional.read_deca_codes(path, count, size)
    np.testing.assert_allclose(read.tform, tform, atol=1e-12)
    face_size = np.ptp(expected[:, :68], 1).max(1)
    assert (face_size > 60).all() and (expected > 0).all() and (expected < size).all()
    for scale, tolerance in ((1.0, 0.02), (50.0, 0.001)):  # a far camera with a long lens is orthographic
        initial = optional.deca_to_initial(read, head_model, size, scale * focal, kappa)
        assert np.all(initial.pose[:, POSE_SLOTS["global"]] == 0)
        np.testing.assert_array_equal(initial.pose[:, POSE_SLOTS["neck"]], codes["pose"][:, :3])
        np.testing.assert_array_equal(initial.pose[:, POSE_SLOTS["jaw"]], codes["pose"][:, 3:])
        np.testing.assert_array_equal(initial.expression, codes["exp"])
        np.testing.assert_allclose(initial.shape, codes["shape"][0], atol=1e-12)
        f32 = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
        with torch.no_grad():
            points = head_model(f32(initial.shape), f32(initial.expression), f32(initial.pose)).landmarks
            uv = project_landmarks(points, f32(initial.translation), f32([-scale * focal, scale * focal, 0.5, 0.5]),
                                   size).double().numpy()
        error = np.linalg.norm(uv - expected, axis=-1)
        assert (error.mean(1) < tolerance * face_size).all(), (scale, error.mean(1) / face_size)


def test_deca_crop_is_decas_square_around_the_landmarks():
    landmarks = np.array([[[10.5, 20.5], [110.5, 100.5]] * 34, [[np.nan, 0.0]] * 68])
    tform = optional.deca_crop_transforms(landmarks)
    side = 1.25 * 1.1 * (100 + 80) / 2
    corners = tform[0] @ np.array([[60 - side / 2, 60 + side / 2], [60 - side / 2, 60 + side / 2], [1, 1]])
    np.testing.assert_allclose(corners[:2], [[0, 223], [0, 223]], atol=1e-9)
    assert np.isnan(tform[1]).all()


def test_deca_codes_with_nan_rows_leave_those_frames_to_the_tracker(deca_head, tmp_path):
    cfg, head_model = deca_head
    codes = _deca_codes(head_model, 3)
    codes["cam"][1] = np.nan
    path = tmp_path / "codes.npz"
    np.savez(path, **codes)
    initial = optional.deca_to_initial(optional.read_deca_codes(path, 3, 256), head_model, 256, 3.0, 4.0)
    for values in (initial.expression, initial.pose, initial.translation):
        assert np.isnan(values[1]).all() and np.isfinite(values[[0, 2]]).all()


@pytest.mark.parametrize("arrays, message", [
    (dict(shape=np.zeros((3, 100)), exp=np.zeros((3, 50)), pose=np.zeros((3, 6))), "no array cam; a DECA codes file"),
    (dict(shape=np.zeros((2, 100)), exp=np.zeros((3, 50)), pose=np.zeros((3, 6)), cam=np.ones((3, 3))),
     r"shape has shape \(2, 100\); expected 3 frames"),
    (dict(shape=np.zeros((3, 100)), exp=np.zeros((3, 50)), pose=np.zeros((3, 3)), cam=np.ones((3, 3))),
     r"pose has shape \(3, 3\)"),
    (dict(shape=np.zeros((3, 100)), exp=np.zeros((3, 50)), pose=np.zeros((3, 6)), cam=np.ones((3, 3)),
          tform=np.repeat(np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])[None], 3, 0)), r"tform of frames \[0, 1, 2\]"),
])
def test_bad_deca_codes_name_the_file(tmp_path, arrays, message):
    path = tmp_path / "codes.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=f"{path}: {message}"):
        optional.read_deca_codes(path, 3, 256)
    text = tmp_path / "codes.txt"
    text.write_text("no npz")
    with pytest.raises(DataError, match=f"{text}: not a readable .npz of DECA codes"):
        optional.read_deca_codes(text, 3, 256)


def test_deca_initialisation_names_what_is_missing(tmp_path, weights_file):
    settings = optional.InitSettings("deca", None, None)
    with pytest.raises(MissingBackendError, match="needs the FLAME head model.*head_model.path is null"):
        optional.DecaInitialiser(settings, None, ["talk"], "cpu")
    with pytest.raises(MissingBackendError, match="preprocess.tracking.deca_model is null.*deca_model.tar"):
        optional.DecaInitialiser(settings, "flame.pkl", ["talk"], "cpu")
    missing = tmp_path / "deca_model.tar"
    with pytest.raises(MissingBackendError, match=f"{missing}: DECA initialisation weights not found"):
        optional.DecaInitialiser(optional.InitSettings("deca", str(missing), None), "flame.pkl", ["talk"], "cpu")
    if importlib.util.find_spec("decalib") is None:
        with pytest.raises(MissingBackendError, match="'decalib.models.encoders'.*github.com/yfeng95/DECA"):
            optional.DecaInitialiser(optional.InitSettings("deca", str(weights_file), None), "flame.pkl", ["a"], "cpu")
    codes = optional.InitSettings("deca", None, str(tmp_path / "codes.npz"))
    with pytest.raises(MissingBackendError, match="names one file for 2 videos; put {video} in the path"):
        optional.DecaInitialiser(codes, "flame.pkl", ["a", "b"], "cpu")
    per_video = optional.InitSettings("deca", None, str(tmp_path / "{video}.npz"))
    with pytest.raises(MissingBackendError, match=f"{tmp_path / 'b.npz'}: DECA initialisation of video 'b'"):
        (tmp_path / "a.npz").write_bytes(b"")
        optional.DecaInitialiser(per_video, "flame.pkl", ["a", "b"], "cpu")


def test_deca_encoder_runs_the_checkpoint_on_decas_crops(tmp_path, monkeypatch):
    import types

    import torch

    class Encoder(torch.nn.Module):
        """Stands in for decalib's ResnetEncoder: outputs the crop's mean brightness, then 1, 2, ..."""

        def __init__(self, outsize):
            super().__init__()
            self.offset = torch.nn.Parameter(torch.arange(float(outsize)))
            self.inputs = []

        def forward(self, images):
            self.inputs.append(images)
            return images.mean((1, 2, 3))[:, None] + self.offset

    sizes = {"shape": 100, "tex": 50, "exp": 50, "pose": 6, "cam": 3, "light": 27}
    model_cfg = {f"n_{k}": v for k, v in sizes.items()} | {"param_list": list(sizes)}
    built = []
    modules = {"decalib.models.encoders": types.SimpleNamespace(ResnetEncoder=lambda outsize: built.append(
        Encoder(outsize)) or built[-1]), "decalib.utils.config": types.SimpleNamespace(
        cfg=types.SimpleNamespace(model=model_cfg))}
    monkeypatch.setattr(optional, "_require_package", lambda module, what, install: modules[module])
    checkpoint = tmp_path / "deca_model.tar"
    torch.save({"E_flame": {"offset": torch.arange(236.0) * 2}}, checkpoint)
    encoder = optional.DecaEncoder(str(checkpoint), "cpu")
    frames = np.zeros((3, 256, 256, 3), np.uint8)
    frames[:, 80:180, 60:160] = 255  # the face box, white
    landmarks = np.repeat(np.array([[[60.0, 80.0], [160.0, 180.0]] * 34]), 3, 0)
    landmarks[1] = np.nan
    codes = encoder(enumerate(frames), landmarks)
    (images,) = built[0].inputs
    assert images.shape == (2, 3, 224, 224) and images.dtype == torch.float32
    inside = images[0, :, 112 - 60:112 + 60, 112 - 60:112 + 60]
    assert float(inside.min()) == 1.0 and float(images[0, :, :5].max()) == 0.0  # DECA's margin around the box
    mean = float(images[0].mean())
    np.testing.assert_allclose(codes.cam[[0, 2]], mean + 2 * np.arange(206, 209)[None].repeat(2, 0), atol=1e-5)
    np.testing.assert_allclose(codes.pose[0], mean + 2 * np.arange(200, 206), atol=1e-5)
    np.testing.assert_allclose(codes.exp[2], mean + 2 * np.arange(150, 200), atol=1e-5)
    assert np.isnan(codes.shape[1]).all() and np.isnan(codes.tform[1]).all()
    np.testing.assert_array_equal(codes.tform[0], optional.deca_crop_transforms(landmarks[:1])[0])


def test_the_stage_key_follows_the_deca_files(tmp_path):
    path = tmp_path / "talk.npz"
    settings = optional.InitSettings("deca", None, str(tmp_path / "{video}.npz"))
    missing = settings.key(["talk"])
    path.write_bytes(b"one")
    first = settings.key(["talk"])
    path.write_bytes(b"other")
    assert missing != first != settings.key(["talk"])
    assert optional.InitSettings("none", None, str(path)).key(["talk"]) == {"init_backend": "none"}
