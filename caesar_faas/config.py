"""One typed settings object, read from the environment (ARCHITECTURE §4).

Secrets are read from files under /var/openfaas/secrets/<name> first (how OpenFaaS mounts them),
then from the environment, so no secret ever needs to live in stack.yml or the repo.

Both are read once per process and then only again when they change: load_settings() returns
the same Settings while the CAESAR_* environment and the secret files' (mtime, size) stay the
same, and a secret file is re-read only when its stat changes (Kubernetes rotates a mounted
secret by replacing the file). The secret files are stat()ed at most once per STAT_INTERVAL:
seven stat calls per request, each letting the other request threads take the GIL, made a
status request at 16 connections cost twice its CPU at one; a rotated secret (which the kubelet
itself takes up to a minute to deliver) is seen within a second.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SECRETS_DIR = Path(os.environ.get("CAESAR_SECRETS_DIR", "/var/openfaas/secrets"))

MIB = 1024 * 1024


_secret_cache: dict[Path, tuple[tuple[int, int], str]] = {}
_secret_names: dict[str, None] = {}  # every secret asked for (ordered): a change to any makes new Settings
_cache_lock = threading.Lock()


def _stat_key(path: Path | str) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


def read_secret(name: str, env: str) -> str | None:
    """Secret `name` from the OpenFaaS secrets folder, else env var `env`, else None. The file
    is read again only when its (mtime, size) changed since the last read."""
    _secret_names.setdefault(name)
    path = SECRETS_DIR / name
    key = _stat_key(path)
    if key is not None:
        cached = _secret_cache.get(path)
        if cached is not None and cached[0] == key:
            value: str | None = cached[1]
        else:
            try:
                value = path.read_text().strip()
            except OSError:
                value = ""
            with _cache_lock:
                _secret_cache[path] = (key, value)
        if value:
            return value
    value = os.environ.get(env, "").strip()
    return value or None


def env_int(env: str, default: int) -> int:
    """An integer setting from the environment (blank = default); a clear error otherwise."""
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{env} must be an integer, got {raw!r}") from exc


def env_str(env: str, default: str) -> str:
    return os.environ.get(env, "").strip() or default


@dataclass(frozen=True)
class Settings:
    home: Path
    storage_url: str
    db_url: str
    nats_url: str
    job_backend: str
    http_host: str
    http_port: int
    nats_port: int
    gateway_url: str
    auth_mode: str  # "jwt" or "off"
    jwt_secret: str | None = field(repr=False)
    jwks_url: str | None
    jwt_audience: str | None
    jwt_issuer: str | None
    roles_claim: str
    max_inline_upload: int
    part_size: int
    upload_ttl: int
    default_job_timeout: int
    max_job_timeout: int
    result_lifetime: int
    redispatch_after: int
    local_max_jobs: int
    signing_key: str | None = field(repr=False)
    k8s_namespace: str
    quota_bytes: int
    quota_files: int
    quota_queued_jobs: int
    quota_running_jobs: int
    public_url: str
    # The web page's "Sign in with <provider>" (OIDC authorization code + PKCE in the browser);
    # unset: the page offers the token field only.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_provider: str | None = None  # the name on the button (default: the issuer's host)
    oidc_scope: str = "openid"
    # NATS client token (issue 18): secret caesar-nats-token; `make run` generates one in CAESAR_HOME.
    nats_token: str | None = field(default=None, repr=False)
    # Master key of the per-job keys that sign status events (jobs/status_auth.py).
    status_key: str | None = field(default=None, repr=False)
    # The Slurm job backend (issue 16): CAESAR_SLURM_*, SlurmSettings below.
    slurm: SlurmSettings = field(default_factory=lambda: load_slurm_settings())
    # Local backend (issue 11): fork runners from a warm, pre-imported process (backends/warm.py);
    # CAESAR_LOCAL_WARM_RUNNER=0 starts each as a plain `python -m` process.
    local_warm_runner: bool = True

    @property
    def nats_client_url(self) -> str:
        """nats_url with the token as its user part (how nats-py and MinIO take a token); never
        log it. nats_url itself carries no credentials."""
        return with_token(self.nats_url, self.nats_token)

    @property
    def objects_dir(self) -> Path:
        return self.home / "objects"

    @property
    def tmp_dir(self) -> Path:
        """Spool folder for inline uploads (created on first use)."""
        path = self.home / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def jobs_dir(self) -> Path:
        """Work folders of local runner processes."""
        return self.home / "jobs"


_settings_cache: tuple[Any, Settings] | None = None
STAT_INTERVAL = 1.0  # s between two looks at the secret files
_clock = time.monotonic
_stats_seen: tuple[float, tuple[str, tuple[str, ...]], tuple[Any, ...]] | None = None  # when, what, stats


def _fingerprint() -> tuple[Any, ...]:
    """What Settings are made of: the environment and the secret files' stats. The raw
    environment (os.environ's bytes dict on CPython) is copied and compared in C, about 100
    times cheaper than decoding every variable."""
    raw = getattr(os.environ, "_data", None)
    env = tuple(raw.items()) if isinstance(raw, dict) else tuple(os.environ.items())
    folder = str(SECRETS_DIR)
    # A snapshot of the names first: stat() lets other threads run, and one of them may ask for
    # a secret nobody asked for before (iterating the dict itself would then fail).
    names = tuple(_secret_names)
    return folder, env, _secret_stats(folder, names)


def _secret_stats(folder: str, names: tuple[str, ...]) -> tuple[Any, ...]:
    """The secret files' stats, looked at again once STAT_INTERVAL has passed (or when the
    folder or the names asked for change)."""
    global _stats_seen
    now = _clock()
    seen = _stats_seen
    if seen is not None and seen[1] == (folder, names) and 0 <= now - seen[0] < STAT_INTERVAL:
        return seen[2]
    stats = tuple(_stat_key(os.path.join(folder, name)) for name in names)
    _stats_seen = (now, (folder, names), stats)
    return stats


def load_settings() -> Settings:
    """The settings of the current environment; built once and reused until the CAESAR_*
    environment or a secret file changes (functions call this per request; tests change env)."""
    global _settings_cache
    key = _fingerprint()
    cached = _settings_cache
    if cached is not None and cached[0] == key:
        return cached[1]
    settings = _read_settings()
    after = _fingerprint()  # reading may have added secrets to watch
    if after[:2] == key[:2] and after[2][:len(key[2])] == key[2]:  # nothing changed meanwhile
        _settings_cache = (after, settings)
    return settings


def _read_settings() -> Settings:
    home = Path(env_str("CAESAR_HOME", "./var")).resolve()
    http_host = env_str("CAESAR_HTTP_HOST", "127.0.0.1")
    http_port = env_int("CAESAR_HTTP_PORT", 8080)
    nats_port = env_int("CAESAR_NATS_PORT", 4222)
    gateway_url = env_str("CAESAR_GATEWAY_URL", f"http://{http_host}:{http_port}")
    auth_mode = env_str("CAESAR_AUTH", "jwt").lower()
    if auth_mode not in ("jwt", "off"):
        raise ValueError(f"CAESAR_AUTH must be 'jwt' or 'off', got {auth_mode!r}")
    return Settings(
        home=home,
        storage_url=env_str("CAESAR_STORAGE_URL", f"file://{home / 'objects'}"),
        # A MongoDB URL carries a password: in a cluster it comes from a secret file.
        db_url=read_secret("caesar-db-url", "CAESAR_DB_URL") or f"sqlite:///{home / 'caesar.db'}",
        nats_url=env_str("CAESAR_NATS_URL", f"nats://127.0.0.1:{nats_port}"),
        job_backend=env_str("CAESAR_JOB_BACKEND", "local"),
        http_host=http_host,
        http_port=http_port,
        nats_port=nats_port,
        gateway_url=gateway_url,
        auth_mode=auth_mode,
        jwt_secret=read_secret("caesar-jwt-secret", "CAESAR_JWT_SECRET"),
        jwks_url=env_str("CAESAR_JWKS_URL", "") or None,
        jwt_audience=env_str("CAESAR_JWT_AUDIENCE", "") or None,
        jwt_issuer=env_str("CAESAR_JWT_ISSUER", "") or None,
        roles_claim=env_str("CAESAR_JWT_ROLES_CLAIM", "roles"),
        max_inline_upload=env_int("CAESAR_MAX_INLINE_UPLOAD", 256 * MIB),
        part_size=env_int("CAESAR_PART_SIZE", 64 * MIB),
        upload_ttl=env_int("CAESAR_UPLOAD_TTL", 24 * 3600),
        default_job_timeout=env_int("CAESAR_DEFAULT_JOB_TIMEOUT", 3600),
        max_job_timeout=env_int("CAESAR_MAX_JOB_TIMEOUT", 24 * 3600),
        result_lifetime=env_int("CAESAR_RESULT_LIFETIME", 7 * 24 * 3600),
        redispatch_after=env_int("CAESAR_REDISPATCH_AFTER", 60),
        local_max_jobs=env_int("CAESAR_LOCAL_MAX_JOBS", 2),
        signing_key=read_secret("caesar-signing-key", "CAESAR_SIGNING_KEY"),
        k8s_namespace=env_str("CAESAR_K8S_NAMESPACE", "caesar-jobs"),
        quota_bytes=env_int("CAESAR_QUOTA_BYTES", 50 * 1024 * MIB),
        quota_files=env_int("CAESAR_QUOTA_FILES", 1000),
        quota_queued_jobs=env_int("CAESAR_QUOTA_QUEUED_JOBS", 50),
        quota_running_jobs=env_int("CAESAR_QUOTA_RUNNING_JOBS", 2),
        public_url=env_str("CAESAR_PUBLIC_URL", gateway_url),
        oidc_issuer=env_str("CAESAR_OIDC_ISSUER", "") or None,
        oidc_client_id=env_str("CAESAR_OIDC_CLIENT_ID", "") or None,
        oidc_provider=env_str("CAESAR_OIDC_PROVIDER_NAME", "") or None,
        oidc_scope=env_str("CAESAR_OIDC_SCOPE", "openid"),
        nats_token=read_secret("caesar-nats-token", "CAESAR_NATS_TOKEN"),
        status_key=read_secret("caesar-status-key", "CAESAR_STATUS_KEY"),
        slurm=load_slurm_settings(),
        local_warm_runner=env_str("CAESAR_LOCAL_WARM_RUNNER", "1").lower() not in ("0", "false", "no", "off"),
    )


@dataclass(frozen=True)
class SlurmSettings:
    """CAESAR_SLURM_*: the Slurm job backend (backends/slurm/, docs/deploy.md "Deploy on a Slurm
    cluster"). Read always, used only with CAESAR_JOB_BACKEND=slurm."""

    url: str  # slurmrestd, e.g. http://127.0.0.1:6820
    api: str  # REST API version: the shapes live in backends/slurm/api.py
    user: str  # X-SLURM-USER-NAME: the account every job runs as
    token: str | None = field(repr=False)  # X-SLURM-USER-TOKEN, static (scontrol token)
    jwt_key: str | None  # path of Slurm's jwt_hs256.key: mint short-lived tokens instead
    jwt_lifetime: int  # seconds a minted token is valid
    partition: str | None
    account: str | None
    qos: str | None
    runner: str | None  # the runner command on the nodes (None: this interpreter), or apptainer|singularity
    image_dir: str | None  # <image_dir>/<app>.sif for apps run from their container image
    workdir: str  # on the nodes: the jobs' work folders and their Slurm output
    nats_url: str | None  # NATS as the nodes reach it (None: Settings.nats_url)
    # The NATS token the jobs publish with (secret caesar-slurm-nats-token): a credential of the
    # nodes' own, never the service's; None: jobs get no token (the monitor then reads Slurm).
    nats_token: str | None = field(repr=False)
    time_margin: int  # seconds added to the job timeout for Slurm's limit (the runner stops first)
    lost_grace: int  # seconds a job Slurm no longer knows may wait for its final event
    orphan_interval: int  # seconds between two scans for orphaned caesar-* Slurm jobs
    request_timeout: int  # seconds one slurmrestd call may take


def load_slurm_settings() -> SlurmSettings:
    return SlurmSettings(
        url=env_str("CAESAR_SLURM_URL", "http://127.0.0.1:6820").rstrip("/"),
        api=env_str("CAESAR_SLURM_API", "v0.0.38"),
        user=env_str("CAESAR_SLURM_USER", ""),
        token=read_secret("caesar-slurm-token", "CAESAR_SLURM_TOKEN"),
        jwt_key=env_str("CAESAR_SLURM_JWT_KEY", "") or None,
        jwt_lifetime=env_int("CAESAR_SLURM_JWT_LIFETIME", 600),
        partition=env_str("CAESAR_SLURM_PARTITION", "") or None,
        account=env_str("CAESAR_SLURM_ACCOUNT", "") or None,
        qos=env_str("CAESAR_SLURM_QOS", "") or None,
        runner=env_str("CAESAR_SLURM_RUNNER", "") or None,
        image_dir=env_str("CAESAR_SLURM_IMAGE_DIR", "") or None,
        workdir=env_str("CAESAR_SLURM_WORKDIR", "/scratch/caesar"),
        nats_url=env_str("CAESAR_SLURM_NATS_URL", "") or None,
        nats_token=read_secret("caesar-slurm-nats-token", "CAESAR_SLURM_NATS_TOKEN"),
        time_margin=env_int("CAESAR_SLURM_TIME_MARGIN", 60),
        lost_grace=env_int("CAESAR_SLURM_LOST_GRACE", 120),
        orphan_interval=env_int("CAESAR_SLURM_ORPHAN_INTERVAL", 120),
        request_timeout=env_int("CAESAR_SLURM_REQUEST_TIMEOUT", 30),
    )


def with_token(url: str, token: str | None) -> str:
    """nats://host:port -> nats://<token>@host:port (a URL that already has a user part is kept)."""
    from urllib.parse import quote, urlsplit, urlunsplit

    parts = urlsplit(url)
    if not token or "@" in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=f"{quote(token, safe='')}@{parts.netloc}"))
