"""The notifier's configuration, read from the environment (secrets from files first, like
config.read_secret), kept apart from the core settings: only submit and the notifier need it."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Settings, env_int, env_str, read_secret

SECRET_FILE = "webhook.secret"


@dataclass(frozen=True)
class NotifySettings:
    webhook_secret: str | None = field(repr=False)
    webhook_allow: frozenset[str]  # hosts (lower case) exempt from the SSRF refusal
    webhook_timeout: float
    smtp_url: str | None = field(repr=False)  # smtp://user:pass@host:port, smtps://..., may hold a password
    mail_from: str
    max_attempts: int  # deliveries per channel before it is given up as failed


def webhook_allow() -> frozenset[str]:
    """CAESAR_WEBHOOK_ALLOW: comma-separated hosts exempt from the SSRF refusal (lower case)."""
    raw = os.environ.get("CAESAR_WEBHOOK_ALLOW", "")
    return frozenset(h.strip().lower().strip("[]") for h in raw.split(",") if h.strip())


def local_webhook_secret(home: Path) -> str:
    """The embedded stack's secret: <home>/webhook.secret, created once (0600, atomically)."""
    from ..auth.local import ensure_secret_file

    return ensure_secret_file(home / SECRET_FILE)


def load_notify_settings(settings: Settings) -> NotifySettings:
    secret = read_secret("caesar-webhook-secret", "CAESAR_WEBHOOK_SECRET")
    if secret is None and settings.job_backend == "local":
        # Only the one-machine stack invents its secret: replicas in a cluster would each
        # invent a different one, so a deployment must configure it (docs/deploy.md).
        secret = local_webhook_secret(settings.home)
    return NotifySettings(
        webhook_secret=secret,
        webhook_allow=webhook_allow(),
        webhook_timeout=float(env_int("CAESAR_WEBHOOK_TIMEOUT", 5)),
        smtp_url=read_secret("caesar-smtp-url", "CAESAR_SMTP_URL"),
        mail_from=env_str("CAESAR_MAIL_FROM", f"caesar-faas@{socket.getfqdn() or 'localhost'}"),
        max_attempts=env_int("CAESAR_NOTIFY_MAX_ATTEMPTS", 5),
    )
