"""What `notify` in a submission may name, checked at submit (a refusal is a 400, nothing stored).

Webhooks: http(s) only, no credentials in the URL, and every address the host resolves to must be
public: loopback, private, link-local (cloud metadata), shared, reserved, multicast and
unspecified addresses are refused (SSRF), unless CAESAR_WEBHOOK_ALLOW lists the host. The check
is repeated just before each delivery, since DNS may answer differently later.
Mail: one plain address, no display name, nothing that could inject a header."""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any
from urllib.parse import urlsplit

from ..errors import BadRequest

MAX_URL = 2048
NOTIFY_KEYS = frozenset({"webhook", "email"})
EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+")


class TargetRefused(ValueError):
    """A webhook URL that must not be called."""


def _refuse(message: str) -> BadRequest:
    return BadRequest(message, code="invalid_notify", option="notify")


def parse_notify(raw: Any, allow: frozenset[str]) -> dict[str, str] | None:
    """The validated `notify` member of a submission (None when absent or empty). Whether the
    deployment has a webhook secret and a mail server is the notifier's to know (submit holds
    neither secret); a channel it cannot serve is recorded as refused on the job."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _refuse("'notify' must be a JSON object like {\"webhook\": \"https://...\", \"email\": \"...\"}")
    unknown = sorted(set(raw) - NOTIFY_KEYS)
    if unknown:
        raise _refuse(f"unknown notify field {unknown[0]!r} (allowed: email, webhook)")
    out: dict[str, str] = {}
    if raw.get("webhook") is not None:
        url = raw["webhook"]
        if not isinstance(url, str):
            raise _refuse("notify.webhook must be a URL string")
        try:
            check_webhook(url, allow)
        except TargetRefused as exc:
            raise _refuse(f"notify.webhook refused: {exc}") from exc
        out["webhook"] = url
    if raw.get("email") is not None:
        address = raw["email"]
        if not isinstance(address, str) or len(address) > 254 or not EMAIL.fullmatch(address):
            raise _refuse("notify.email must be one plain e-mail address")
        out["email"] = address
    return out or None


def check_webhook(url: str, allow: frozenset[str]) -> None:
    """Raise TargetRefused unless `url` may be called (see the module doc)."""
    if len(url) > MAX_URL or any(c.isspace() or ord(c) < 32 for c in url):
        raise TargetRefused("not a valid URL")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused("not a valid URL") from exc
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("only http and https URLs are allowed")
    host = (parts.hostname or "").lower()
    if not host:
        raise TargetRefused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("credentials in the URL are not allowed (put a token in the path instead)")
    if host in allow:
        return
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(f"the host {host!r} does not resolve") from exc
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not public(address):
            raise TargetRefused(f"the host {host!r} resolves to a non-public address ({address}); an operator "
                                "can allow it with CAESAR_WEBHOOK_ALLOW")


def public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    return address.is_global and not address.is_multicast
