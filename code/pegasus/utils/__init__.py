"""Small shared utilities (atomic file writes)."""
from .atomic import atomic_path

__all__ = ["atomic_path"]
