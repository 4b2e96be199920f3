"""FLAME-format head models: safe file loading, batched LBS, the generated stand-in head."""
from .flame_file import HeadModelData, HeadModelError, load_head_model_file
from .lbs import POSE_DIM, POSE_SLOTS, lbs
from .model import HeadModel, HeadModelOutput
from .factory import head_model_from_config, resolve_head_model_path

__all__ = [
    "HeadModel", "HeadModelData", "HeadModelError", "HeadModelOutput", "POSE_DIM", "POSE_SLOTS",
    "head_model_from_config", "lbs", "load_head_model_file", "resolve_head_model_path",
]
