"""What the web page (the `ui` function) takes from the settings: its public configuration and a
Content-Security-Policy naming exactly the origins the page talks to."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from .config import Settings

# AWS S3 without an endpoint_url: presigned URLs name the bucket's regional host.
AWS_S3_ORIGIN = "https://*.amazonaws.com"


def origin(url: str | None) -> str | None:
    """scheme://host[:port] of an http(s) URL, None for anything else."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def storage_origins(settings: Settings) -> list[str]:
    """Where presigned URLs point: the signed local endpoint (file://) or the S3 host they are
    signed for (public_endpoint_url, else endpoint_url)."""
    parts = urlsplit(settings.storage_url)
    if parts.scheme == "file":
        found = origin(settings.public_url)
        return [found] if found else []
    if parts.scheme == "s3":
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        endpoint = options.get("public_endpoint_url") or options.get("endpoint_url")
        if not endpoint:
            return [AWS_S3_ORIGIN]
        found = origin(endpoint)
        return [found] if found else []
    return []


def oidc_config(settings: Settings) -> dict[str, str] | None:
    """The browser's OIDC client settings, or None when no provider is configured."""
    if not (settings.oidc_issuer and settings.oidc_client_id):
        return None
    host = urlsplit(settings.oidc_issuer).hostname or settings.oidc_issuer
    return {"issuer": settings.oidc_issuer, "client_id": settings.oidc_client_id,
            "provider": settings.oidc_provider or host, "scope": settings.oidc_scope}


def page_config(settings: Settings) -> dict[str, Any]:
    """GET /function/ui/config.json: public by design (no secrets: a browser OIDC client is public)."""
    return {"oidc": oidc_config(settings)}


def content_security_policy(settings: Settings) -> str:
    """Scripts and styles only from the page's own files; requests only to the gateway, the
    storage presigned URLs point at, and the OIDC provider (discovery and token endpoint)."""
    connect = ["'self'", *storage_origins(settings)]
    oidc = oidc_config(settings)
    issuer = origin(oidc["issuer"]) if oidc else None
    if issuer:
        connect.append(issuer)
    return "; ".join([
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob:",
        "connect-src " + " ".join(dict.fromkeys(connect)),
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])
