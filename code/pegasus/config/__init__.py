"""HOCON configs: declared settings, load with includes and overrides, validate, save."""
from .declare import Key, Section, setting
from .load import Config, ConfigError, load_config, parse_overrides, save_config
from .sections import schema, sections

__all__ = [
    "Config", "ConfigError", "Key", "Section", "load_config", "parse_overrides", "save_config", "schema",
    "sections", "setting",
]
