"""Errors answered with caesar-rest's own bodies: `{"status": "<its text>", ...its keys}`.

caesar-rest's clients print `status`; where caesar-rest defined a text for a case (a missing
file, an unknown app, a job not found) the face answers that text and nothing else. Errors
caesar-rest never had (quotas, FITS checks, a bad token) keep the native body, which carries
`status` too."""

from __future__ import annotations

from typing import Any

from ..errors import ApiError


class CaesarRestError(ApiError):
    """`fields` come first in the body, then `status`, as caesar-rest lays them out."""

    def __init__(self, http_status: int, text: str, **fields: Any) -> None:
        super().__init__(text, http_status=http_status)
        self.fields = fields

    def body(self) -> dict[str, Any]:
        return {**self.fields, "status": self.message}


def file_not_found(file_id: str) -> CaesarRestError:
    return CaesarRestError(404, f"File with uuid {file_id} not found on the system!")


def job_not_found(ident: str, owner: str, /, **fields: Any) -> CaesarRestError:
    return CaesarRestError(404, f"Job {ident} not found for user {owner}!", **fields)

