import pytest
import torch
from smplx.lbs import batch_rodrigues
from smplx.lbs import lbs as smplx_lbs

from pegasus.headmodel.flame_file import load_head_model_file, save_head_model_npz
from pegasus.headmodel.lbs import (
    POSE_SLOTS,
    axis_angle_to_matrix,
    lbs,
    pose_feature,
    skin_points,
    with_ghost_bone,
)
from pegasus.headmodel.model import HeadModel


def test_axis_angle_matches_smplx_and_is_stable_at_zero():
    aa = torch.cat([torch.randn(64, 3), torch.zeros(1, 3), torch.full((1, 3), 1e-9)]).double()
    torch.testing.assert_close(axis_angle_to_matrix(aa), batch_rodrigues(aa), atol=1e-7, rtol=0)
    rot = axis_angle_to_matrix(aa)
    torch.testing.assert_close(rot @ rot.transpose(-1, -2), torch.eye(3, dtype=aa.dtype).expand_as(rot))
    aa.requires_grad_(True)
    axis_angle_to_matrix(aa).sum().backward()
    assert torch.isfinite(aa.grad).all()


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-7), (torch.float32, 1e-5)])
def test_lbs_agrees_with_smplx(tmp_path, flame_like, dtype, tol):
    data = load_head_model_file(save_head_model_npz(tmp_path / "m.npz", {**flame_like(400, 30, 20), "n_shape": 30}), scale=4.0)
    t = lambda a: torch.as_tensor(a, dtype=dtype)  # noqa: E731
    b = 5
    shape, expr = torch.randn(b, 30, dtype=dtype), torch.randn(b, 20, dtype=dtype)
    pose = torch.randn(b, 15, dtype=dtype) * 0.4
    parents = torch.as_tensor(data.parents)
    ours = lbs(shape, expr, pose, t(data.v_template), t(data.shapedirs), t(data.exprdirs), t(data.posedirs),
               t(data.j_regressor), parents, t(data.lbs_weights))
    verts, joints = smplx_lbs(
        torch.cat([shape, expr], 1), pose, t(data.v_template), torch.cat([t(data.shapedirs), t(data.exprdirs)], 2),
        t(data.posedirs).reshape(-1, 36).T, t(data.j_regressor), parents, t(data.lbs_weights))
    assert (ours.vertices - verts).abs().max() < tol
    assert (ours.joints - joints).abs().max() < tol


def test_pose_feature_layout_and_ghost_bone():
    pose = torch.zeros(1, 15)
    pose[0, POSE_SLOTS["jaw"]] = torch.tensor([0.3, 0.0, 0.0])
    feature = pose_feature(axis_angle_to_matrix(pose.reshape(1, 5, 3)))
    assert feature.shape == (1, 36)
    assert feature[0, :9].abs().max() == 0 and feature[0, 18:].abs().max() == 0  # only the jaw block
    assert feature[0, 9:18].abs().max() > 0.1
    transforms = torch.randn(2, 5, 4, 4)
    ghost = with_ghost_bone(transforms)
    assert ghost.shape == (2, 6, 4, 4) and torch.equal(ghost[:, 0], torch.eye(4).expand(2, 4, 4))
    pts = torch.randn(2, 7, 3)
    weights = torch.zeros(7, 6)
    weights[:, 0] = 1
    torch.testing.assert_close(skin_points(pts, weights, ghost), pts)


def test_head_model_translation_landmarks_and_canonical_state(tmp_path, flame_like):
    data = load_head_model_file(save_head_model_npz(tmp_path / "m.npz", {**flame_like(200, 10, 6), "n_shape": 10}), scale=4.0)
    model = HeadModel(data, n_shape=10, n_expr=6)
    pose = torch.randn(3, 15) * 0.2
    shift = torch.tensor([[0.1, -0.2, 0.3]]).expand(3, 3)
    base, moved = model(pose=pose), model(pose=pose, translation=shift)
    torch.testing.assert_close(moved.vertices, base.vertices + shift[:, None])
    torch.testing.assert_close(moved.landmarks, base.landmarks + shift[:, None])
    # translation is part of the transforms: skinning the rest mesh reproduces the output
    rest = base.shaped_vertices + torch.einsum("bp,vcp->bvc", base.pose_feature, model.posedirs)
    torch.testing.assert_close(skin_points(rest, model.lbs_weights, moved.transforms), moved.vertices,
                               atol=1e-5, rtol=0)
    # landmarks are barycentric combinations of their face's vertices
    f = model.faces[model.lmk_faces_idx[4]]
    expected = (base.vertices[:, f] * model.lmk_bary_coords[4][None, :, None]).sum(1)
    torch.testing.assert_close(base.landmarks[:, 4], expected)
    canon = model.canonical_pose(0.4)
    assert canon[POSE_SLOTS["jaw"]].tolist() == pytest.approx([0.4, 0, 0]) and canon.abs().sum() == pytest.approx(0.4)
    torch.testing.assert_close(model.canonical_expression(torch.tensor([[1.0, 3.0], [3.0, 5.0]])), torch.tensor([2.0, 4.0]))
    with pytest.raises(ValueError, match="pose: expected"):
        model(pose=torch.zeros(3, 14))


def test_mean_pose_and_head_turns_in_euler_angles():
    import numpy as np
    from scipy.spatial.transform import Rotation

    from pegasus.headmodel.lbs import HEAD_EULER, POSE_SLOTS, mean_pose, turn_head

    euler = np.radians([[10.0, -4.0, 2.0], [-20.0, 6.0, 0.0], [4.0, 1.0, -2.0]])
    poses = np.zeros((3, 15))
    poses[:, POSE_SLOTS["neck"]] = Rotation.from_euler(HEAD_EULER, euler).as_rotvec()
    poses[:, POSE_SLOTS["jaw"].start] = [0.1, 0.2, 0.3]
    mean = mean_pose(poses)
    np.testing.assert_allclose(Rotation.from_rotvec(mean[POSE_SLOTS["neck"]]).as_euler(HEAD_EULER), euler.mean(0),
                               atol=1e-12)
    assert mean[POSE_SLOTS["jaw"].start] == pytest.approx(0.2)
    turned = turn_head(mean, [-30.0, 30.0], [0.0, 15.0])
    got = Rotation.from_rotvec(turned[:, POSE_SLOTS["neck"]]).as_euler(HEAD_EULER)
    np.testing.assert_allclose(got - euler.mean(0), np.radians([[-30.0, 0.0, 0.0], [30.0, 15.0, 0.0]]), atol=1e-12)
    np.testing.assert_array_equal(turned[:, POSE_SLOTS["jaw"]], np.repeat(mean[None, POSE_SLOTS["jaw"]], 2, 0))
