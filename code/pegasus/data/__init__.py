"""Datasets in the IMavatar layout: the part-label table, image I/O, the folder contract, the
``dataset`` settings, video tables, the typed batch and the torch dataset. Layout,
conventions and errors: docs/data.md."""

from pegasus.data.batch import NO_ROW, FrameBatch, collate_frames
from pegasus.data.dataset import VideoDataset, VideoIndices, subject_indices
from pegasus.data.images import DataError, composite_on_white
from pegasus.data.imavatar import FlameFrame, FlameParams, FrameSelection, Video, read_video, write_video
from pegasus.data.parts import LATENT_CATEGORIES, SEMANTIC_CLASSES, SEMANTIC_LABELS, category_index, part_mask
from pegasus.data.settings import DatasetSettings, VideoEntry
from pegasus.data.videos import VideoRecord, VideoTable

__all__ = [
    "DataError",
    "DatasetSettings",
    "FlameFrame",
    "FlameParams",
    "FrameBatch",
    "FrameSelection",
    "LATENT_CATEGORIES",
    "NO_ROW",
    "SEMANTIC_CLASSES",
    "SEMANTIC_LABELS",
    "Video",
    "VideoDataset",
    "VideoEntry",
    "VideoIndices",
    "VideoRecord",
    "VideoTable",
    "category_index",
    "collate_frames",
    "composite_on_white",
    "part_mask",
    "read_video",
    "subject_indices",
    "write_video",
]
