"""Small shared utilities (atomic file writes)."""
from .atomic import atomic_path, write_json

__all__ = ["atomic_path", "write_json"]
