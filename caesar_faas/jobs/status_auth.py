"""Status events are accepted only from the job they are about (issue 18 item 6).

Each job gets its own key, an HMAC of its id under the service's status master key; the backend
hands it to the runner (CAESAR_JOB_KEY) and nobody else. The runner adds `sig`, an HMAC-SHA256
of the event data (canonical JSON without `sig`) under that key; the dispatcher function checks
it before applying the event. A process that can publish on NATS but holds no job key (or another
job's) cannot change a job.

Master key: the secret caesar-status-key; else one derived from the HS256 JWT secret every
function shares; else a random key kept in CAESAR_HOME (`make run`, one machine).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from ..config import Settings

SIG_FIELD = "sig"
KEY_FILE = "status.key"


def master_key(settings: Settings) -> bytes:
    if settings.status_key:
        return settings.status_key.encode()
    if settings.jwt_secret:
        return hmac.new(settings.jwt_secret.encode(), b"caesar-faas status events", hashlib.sha256).digest()
    from ..auth.local import secret_file

    return secret_file(Path(settings.home) / KEY_FILE).encode()


def job_key(settings: Settings, job_id: str) -> str:
    """The key of one job (hex): what its runner signs its status events with."""
    return hmac.new(master_key(settings), f"job:{job_id}".encode(), hashlib.sha256).hexdigest()


def _canonical(data: dict[str, Any]) -> bytes:
    body = {k: v for k, v in data.items() if k != SIG_FIELD}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sign(key: str, data: dict[str, Any]) -> dict[str, Any]:
    """data with its `sig` (the runner's side)."""
    return {**data, SIG_FIELD: hmac.new(key.encode(), _canonical(data), hashlib.sha256).hexdigest()}


def verify(settings: Settings, data: Any) -> bool:
    """True when `data` names a job and carries that job's signature over everything else."""
    if not isinstance(data, dict) or not isinstance(data.get("job_id"), str) or not isinstance(
            data.get(SIG_FIELD), str):
        return False
    try:
        expected = sign(job_key(settings, data["job_id"]), data)[SIG_FIELD]
    except (TypeError, ValueError):  # not JSON-able
        return False
    return hmac.compare_digest(expected, data[SIG_FIELD])
