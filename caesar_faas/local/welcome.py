"""What `make run` sets up for authentication and prints for a newcomer."""

from __future__ import annotations

import os
import sys

from ..auth import auth_off_allowed, ensure_local_secret
from ..config import Settings
from ..tokens import mint_for

LOCAL_USER = os.environ.get("CAESAR_LOCAL_USER", "astro")


def prepare_auth(settings: Settings) -> dict[str, str]:
    """Environment for the children: auth on with a local secret unless CAESAR_AUTH=off, which
    is refused unless the stack listens on loopback only."""
    if settings.auth_mode == "off":
        if not auth_off_allowed(settings.http_host):
            sys.exit("caesar: CAESAR_AUTH=off is only allowed when listening on loopback "
                     f"(CAESAR_HTTP_HOST={settings.http_host})")
        print("caesar: WARNING: authentication is OFF (CAESAR_AUTH=off): every request acts as the single "
              "user 'anonymous'. Loopback only; never deploy like this.", file=sys.stderr, flush=True)
        return {}
    if settings.jwt_secret or settings.jwks_url:
        return {}
    return {"CAESAR_JWT_SECRET": ensure_local_secret(settings)}


def local_token(settings: Settings, user: str = LOCAL_USER, roles: tuple[str, ...] = ("user",),
                ttl: int = 30 * 24 * 3600) -> str | None:
    if settings.auth_mode == "off" or (settings.jwks_url and not settings.jwt_secret):
        return None
    return mint_for(settings, user, roles, ttl)


def banner(settings: Settings) -> str:
    base = f"http://{settings.http_host}:{settings.http_port}"
    token = local_token(settings)
    auth = ' -H "Authorization: Bearer $TOKEN"' if token else ""
    lines = [
        "",
        f"caesar-faas is up on {base}  (data: {settings.home}, NATS: {settings.nats_url})",
        "",
    ]
    if token:
        lines += [f"A token for the local user '{LOCAL_USER}' (30 days; `make token ARGS='--user bob'` mints more):",
                  f"  export TOKEN={token}", "",
                  # The token rides in the fragment: the browser keeps it, no server log sees it.
                  "Sign in to the web page by opening:", f"  {base}/#token={token}", ""]
    lines += [
        "Try it:",
        f"  curl {base}/healthz",
        f"  curl{auth} -F file=@image.fits {base}/function/upload",
        f"  curl{auth} {base}/function/files",
        f"  curl{auth} {base}/function/describe",
        f"  curl{auth} -H 'Content-Type: application/json' "
        f"-d '{{\"app\": \"sep\", \"job_inputs\": {{}}, \"data_inputs\": \"<uuid>\"}}' {base}/function/submit",
        f"  curl{auth} {base}/function/status/<job_id>",
        f"  curl{auth} -o out.tar.gz {base}/function/output/<job_id>",
        "",
        "Python and command line (pip install ./client; README, \"Python and command line\"):",
        f"  caesar login --url {base}" + (" --token $TOKEN" if token else ""),
        "  caesar run sep image.fits -o out/",
        "",
        f"VO tools (pyvo, TOPCAT; README, \"Virtual Observatory\"): UWS 1.1 at {base}/function/uws/<app>/jobs",
        "",
        f"Web page: {base}/   API: {base}/openapi.yaml   Logs: {settings.home / 'logs'}",
        "Stop with Ctrl-C.",
    ]
    return "\n".join(lines)
