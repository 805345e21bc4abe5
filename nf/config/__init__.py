from nf.config.base import ConfigError, Model, json_schema, load, validate

__all__ = ["ConfigError", "Model", "json_schema", "load", "validate"]
