"""HOCON configs: load with includes and overrides, validate against the schema, save."""
from .load import Config, ConfigError, load_config, parse_overrides, raise_for_problems, save_config, validate
from .schema import SCHEMA, Key

__all__ = [
    "Config", "ConfigError", "Key", "SCHEMA", "load_config", "parse_overrides", "raise_for_problems",
    "save_config", "validate",
]
