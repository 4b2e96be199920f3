"""Declarations of the ``experiment`` and ``train`` config sections (values in confs/base.conf)."""
from __future__ import annotations

from dataclasses import dataclass

from ..config.declare import Section, setting

__all__ = ["ExperimentSettings", "TrainSettings"]


@dataclass(frozen=True)
class ExperimentSettings(Section):
    """Where runs go, how they are seeded, on which device."""

    name: str = setting("run name; outputs go to <output_root>/<name>/")
    output_root: str = setting("folder holding run folders (relative to the working dir)")
    seed: int = setting("base random seed (each rank adds its rank)", ge=0)
    device: str = setting("compute device", choices=("auto", "cpu", "cuda"))
    num_threads: int = setting(
        "CPU threads of torch in each process (torch.set_num_threads); 0 = torch's default. Use 1 when the "
        "cores are shared with other jobs (spinning OpenMP threads then cost 10-30x)", ge=0)

    def problems(self) -> list[str]:
        name = self.name
        if not name or name.startswith(".") or "/" in name or "\\" in name:
            return [f"name: {name!r} is not a usable folder name"]
        return []


@dataclass(frozen=True)
class TrainSettings(Section):
    """The optimisation loop (model sizes and loss weights live in ``model`` / ``loss``)."""

    epochs: int = setting("epochs to train", ge=1)
    max_batch: int = setting("largest batch (frames per step per process)", ge=1)
    max_points_per_batch: int = setting("batch = min(max_points_per_batch // points, max_batch)", ge=1)
    batch_by_video: bool = setting("draw each batch from one video (its frames share their latent code, so a "
                                   "latent-conditioned model runs its networks once per batch, not per frame)")
    lr_milestones: tuple[int, ...] = setting(
        "epochs at which every learning rate is multiplied by lr_gamma", ge=1, ordered=True)
    lr_gamma: float = setting("learning-rate decay factor at each milestone", gt=0, le=1)
    num_workers: int = setting("DataLoader worker processes (0 = load in the training process)", ge=0)
    checkpoint_every_iters: int = setting("also checkpoint every n optimizer steps (0 = per epoch only)", ge=0)
    log_every_iters: int = setting("TensorBoard scalars every n steps", ge=1)
    image_every_iters: int = setting("TensorBoard image grid every n steps (0 = never)", ge=0)
