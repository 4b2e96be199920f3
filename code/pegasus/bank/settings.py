"""Declaration of the ``bank`` config section: the DB avatar bank (values in confs/)."""
from __future__ import annotations

from dataclasses import dataclass

from ..config.declare import Section, setting
from ..data.settings import VideoEntry

__all__ = ["BANK_MODES", "BankSettings"]

BANK_MODES: tuple[str, ...] = ("per_video", "shared")
"""``per_video``: one single-person avatar per DB video (PEGASUS's bank, independent jobs);
``shared``: one multi-identity model over every DB video in the generic canonical space."""


@dataclass(frozen=True)
class BankSettings(Section):
    """``bank``: avatars of other (DB) people and their renders driven by the target."""

    root: str = setting("output folder: avatars/<job>/ (training runs) and renders/<person>/<person>/<driver>_<video>/ "
                        "(cross-driven renders, IMavatar video folders)")
    mode: str = setting("per_video (one avatar per entry of bank.people) or shared (one multi-identity model)",
                        choices=BANK_MODES)
    people: tuple[VideoEntry, ...] = setting("the DB videos (role db); per_video trains one avatar on each")
    test_video: str | None = setting("each DB person's held-out video, the test split of its bank run (`pegasus "
                                     "test` on a job); null: the runs keep dataset.test")
    drivers: tuple[VideoEntry, ...] = setting("videos whose per-frame expression, pose and camera drive every DB "
                                              "avatar (the target's training and test videos)")
    driver_stride: int = setting("render every n-th frame of each driver video", ge=1)
    render_batch: int = setting("frames per render call (and per resumable chunk)", ge=1)
    ground_truth: str | None = setting("root of cross-driven ground truth <person>/<person>/<driver>_<video>/ (the "
                                       "synthetic database's cross_driven/); null: renders are not scored")

    def problems(self) -> list[str]:
        problems = []
        if not self.people:
            problems.append("people: the bank needs at least one DB video")
        if not self.drivers:
            problems.append("drivers: the renders need at least one driver video")
        for key, entries in (("people", self.people), ("drivers", self.drivers)):
            if any(entry.manifest is not None or entry.video == "*" for entry in entries):
                problems.append(f"{key}: name each video (subject and video; no manifest or \"*\")")
        names = [(e.subject, e.video) for e in self.people]
        if len(set(names)) != len(names):
            problems.append(f"people: a video is listed twice: {names}")
        subjects = [e.subject for e in self.people]
        if self.mode == "per_video" and len(set(subjects)) != len(subjects):
            problems.append(f"people: per_video trains one avatar per person and renders it as that person; "
                            f"{sorted({s for s in subjects if subjects.count(s) > 1})} have several videos (list "
                            "one each, or use mode = shared)")
        return problems
