"""openapi.yaml as the tests read it: the document, and its nodes with local $refs resolved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DOC: dict[str, Any] = yaml.safe_load((Path(__file__).resolve().parents[1] / "openapi.yaml").read_text())


def resolved(node: Any, doc: dict[str, Any] = DOC) -> Any:
    """`node` with every local $ref replaced by what it points at (the document has no cycles)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = doc
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return resolved(target, doc)
        return {key: resolved(value, doc) for key, value in node.items()}
    if isinstance(node, list):
        return [resolved(item, doc) for item in node]
    return node
