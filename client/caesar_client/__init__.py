"""caesar-faas from Python: `Client` has one method per route of the native API.

    from caesar_client import Client
    client = Client()                       # CAESAR_URL / CAESAR_TOKEN, or what `caesar login` saved
    job = client.submit("sep", "image.fits", options={"thresh": 6})
    client.wait(job["job_id"])
    client.download_outputs(job["job_id"], "out/")
"""

from .client import Client, NotFinished
from .errors import (
    ApiError,
    BadRequest,
    CaesarError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    InvalidFile,
    JobFailed,
    NotFound,
    QuotaExceeded,
    ServerError,
    Unauthorized,
    UploadError,
    WaitTimeout,
)

__version__ = "0.1.0"

__all__ = ["ApiError", "BadRequest", "CaesarError", "Client", "Conflict", "ConnectionFailed", "Forbidden",
           "InvalidFile", "JobFailed", "NotFinished", "NotFound", "QuotaExceeded", "ServerError", "Unauthorized",
           "UploadError", "WaitTimeout", "__version__"]
