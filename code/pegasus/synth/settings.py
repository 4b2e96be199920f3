"""Declaration of the ``synth`` config section: part-swap synthesis (values in confs/)."""
from __future__ import annotations

from dataclasses import dataclass

from ..config.declare import Section, setting
from ..data import parts
from .compose import COLOURS, METHODS

__all__ = ["SynthCategory", "SynthSettings"]


@dataclass(frozen=True)
class SynthCategory(Section):
    """One entry of ``synth.categories``: a latent category and how its part is swapped."""

    name: str = setting("latent category (pegasus.data.parts), e.g. nose")
    method: str = setting("face_part (inpaint the target's part, paste the render's), bald (bald head, then paste) "
                          "or overlay (paste over the target)", choices=METHODS, default="face_part")
    outline: str = setting("whose outline the new part takes: render (the DB person's: brows, nose, mouth) or target "
                           "(the target's own, filled with the render's colours: eyes behind the target's lids; "
                           "face_part only)", choices=("render", "target"), default="render")
    colour: str = setting("colours of the pasted part: render, skin_gain (scaled to the target's skin tone) or "
                          "reshade (the target's skin shading on the DB person's head-model normals: skin-coloured "
                          "parts such as the nose)", choices=COLOURS, default="render")
    anchors: tuple[tuple[int, int], ...] = setting(
        "[start, end) ranges of the head model's 68 iBUG landmarks, one per anchor group (e.g. one eyebrow): each "
        "aligns the render with the target by a translation (pegasus.synth.align); [] = no alignment",
        ge=0, default=())
    grow: float | None = setting("this category's synth.grow (null: synth.grow)", ge=0, default=None)
    needs_own_part: bool = setting("drop frames where the target lacks the part (false for parts the target need "
                                   "not wear: hat, eyeglasses)", default=True)

    def problems(self) -> list[str]:
        if self.name not in parts.category_names():
            return [f"name: unknown category {self.name!r}; categories: {list(parts.category_names())}"]
        if not parts.category(self.name).is_part:
            return [f"name: {self.name!r} has no part labels to swap"]
        if self.outline == "target" and self.method != "face_part":
            return [f"outline: target works with method face_part, not {self.method}"]
        return []


@dataclass(frozen=True)
class SynthSettings(Section):
    """``synth``: the target wearing each DB person's parts, made from the bank's cross-driven renders."""

    root: str = setting("output folder: <root>/<video>/<target>/<target>/<category>_<db>/ (IMavatar video folders) "
                        "and <root>/<video>/manifest.json per edited target video")
    target: str = setting("the target subject (under dataset.root)")
    videos: tuple[str, ...] = setting("the target's videos to edit (each needs renders driven by it)")
    renders: str = setting("the bank's cross-driven renders <db>/<db>/<target>_<video>/ (bank.root/renders)")
    db_people: tuple[str, ...] | None = setting("DB people whose parts are swapped in; null = the subjects of "
                                                "bank.people")
    categories: tuple[SynthCategory, ...] = setting("the categories to synthesize and their method")
    resolution: int | tuple[int, int] = setting("size of the synthesized frames: an int (square) or [H, W], px (target "
                                                "frames and renders are resized)", ge=16)
    grow: float = setting("the target's part is grown by this share of the image side before it is removed", ge=0)
    inpaint_radius: float = setting("inpainting neighbourhood, share of the image side", gt=0)
    feather: float = setting("Gaussian sigma of the pasted part's alpha, px at synth.resolution", ge=0)
    fill_label: str = setting("label name of rebuilt pixels (the inpainted or balded area)")
    skin_labels: tuple[str, ...] = setting("label names counted as skin for colour matching and bald shading")
    min_part: float = setting("a part covering less than this share of the image counts as missing", ge=0)
    max_area_change: float = setting("drop frames whose new part area (relative to the target's own part or "
                                     "foreground) differs from the video's median by more than this fraction", gt=0)
    blend_check: bool = setting("drop frames whose composite is structurally closer (SSIM inside the target's mask) "
                                "to the render than to the target (METHOD §6)")
    frame_stride: int = setting("edit every n-th frame of each video (its renders must have those frames)", ge=1)
    ground_truth: str | None = setting("the synthetic database's ground_truth/ (pegasus score-parts); null on "
                                       "real data")
    score_video: str = setting("the edited video that score-parts compares with the ground truth (the test video)")

    def problems(self) -> list[str]:
        problems = []
        names = [c.name for c in self.categories]
        if len(set(names)) != len(names):
            problems.append(f"categories: a category is listed twice: {names}")
        known = {label.name for label in parts.SEMANTIC_LABELS}
        for key, values in (("fill_label", (self.fill_label,)), ("skin_labels", self.skin_labels)):
            unknown = [v for v in values if v not in known]
            if unknown:
                problems.append(f"{key}: unknown label names {unknown}; labels: {sorted(known)}")
        if not self.videos:
            problems.append("videos: name at least one of the target's videos")
        return problems
