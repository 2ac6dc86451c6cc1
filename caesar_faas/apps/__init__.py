"""Source-finder apps: specs (YAML under specs/), the registry and strict option validation."""

from .registry import describe, get_app, list_apps, summary
from .spec import AppSpec, OptionSpec
from .validation import OptionError, validate_options

__all__ = ["AppSpec", "OptionError", "OptionSpec", "describe", "get_app", "list_apps", "summary",
           "validate_options"]
