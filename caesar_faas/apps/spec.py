"""App spec data model (ARCHITECTURE §7). Specs live as YAML in caesar_faas/apps/specs/<name>.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class OptionSpec:
    """One option in caesar-rest's describe format."""

    name: str
    type: str  # none | int | float | str | bool
    description: str
    mandatory: bool = False
    default: Any = None
    min: float | None = None
    max: float | None = None
    enum: list[Any] | None = None
    allowed_values: list[Any] | None = None
    advanced: bool = False
    category: str = "run"
    # Accepted for caesar-rest scripts but without effect here (no MPI, no shell, logs always
    # kept): validated like any option, never passed to the finder, listed in the submit
    # answer's `ignored_options`.
    ignored: bool = False


@dataclass(frozen=True)
class AppSpec:
    name: str
    description: str
    version: str
    options: dict[str, OptionSpec]
    input_option: str  # the option that receives the input image path
    default_timeout: int  # seconds
    # Local backend: the finder adapter module under caesar_faas.runner.finders, or None when
    # the app runs only from its container image (caesar, mrcnn).
    local_entry: str | None
    # Kubernetes backend: the image that holds the finder and the runner, its runner command.
    image: str
    command: list[str]
    # {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {...}}
    resources: dict[str, dict[str, str]] = field(default_factory=dict)
    shm_size: str = "256Mi"  # /dev/shm emptyDir size limit
    work_size: str = "10Gi"  # work folder emptyDir size limit
    # Rules between options that no single option can express, checked at submit:
    # {"rule": "le", "options": [a, b]}        a <= b when both are set
    # {"rule": "together", "options": [a, ...]} all set or none set
    # {"rule": "requires", "options": [a, b]}   a set => b set
    constraints: list[dict[str, Any]] = field(default_factory=list)
    # Whether the catalogue's rows are fitted (Gaussian) components, as caesar-rest's
    # /source-components serves: True, False, or {option: value} when one option decides
    # (pybdsf's catalog_type gaul).
    components: bool | dict[str, Any] = False

    @property
    def runs_locally(self) -> bool:
        return self.local_entry is not None

    def catalog_is_components(self, options: dict[str, Any]) -> bool:
        """True when a job run with these (validated) options catalogues fitted components."""
        if isinstance(self.components, dict):
            return all(options.get(name) == value for name, value in self.components.items())
        return bool(self.components)
