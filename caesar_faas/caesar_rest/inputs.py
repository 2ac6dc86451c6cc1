"""caesar-rest's ways of naming the input image, turned into a file id.

caesar-rest's README submits `job_inputs.inputfile` as the server path of an upload
(`/opt/caesar-rest/data/<uuid>.fits`); its code takes the uuid in `data_inputs`. Both work
here, and so does the app's own input option name (`image` for mrcnn, as its describe shows).
A path counts only through its file name, which must be `<id>.<FITS extension>`: the directory
is ignored and nothing is ever opened, so a path can name nothing but one of the caller's own
uploads (the id then goes through the same owner check as data_inputs). Anything else is 400."""

from __future__ import annotations

import re
from typing import Any

from ..errors import BadRequest
from ..ids import is_id

INPUTFILE = "inputfile"
DATA_INPUTS_UID = "is_data_inputs_uid"
MAX_PATH = 4096
_FILE_NAME = re.compile(r"^(?P<id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
                        r"\.(?:fits|fit|fts)(?:\.gz)?$", re.IGNORECASE)


def file_id(value: Any, option: str) -> str:
    """The file id named by `value`: an id, or a path whose last part is `<id>.<ext>`."""
    if not isinstance(value, str) or not value:
        raise BadRequest(f"'{option}' must be a file uuid or a path ending in <uuid>.fits", code="invalid_file",
                         option=option)
    if is_id(value):
        return value
    if len(value) > MAX_PATH or any(ch in value for ch in ("\x00", "\n", "\r")):
        raise BadRequest(f"'{option}' is not a file uuid or a usable path", code="invalid_file", option=option)
    match = _FILE_NAME.match(value.rsplit("/", 1)[-1])
    if match is None:
        raise BadRequest(f"'{option}' must be a file uuid or a path whose file name is <uuid>.fits "
                         "(the uuid of one of your uploads); other paths are not readable here",
                         code="invalid_file", option=option)
    return match.group("id").lower()


def normalise_body(body: dict[str, Any], input_option: str) -> dict[str, Any]:
    """The submission as the library takes it: the input named in job_inputs (as `inputfile` or
    as the app's input option) becomes job_inputs.inputfile=<id>, data_inputs=<id> when given;
    the library then checks that both name the same file of the caller's."""
    if isinstance(body.get(DATA_INPUTS_UID), bool):
        # caesar-rest's devel branch: false made data_inputs a raw path; here a path counts only
        # through its <uuid>.<ext> file name either way, so the flag changes nothing
        body = {key: value for key, value in body.items() if key != DATA_INPUTS_UID}
    job_inputs = body.get("job_inputs")
    if not isinstance(job_inputs, dict):
        return body  # the library refuses a non-object job_inputs with its own message
    inputs = dict(job_inputs)
    named = {key: file_id(inputs.pop(key), key) for key in dict.fromkeys((INPUTFILE, input_option))
             if key in inputs}
    if len(set(named.values())) > 1:
        raise BadRequest(f"{' and '.join(sorted(named))} name different files", code="bad_request",
                         option=sorted(named)[0])
    out = {**body, "job_inputs": inputs}
    if named:
        out["job_inputs"] = {**inputs, INPUTFILE: next(iter(named.values()))}  # kept as sent, as an id
    if body.get("data_inputs") is not None:
        out["data_inputs"] = file_id(body["data_inputs"], "data_inputs")
    return out
