from nf.config.base import (PROGRAM, RUNTIME, AttachMode, Channel, ConfigError, Model, NFConfig,
                            Variant, channel_of, diff, json_schema, load, validate)

__all__ = ["PROGRAM", "RUNTIME", "AttachMode", "Channel", "ConfigError", "Model", "NFConfig",
           "Variant", "channel_of", "diff", "json_schema", "load", "validate"]
