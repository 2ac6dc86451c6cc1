"""Where each function is invoked: the gateway's /function/<name> (OpenFaaS, local stack), or a
per-function URL template such as Knative's http://{name}.caesar.svc.cluster.local."""

from __future__ import annotations

import os


def target_url(function: str, gateway_url: str) -> str:
    template = os.environ.get("CAESAR_CONNECTOR_TARGET_TEMPLATE", "").strip()
    if template:
        return template.format(name=function)
    return f"{gateway_url.rstrip('/')}/function/{function}"
