import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from pegasus.cli.main import main
from pegasus.data.batch import collate_frames
from pegasus.eval.metrics import psnr
from pegasus.train.build import new_avatar, trained_avatar
from pegasus.train.checkpoint import load_checkpoint
from pegasus.train.distributed import DistEnv, seed_everything
from pegasus.train.trainer import RunFolderError, Trainer, run_dir_of

REPO = Path(__file__).resolve().parents[2]

#: two people (the target and a DB person), both videos each, one code per person and category
TWO_PEOPLE = ["dataset.train=[{subject=target, video=train}, {subject=db_00, video=train, role=db}]",
              "dataset.test=[{subject=target, video=test}, {subject=db_00, video=test, role=db}]",
              "model.latent.code_dim=4", "model.latent.start_epoch=0", "model.shape_cancel=true",
              "model.semantic=true"]


def _trainer(cfg, mode="new", env=DistEnv()):
    seed_everything(cfg.experiment.seed, env.rank)
    model, train_set = new_avatar(cfg, env.device)
    return Trainer(cfg, env, model, train_set, mode=mode)


def _overrides(cfg) -> list[str]:
    """The whole resolved config as command-line overrides (for subprocesses)."""
    return [f"{k}={v}" for k, v in _flat(cfg.to_dict())]


def _flat(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _flat(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", _hocon(v)


def _hocon(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, str):
        return '"' + v + '"'
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_hocon(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_hocon(x) for x in v) + "]"
    return repr(v)


def _assert_same_weights(want: dict, got: dict, atol: float = 1e-6):
    assert want.keys() == got.keys()
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=0, atol=atol, msg=key)


@pytest.mark.slow
def test_training_lowers_the_loss_and_test_writes_metrics(tiny_train_config):
    cfg = tiny_train_config("train.epochs=4", "train.max_batch=1")
    trainer = _trainer(cfg)
    batch = collate_frames([trainer.train_set[i] for i in range(2)]).to(trainer.env.device)

    def rgb_loss_and_psnr():
        with torch.no_grad():
            out = trainer.model(batch)
            return float(trainer.model.losses(batch, out, 0)["rgb"]), float(psnr(out.rgb, batch.rgb).mean())

    loss_before, psnr_before = rgb_loss_and_psnr()
    trainer.fit()
    loss_after, psnr_after = rgb_loss_and_psnr()
    # measured on this tiny run: rgb L1 0.205 → 0.140, PSNR 10.3 → 11.9 dB after 24 steps
    assert loss_after < 0.8 * loss_before, (loss_before, loss_after)
    assert psnr_after > psnr_before + 1.0, (psnr_before, psnr_after)
    run = run_dir_of(cfg)
    assert (run / "config.conf").is_file() and (run / "checkpoints" / "latest.pt").is_file()
    events = list((run / "tensorboard").glob("events.*"))
    assert events
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logged = EventAccumulator(str(events[0])).Reload().Tags()
    assert "loss/total" in logged["scalars"] and "points/count" in logged["scalars"]
    assert "train/gt_rgb_normal_mask" in logged["images"]
    conf = str(run / "config.conf")
    assert main(["test", "--conf", conf]) == 0
    metrics = run / "test" / "latest" / "test" / "metrics.json"
    assert metrics.is_file()
    assert (run / "test" / "latest" / "yaw" / "rgb.mp4").is_file()
    yaw = json.loads((run / "test" / "latest" / "yaw" / "metrics.json").read_text())  # holes against the head model
    assert set(yaw["mean"]) == {"interior_holes", "head_holes"} and 0.0 <= yaw["mean"]["head_holes"] < 1.0
    assert "head_holes" not in json.loads(metrics.read_text())["mean"]  # sets with ground truth score against it
    assert (run / "export" / "canonical.ply").is_file()
    # the novel views and expressions of the database, scored per view with their holes
    assert main(["test", "--conf", conf, "test.sets=[novel]"]) == 0
    views = json.loads((run / "test" / "latest" / "novel" / "target" / "views" / "views.json").read_text())["views"]
    angles = cfg.synth_db.novel_angles_deg
    assert len(views) == 1 + 4 * len(angles) and all(v["frames"] == 1 for v in views)
    assert {(v["yaw_deg"], v["pitch_deg"]) for v in views} >= {(0.0, 0.0), (angles[-1], 0.0), (0.0, -angles[-1])}
    assert all(0 <= v["holes"] <= 1 and v["psnr"] > 0 for v in views)
    assert (run / "test" / "latest" / "novel" / "target" / "expressions" / "metrics.json").is_file()
    # test-time refinement: reported apart, never instead of the plain scores
    assert main(["test", "--conf", conf, "test.sets=[test]", "test.refine_steps=3"]) == 0
    refined = json.loads((run / "test" / "latest" / "test_refined" / "metrics.json").read_text())
    assert refined["count"] == json.loads(metrics.read_text())["count"]


def test_last_epoch_leaves_the_point_cloud_as_trained(tiny_train_config):
    cfg = tiny_train_config("train.epochs=2", "train.max_batch=3")  # upsample_freq = 1: every epoch grows
    trainer = _trainer(cfg)
    trainer.fit()
    checkpoints = run_dir_of(cfg) / "checkpoints"
    after_first, final = (load_checkpoint(checkpoints / name)["model"] for name in ("epoch_0001.pt", "latest.pt"))
    assert after_first["points.radius_buffer"] < cfg.model.points.init_radius  # the first epoch did grow
    assert final["points.radius_buffer"] == after_first["points.radius_buffer"]
    assert final["points.points"].shape == after_first["points.points"].shape
    assert trainer.model.points.num_points == final["points.points"].shape[0]


def test_refinement_has_one_row_per_video_and_frame_with_a_stride(tiny_train_config):
    """Frames 0, 2, 4 of the target's video and all of db_00's: rows keyed by (video, frame).

    Indexing the refinement by the frame's position in its video (as before this design) gave
    frame 4 a row past the 3 frames of a stride-2 split, and two videos the same rows."""
    cfg = tiny_train_config("model.refine.enabled=true", "model.refine.start_epoch=0",
                            "dataset.train=[{subject=target, video=train, stride=2}, {subject=db_00, video=train}]")
    trainer = _trainer(cfg)
    rows = [(item.video[0], int(item.frame_index), int(item.refine_row)) for item in trainer.train_set]
    assert [(v, f) for v, f, _ in rows] == [("target/train", f) for f in (0, 2, 4)] + \
        [("db_00/train", f) for f in range(6)]
    assert sorted(r for _, _, r in rows) == list(range(9))  # one row each, none shared
    assert trainer.model.refinement.num_rows == 9
    trainer.fit(stop_after_iterations=2)
    moved = trainer.model.refinement.translation.detach().abs().sum(-1) > 0
    assert moved.any()  # the frames of the two steps got their own corrections


@pytest.mark.slow
def test_two_people_train_resume_and_render_with_their_own_codes(tiny_train_config, tmp_path):
    cfg = tiny_train_config(*TWO_PEOPLE, "train.epochs=3", "train.checkpoint_every_iters=3")
    trainer = _trainer(cfg)
    index = trainer.model.index
    assert index.subjects == ("target", "db_00")
    target_rows, db_rows = (index.latent.rows_for(p, "target") for p in index.subjects)
    assert {r for r in target_rows if r}.isdisjoint(db_rows)  # only the shared "absent" code (row 0) is shared
    assert {int(item.subject_id) for item in trainer.train_set} == {0, 1}
    trainer.fit(stop_after_iterations=4)
    resumed = _trainer(cfg, mode="resume")  # from iter_0000003 / latest
    assert resumed.iteration == 3
    resumed.fit()
    uninterrupted = tiny_train_config(*TWO_PEOPLE, "train.epochs=3", "experiment.name=straight")
    straight = _trainer(uninterrupted)
    straight.fit()
    _assert_same_weights(straight.model.state_dict(), resumed.model.state_dict())

    model = trained_avatar(cfg, load_checkpoint(run_dir_of(cfg) / "checkpoints" / "latest.pt"), torch.device("cpu"))
    assert main(["test", "--conf", str(run_dir_of(cfg) / "config.conf")]) == 0
    rendered = run_dir_of(cfg) / "test" / "latest" / "test" / "rgb"
    assert {p.name for p in rendered.iterdir()} == {"target", "db_00"}
    # the DB person's frame with the target's codes is another picture than with their own
    from pegasus.cli.main import _test_set

    test_set = _test_set(cfg, model)
    frame = next(item for item in test_set if item.video[0].startswith("db_00"))
    with torch.no_grad():
        own = model(frame).rgb
        swapped = model(frame.replace(latent_rows=torch.tensor([target_rows]))).rgb
    assert (own - swapped).abs().max() > 1e-3


def test_batches_by_video_hold_one_video_and_resume_exactly(tiny_train_config):
    by_video = [*TWO_PEOPLE, "train.epochs=2", "train.batch_by_video=true"]
    cfg = tiny_train_config(*by_video, "train.checkpoint_every_iters=2")
    trainer = _trainer(cfg)
    seen, step = [], trainer.train_step

    def spy(batch, epoch):
        seen.append(set(batch.video))
        return step(batch, epoch)

    trainer.train_step = spy
    trainer.fit(stop_after_iterations=3)
    assert len(seen) == 3 and all(len(videos) == 1 for videos in seen)
    resumed = _trainer(cfg, mode="resume")  # from iter_0000002, mid-epoch
    assert resumed.iteration == 2
    resumed.fit()
    straight = _trainer(tiny_train_config(*by_video, "experiment.name=straight"))
    straight.fit()
    _assert_same_weights(straight.model.state_dict(), resumed.model.state_dict())


def test_a_run_folder_with_checkpoints_is_never_overwritten_silently(tiny_train_config, caplog):
    caplog.set_level(logging.INFO)
    cfg = tiny_train_config("train.epochs=1")
    _trainer(cfg, mode="resume")  # nothing to resume: a new run, said in one line
    assert "no checkpoint" in caplog.text and "starting a new run" in caplog.text
    first = _trainer(cfg)
    first.fit()
    checkpoints = run_dir_of(cfg) / "checkpoints"
    before = (checkpoints / "latest.pt").stat().st_mtime_ns
    with pytest.raises(RunFolderError, match="--resume.*--overwrite"):
        _trainer(cfg)
    assert (checkpoints / "latest.pt").stat().st_mtime_ns == before
    overwritten = _trainer(cfg, mode="overwrite")
    assert not checkpoints.exists() and overwritten.iteration == 0
    assert len(list((run_dir_of(cfg) / "tensorboard").glob("events.*"))) == 1  # the old events are gone
    overwritten.fit()
    assert main(["train", "--conf", str(REPO / "confs/embedded.conf"), *_overrides(cfg)]) == 2  # the CLI: exit 2


def test_stale_temporaries_of_killed_writes_are_removed(tiny_train_config):
    cfg = tiny_train_config("train.epochs=1")
    checkpoints = run_dir_of(cfg) / "checkpoints"
    checkpoints.mkdir(parents=True)
    stale = [checkpoints / ".latest.ab12cd34.pt", run_dir_of(cfg) / ".config.x1y2z3w4.conf"]
    for path in stale:
        path.write_bytes(b"")
    keep = checkpoints / ".notes"
    keep.write_text("mine")
    _trainer(cfg, mode="resume")
    assert not any(p.exists() for p in stale) and keep.exists()


def test_tensorboard_holds_every_step_once_after_a_resume(tiny_train_config):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = tiny_train_config("train.epochs=2", "train.checkpoint_every_iters=2")
    first = _trainer(cfg)
    first.fit(stop_after_iterations=3)  # checkpoint at 2, step 3 logged and lost with the "crash"
    first.writer.flush()
    resumed = _trainer(cfg, mode="resume")
    assert resumed.iteration == 2
    resumed.fit()
    resumed.writer.flush()
    events = EventAccumulator(str(run_dir_of(cfg) / "tensorboard")).Reload()
    steps = [e.step for e in events.Scalars("loss/total")]
    assert steps == list(range(1, resumed.iteration + 1)), steps


def _run_cli_train(conf_overrides, *flags, prelude: str = ""):
    code = f"{prelude}\nimport sys\nfrom pegasus.cli.main import main\nsys.exit(main(sys.argv[1:]))"
    cmd = [sys.executable, "-c", code, "train", "--conf", str(REPO / "confs/embedded.conf"), *flags,
           *conf_overrides]
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for(path: Path, proc, seconds: float = 120):
    deadline = time.time() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.time() < deadline, f"training never wrote {path}"
        time.sleep(0.05)


def _reference_and_killed(tiny_train_config, epochs: int):
    """A finished reference run and the config of the same run to be killed (checkpoint every step)."""
    common = [f"train.epochs={epochs}", "train.checkpoint_every_iters=1"]
    reference = tiny_train_config(*common, "experiment.name=reference")
    _trainer(reference).fit()
    return reference, tiny_train_config(*common, "experiment.name=killed")


@pytest.mark.slow
def test_resume_after_a_killed_run_reproduces_the_uninterrupted_run(tiny_train_config):
    reference, killed = _reference_and_killed(tiny_train_config, epochs=3)
    proc = _run_cli_train(_overrides(killed))
    _wait_for(run_dir_of(killed) / "checkpoints" / "iter_0000004.pt", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = _trainer(killed, mode="resume")
    total = load_checkpoint(run_dir_of(reference) / "checkpoints" / "latest.pt")["iteration"]
    # the kill may land between iter_0000004.pt and the refresh of latest.pt: any mid-run point
    assert 3 <= resumed.iteration < total, (resumed.iteration, total)
    resumed.fit()
    _assert_same_weights(load_checkpoint(run_dir_of(reference) / "checkpoints" / "latest.pt")["model"],
                         resumed.model.state_dict())


@pytest.mark.slow
def test_a_kill_during_a_checkpoint_write_leaves_a_resumable_run(tiny_train_config):
    """The child writes the 3rd checkpoint half-way, says so, and is SIGKILLed inside the write."""
    reference, killed = _reference_and_killed(tiny_train_config, epochs=2)
    marker = run_dir_of(killed) / "writing"
    prelude = f"""
import time, torch
from pegasus.train import checkpoint
saves = []
def stalled_save(obj, path, _save=torch.save):
    saves.append(path)
    if len(saves) == 5:  # iter_0000003.pt's temporary (two files per checkpoint)
        open(path, "wb").write(b"partial")
        open({str(marker)!r}, "w").close()
        time.sleep(600)
    _save(obj, path)
checkpoint.torch.save = stalled_save
"""
    proc = _run_cli_train(_overrides(killed), prelude=prelude)
    _wait_for(marker, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    checkpoints = run_dir_of(killed) / "checkpoints"
    assert list(checkpoints.glob(".iter_0000003.*.pt")), "the kill did not land inside the write"
    assert not (checkpoints / "iter_0000003.pt").exists()
    resumed = _trainer(killed, mode="resume")
    assert resumed.iteration == 2 and not list(checkpoints.glob(".*"))
    resumed.fit()
    _assert_same_weights(load_checkpoint(run_dir_of(reference) / "checkpoints" / "latest.pt")["model"],
                         resumed.model.state_dict())


def _ddp_worker(rank, world_size, port, overrides, out_dir, iterations):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    from pegasus.config import load_config
    from pegasus.train.distributed import init_distributed

    cfg = load_config(REPO / "confs/embedded.conf", overrides)
    env = init_distributed("cpu")
    mode = "resume" if iterations is None else "new"
    trainer = _trainer(cfg, mode=mode, env=env)
    torch.save({"start_rng": torch.get_rng_state()}, Path(out_dir) / f"start_{mode}_{rank}.pt")
    trainer.fit(stop_after_iterations=iterations)
    torch.save({"end_rng": torch.get_rng_state(), "iteration": trainer.iteration},
               Path(out_dir) / f"end_{mode}_{rank}.pt")
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_two_process_gloo_run_over_two_videos_equals_the_single_process_run(tiny_train_config, tmp_path):
    """Two people, two ranks, batch 1 per rank: the same weights as one process with batch 2, a
    checkpoint with both ranks' random states, and a resume that gives each rank back its own."""
    # eikonal samples random jitter per process; without it a step is deterministic
    common = [*TWO_PEOPLE, "loss.eikonal=0.0", "train.epochs=2", "train.checkpoint_every_iters=2"]
    port = 29500 + os.getpid() % 1000
    ddp = tiny_train_config(*common, "train.max_batch=1", "experiment.name=ddp")
    args = (2, port, _overrides(ddp), str(tmp_path))
    mp.start_processes(_ddp_worker, args=(*args, 4), nprocs=2, start_method="spawn")
    saved = load_checkpoint(run_dir_of(ddp) / "checkpoints" / "iter_0000004.pt")
    assert len(saved["rng"]) == 2 and not torch.equal(saved["rng"][0]["torch"], saved["rng"][1]["torch"])
    mp.start_processes(_ddp_worker, args=(*args[:2], args[2], args[3], None), nprocs=2, start_method="spawn")
    for rank in range(2):
        ended = torch.load(tmp_path / f"end_new_{rank}.pt")
        restored = torch.load(tmp_path / f"start_resume_{rank}.pt")
        assert torch.equal(restored["start_rng"], ended["end_rng"])  # each rank got its own state back

    single = tiny_train_config(*common, "train.max_batch=2", "experiment.name=single")
    reference = _trainer(single)
    reference.fit()
    # all-reduced means of one frame per rank against one batch mean: equal up to float rounding
    # after two steps (measured 1e-6); Adam amplifies the rounding over the run (measured 1.5e-3
    # after 12 steps), while a real difference (e.g. v* depending on the batch) gives 2e-2 at once
    ddp_dir, single_dir = (run_dir_of(c) / "checkpoints" for c in (ddp, single))
    _assert_same_weights(load_checkpoint(single_dir / "iter_0000002.pt")["model"],
                         load_checkpoint(ddp_dir / "iter_0000002.pt")["model"], atol=1e-5)
    _assert_same_weights(reference.model.state_dict(), load_checkpoint(ddp_dir / "latest.pt")["model"], atol=1e-2)
