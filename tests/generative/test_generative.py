"""The generative avatar: two stages on a tiny collection, the part control and its lock.

The collection is the tiny database's target video and two synthetic copies of it whose hair
is painted red (DB person ``db_00``, whose hair the database's ground truth also holds) or
blue (``db_blue``): a model that ignores its latent codes cannot tell them apart.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from pegasus.config import load_config
from pegasus.data import parts
from pegasus.data.batch import collate_frames
from pegasus.data.images import DataError, read_label_map, read_mask, read_rgb
from pegasus.data.imavatar import read_video, video_dir, write_video
from pegasus.generative.control import (CodeBook, ControlRenderer, composed_codes, interpolated_codes,
                                        mix_point_passes, part_points, sample_codes)
from pegasus.generative.normals import OWN_NORMALS_FILE, NormalTargets
from pegasus.generative.stages import STAGE1_DIR, train_generative
from pegasus.train.build import split_dataset, trained_avatar, video_table
from pegasus.train.checkpoint import latest_checkpoint, load_checkpoint
from pegasus.train.trainer import RunFolderError, run_dir_of

CONFS = Path(__file__).resolve().parents[2] / "confs"
COLOURS = {"db_00": (1.0, 0.1, 0.1), "db_blue": (0.1, 0.2, 1.0)}
GENERATIVE = ["generative.enabled=true", "model.shape_cancel=true", "model.semantic=true", "model.part_logit=true",
              "model.canonical_offset.enabled=true", "model.canonical_offset.hidden_layers=1",
              "model.canonical_offset.width=16", "model.latent.code_dim=8", "model.latent.start_epoch=0",
              "model.lr.latent=1e-1", "train.batch_by_video=true", "loss.normal=0.1",
              "generative.stage1.epochs=2", "generative.stage1.lr_milestones=[2]", "train.epochs=20",
              "train.lr_milestones=[19]", "generative.control.frames=2", "generative.control.video_frames=0",
              "generative.control.yaw_frames=2", "generative.control.samples=2",
              "generative.control.interpolation_steps=3", "generative.control.mix=[hair]",
              "model.points.min_radius=0.08", "model.latent.init_std=0.1"]  # radius floor ≈ 1.3 px at 32²


def _write_collection(db_root: Path, out: Path) -> Path:
    """The target's train video (its own, empty part masks) and two hair-painted copies, as a
    manifest; returns the manifest."""
    video = read_video(video_dir(db_root, "target", "train"))
    params = video.flame_params()
    images = [read_rgb(f.image_path) for f in video.frames]
    masks = [read_mask(f.mask_path) for f in video.frames]
    labels = [read_label_map(f.semantic_path) for f in video.frames]
    hair = [parts.part_mask(lab, "hair").astype(np.float32) for lab in labels]
    flat_normal = [np.broadcast_to(np.float32([0.5, 0.5, 1.0]), (*m.shape, 3)).copy() for m in masks]
    entries = [{"root": ".", "subject": "target", "video": "train", "role": "target"}]
    write_video(video_dir(out, "target", "train"), params, images, masks, semantics=labels,
                extra_folders={"mask_object": [np.zeros_like(m) for m in masks]})
    for db, colour in COLOURS.items():
        painted = [np.where(h[..., None] > 0, np.float32(colour), im) for im, h in zip(images, hair)]
        write_video(video_dir(out, "target", f"hair_{db}"), params, painted, masks, semantics=labels,
                    extra_folders={"mask_object": hair, "render_normal": flat_normal, "render_mask": hair})
        entries.append({"root": ".", "subject": "target", "video": f"hair_{db}", "role": "synthetic",
                        "category": "hair", "db_person": db})
    manifest = out / "manifest.json"
    manifest.write_text(json.dumps({"videos": entries}))
    return manifest


@pytest.fixture(scope="module")
def generative(tiny_db_overrides, tiny_sizes, tmp_path_factory):
    """(config maker, trained config): one tiny generative run, shared by the tests."""
    root = tmp_path_factory.mktemp("generative")
    db = Path(next(o.split("=", 1)[1] for o in tiny_db_overrides if o.startswith("synth_db.root=")))
    manifest = _write_collection(db, root / "collection")

    def make(*extra: str):
        return load_config(CONFS / "embedded.conf", [
            *tiny_db_overrides, *tiny_sizes["model"], *GENERATIVE,
            f"dataset.train=[{{manifest = {json.dumps(str(manifest))}}}]",
            f"experiment.output_root={root / 'runs'}", "experiment.name=gen", f"synth.root={root / 'synth'}", *extra])

    cfg = make()
    train_generative(cfg)
    return make, cfg


def _model(cfg, checkpoint: Path | None = None):
    path = checkpoint or latest_checkpoint(run_dir_of(cfg))
    return trained_avatar(cfg, load_checkpoint(path), torch.device("cpu"))


def _frames(cfg, model, video: str):
    table = video_table(cfg.with_overrides([f"dataset.test=[{{subject = target, video = {video}, root = "
                                            f"{json.dumps(str(Path(cfg.dataset.train[0].manifest).parent))}}}]"]),
                        "test")
    dataset = split_dataset(cfg, table, model.index, model.head_model, "test")
    return collate_frames([dataset[i] for i in range(len(dataset))])


def test_stage_two_separates_the_two_hair_colours_by_their_codes(generative):
    _, cfg = generative
    run = run_dir_of(cfg)
    assert (run / STAGE1_DIR / "checkpoints" / "epoch_0002.pt").is_file()
    assert (run / "checkpoints" / "epoch_0020.pt").is_file()
    model = _model(cfg)
    book = CodeBook.of_model(model, "target")
    assert set(book.db) == {"hair"} and set(book.db["hair"]) == {"db_00", "db_blue"}
    renderer = ControlRenderer(model, book, identity_lock=False)
    frames = _frames(cfg, model, "hair_db_00")
    covered = frames.part_mask * (renderer.render(frames, book.own).mask > 0.5)  # the tiny avatar covers some hair
    redness = {}
    for db in COLOURS:
        rgb = renderer.render(frames, composed_codes(book, {"hair": book.db["hair"][db]})).rgb
        redness[db] = float(((rgb[..., 0] - rgb[..., 2]) * covered).sum() / covered.sum())
    # the red code paints the hair redder than the blue one (ignoring the codes gives equal colours)
    assert redness["db_00"] > redness["db_blue"] + 0.1, redness


def test_stage_two_lowers_its_loss(generative):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, cfg = generative
    events = sorted((run_dir_of(cfg) / "tensorboard").glob("events.*"))
    totals = [e.value for e in EventAccumulator(str(events[-1])).Reload().Scalars("loss/total")]
    normal = [e.value for e in EventAccumulator(str(events[-1])).Reload().Scalars("loss/normal")]
    assert np.mean(totals[-5:]) < 0.8 * np.mean(totals[:5])
    assert len(normal) == len(totals) and all(np.isfinite(normal))


def test_code_assembly_puts_a_db_code_only_in_its_block(generative):
    _, cfg = generative
    model = _model(cfg)
    book = CodeBook.of_model(model, "target")
    table = model.index.latent
    hair = book.index("hair")
    rows = table.rows_for("target", "synthetic", "hair", "db_00")
    own_rows = table.rows_for("target", "target")
    assert [i for i, (a, b) in enumerate(zip(rows, own_rows)) if a != b] == [hair]
    codes = composed_codes(book, {"hair": book.db["hair"]["db_00"]})
    assert torch.equal(codes[hair], model.latent_codes.codes[rows[hair]])
    changed = (codes != book.own).any(1).nonzero().flatten().tolist()
    assert changed == [hair]
    absent = [i for i, c in enumerate(book.categories) if c not in table.person_parts["target"]]
    assert absent and all(torch.equal(book.own[i], model.latent_codes.codes[0]) for i in absent)
    # the latent of the composed codes is the one the training video of that swap had
    assert torch.equal(model.latent_codes.assemble(codes[None]), model.latent_codes(torch.tensor([rows])))


def test_identity_lock_keeps_points_outside_the_part_bit_identical(generative):
    _, cfg = generative
    model = _model(cfg)
    book = CodeBook.of_model(model, "target")
    frames = _frames(cfg, model, "train").select([0, 1])
    renderer = ControlRenderer(model, book, identity_lock=True)
    codes = composed_codes(book, {"hair": book.db["hair"]["db_blue"]})
    with torch.no_grad():
        own = model.point_pass(frames, renderer.latent(book.own))
        edited = model.point_pass(frames, renderer.latent(codes))
        take = part_points(own, ["hair"]) | part_points(edited, ["hair"])
        locked = mix_point_passes(own, edited, take)
    assert 0 < int(take.sum()) < take.numel()
    keep = ~take
    for a, b in ((locked.deformed, own.deformed), (locked.normals, own.normals), (locked.shading, own.shading),
                 (locked.geometry.albedo, own.geometry.albedo), (locked.geometry.semantic, own.geometry.semantic),
                 (locked.canonical, own.canonical)):
        assert torch.equal(a[:, keep], b.expand_as(a)[:, keep])
    assert torch.equal(locked.deformed[:, take], edited.deformed[:, take])
    # without an edit the locked render is the unedited render
    assert torch.equal(renderer.render(frames, book.own).rgb, ControlRenderer(model, book, False).render(
        frames, book.own).rgb)


def test_interpolation_end_points_reproduce_the_codes_and_sampling_is_seeded(generative):
    _, cfg = generative
    model = _model(cfg)
    book = CodeBook.of_model(model, "target")
    frames = _frames(cfg, model, "train").select([0])
    renderer = ControlRenderer(model, book, identity_lock=False)
    red, blue = book.db["hair"]["db_00"], book.db["hair"]["db_blue"]
    strip = interpolated_codes(red, blue, 4)
    for code, end in ((strip[0], red), (strip[-1], blue)):
        got = renderer.render(frames, composed_codes(book, {"hair": code})).rgb
        assert torch.equal(got, renderer.render(frames, composed_codes(book, {"hair": end})).rgb)
    learned = book.learned("hair")
    assert torch.equal(sample_codes(learned, 3, seed=4), sample_codes(learned, 3, seed=4))
    assert not torch.equal(sample_codes(learned, 3, seed=4), sample_codes(learned, 3, seed=5))


def test_normal_targets_take_the_render_inside_the_part_and_the_own_normals_outside(generative):
    _, cfg = generative
    targets = NormalTargets(run_dir_of(cfg) / STAGE1_DIR / OWN_NORMALS_FILE)
    model = _model(cfg)
    table = video_table(cfg, "train")
    record = next(r for r in table if r.role == "synthetic")
    frame = record.video.frames[0]
    normal, weight = targets(record, frame, (32, 32))
    part = read_mask(frame.part_mask_path) >= 0.5
    assert np.allclose(normal[part], [0.0, 0.0, 1.0], atol=0.01) and (weight[part] == 1).all()
    own_normal, own_weight = targets(next(r for r in table if r.role == "target"), frame, (32, 32))
    outside = ~part & (weight > 0)
    assert outside.any() and np.array_equal(normal[outside], own_normal[outside])
    with pytest.raises(DataError, match="no own normals of frame 'x'"):
        targets(record, dataclasses.replace(frame, flame=dataclasses.replace(frame.flame, name="x")), (32, 32))
    assert model.loss_settings.normal == 0.1


def test_resume_across_the_stage_boundary_reproduces_the_run(generative, tmp_path):
    make, cfg = generative
    final = load_checkpoint(run_dir_of(cfg) / "checkpoints" / "epoch_0020.pt")["model"]
    copy = tmp_path / "gen"
    shutil.copytree(run_dir_of(cfg), copy)
    resumed = make(f"experiment.output_root={tmp_path}")
    stage1 = copy / STAGE1_DIR / "checkpoints" / "epoch_0002.pt"
    stamp = stage1.stat().st_mtime_ns
    shutil.rmtree(copy / "checkpoints")  # stage 2 lost: a finished stage 1 goes straight to stage 2
    shutil.rmtree(copy / "tensorboard")
    with pytest.raises(RunFolderError, match="--resume"):
        train_generative(resumed, "new")
    train_generative(resumed, "resume")
    assert stage1.stat().st_mtime_ns == stamp
    again = load_checkpoint(copy / "checkpoints" / "epoch_0020.pt")["model"]
    assert all(torch.equal(final[k], again[k]) for k in final)
    # a finished run resumed does nothing more
    train_generative(resumed, "resume")
    assert torch.equal(load_checkpoint(latest_checkpoint(copy))["model"]["points.points"], final["points.points"])


def test_pegasus_test_renders_the_part_control_and_scores_it(generative):
    from pegasus.cli.main import main

    _, cfg = generative
    run = run_dir_of(cfg)
    assert main(["test", "--run", str(run)]) == 0  # the run's own saved config, no --conf
    out = run / "test" / "latest"
    control = out / "control"
    for name in ("grid_hair.png", "mix_hair.png", "interpolation.png", "samples.png", "control_hair.mp4",
                 "composed_hair_db_00.ply"):
        assert (control / name).stat().st_size > 0, name
    table = json.loads((out / "part_control" / "part_control.json").read_text())
    hair = table["categories"]["hair"]
    assert hair["frames"] >= 1 and hair["psnr_in"] is not None and hair["unedited_psnr_in"] is not None
    assert hair["synthesized_psnr_in"] is None and hair["met_in_vs_synthesized"] is None  # no synthesis scores here
    assert table["reconstruction_psnr"] is not None
    scores = json.loads((out / "part_control" / "part_scores.json").read_text())
    assert set(scores["entries"]) == {"hair_db_00"}
    assert (out / "part_control" / "edited" / "target" / "target" / "hair_db_00" / "image").is_dir()
