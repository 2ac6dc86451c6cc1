"""Local-stack helpers: the HS256 secret kept in the data folder, and the loopback rule for
running without authentication."""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import tempfile
from pathlib import Path

from ..config import Settings

log = logging.getLogger(__name__)

SECRET_FILE = "jwt.secret"


def secret_path(settings: Settings) -> Path:
    return settings.home / SECRET_FILE


def ensure_local_secret(settings: Settings) -> str:
    """The HS256 secret for the local stack and the token command.

    A configured secret (OpenFaaS secret file or CAESAR_JWT_SECRET) wins. Otherwise
    <home>/jwt.secret is used, created on first use: 32 random bytes as hex, mode 0600, created
    atomically so two processes starting together agree on one secret.
    """
    if settings.jwt_secret:
        return settings.jwt_secret
    return ensure_secret_file(secret_path(settings))


def ensure_secret_file(path: Path) -> str:
    """The secret in `path`, created on first use (32 random bytes as hex, mode 0600,
    atomically: two processes starting together agree on one secret)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        _create_secret(path)
    if path.stat().st_mode & 0o077:
        log.warning("%s is readable by other users; restricting it to 0600", path)
        path.chmod(0o600)
    value = path.read_text().strip()
    if not value:
        raise RuntimeError(f"{path} is empty: delete it to have a new secret created")
    return value


def secret_file(path: Path) -> str:
    """The secret kept in `path` (mode 0600), created on first use like the JWT secret."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        _create_secret(path)
    value = path.read_text().strip()
    if not value:
        raise RuntimeError(f"{path} is empty: delete it to have a new secret created")
    return value


def _create_secret(path: Path) -> None:
    """Write a fresh secret to a private temp file, then hard-link it into place: the link
    fails if another process won the race, and nobody ever reads a half-written file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
        try:
            os.link(tmp, path)
            log.info("created a new secret in %s", path)
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)


def auth_off_allowed(host: str) -> bool:
    """True only for loopback listen addresses (127.0.0.0/8, ::1, localhost): CAESAR_AUTH=off
    must never expose an unauthenticated admin on a network interface. 0.0.0.0 is all
    interfaces, hence refused."""
    host = (host or "").strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
