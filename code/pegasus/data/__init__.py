"""Datasets in the IMavatar layout: the part-label table, image I/O, the folder contract and
the torch dataset. Layout, conventions and errors: docs/data.md."""

from pegasus.data.dataset import ImavatarDataset, collate_frames
from pegasus.data.images import DataError, composite_on_white
from pegasus.data.imavatar import FlameFrame, FlameParams, FrameSelection, Video, read_video, write_video
from pegasus.data.parts import LATENT_CATEGORIES, SEMANTIC_LABELS, category_index, part_mask

__all__ = [
    "DataError",
    "FlameFrame",
    "FlameParams",
    "FrameSelection",
    "ImavatarDataset",
    "LATENT_CATEGORIES",
    "SEMANTIC_LABELS",
    "Video",
    "category_index",
    "collate_frames",
    "composite_on_white",
    "part_mask",
    "read_video",
    "write_video",
]
