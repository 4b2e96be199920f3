"""FLAME-format head models: safe file loading, batched LBS, the generated stand-in head."""
from .flame_file import (HeadModelData, HeadModelError, LandmarkEmbedding, check_components_in_use,
                         load_head_model_file, load_landmark_embedding)
from .lbs import POSE_DIM, POSE_SLOTS, lbs
from .model import HeadModel, HeadModelOutput
from .factory import head_model_from_config, resolve_head_model_path

__all__ = [
    "HeadModel", "HeadModelData", "HeadModelError", "HeadModelOutput", "LandmarkEmbedding", "POSE_DIM", "POSE_SLOTS",
    "check_components_in_use", "head_model_from_config", "lbs", "load_head_model_file", "load_landmark_embedding",
    "resolve_head_model_path",
]
