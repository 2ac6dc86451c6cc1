"""Browser tests of the web page: Debian's Chromium driven by Playwright against one local stack.

Package-scoped, so the whole folder shares one stack, one OIDC provider and one browser, all
gone before the rest of the suite goes on. Each test gets fresh browser contexts (its own
localStorage), signs in as its own user (so tests never see each other's files or jobs), and
fails on any console error it did not expect. Screenshots go to the test's tmp folder.

The stack: inline uploads up to 1 MiB (bigger ones take the presigned multipart path, 5 MiB
parts), HS256 tokens for the tests plus the OIDC provider's RS256 tokens through its JWKS, and
tests/ui/hold_runner.py as the job runner (the real one, but a held fake for hold*.fits inputs).
Pages open on http://localhost:<port> while the signed storage URLs name 127.0.0.1, so every
presigned PUT and download crosses origins as it does against S3/MinIO.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fixtures.auth import claims_for, sign
from tests.fixtures.stack import LocalStack
from tests.helpers import free_port, wait_for
from tests.samples import write_fits
from tests.synth import make_image
from tests.ui.oidc_provider import OidcProvider

CHROMIUM = Path("/usr/bin/chromium")
# As root, in a closed network: no sandbox, and none of Chromium's own background connections.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SECRET = "ui-test-secret-" + "5f3a9c" * 8
OIDC_CLIENT = "caesar-web"
OIDC_USER = "oidc-astro"
WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 390, "height": 844}
# What Chromium logs for every 4xx/5xx answer a page receives.
HTTP_ERROR = r"Failed to load resource: the server responded with a status of {}"


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("browser tests need Debian's Chromium at /usr/bin/chromium "
                    "(apt-get install -y chromium; .ci/run installs it when missing)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        found = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield found
        found.close()


@pytest.fixture(scope="package")
def oidc() -> Iterator[OidcProvider]:
    provider = OidcProvider(OIDC_CLIENT, OIDC_USER)
    yield provider
    provider.close()


@pytest.fixture(scope="package")
def ui_stack(tmp_path_factory: pytest.TempPathFactory, oidc: OidcProvider, browser: Any) -> Iterator[LocalStack]:
    home = tmp_path_factory.mktemp("ui-stack")
    port = free_port()
    stack = LocalStack(home, port, free_port(), output=home / "stack.out", extra_env={
        "CAESAR_JWT_SECRET": SECRET,
        "CAESAR_JWKS_URL": oidc.jwks_url,
        "CAESAR_OIDC_ISSUER": oidc.issuer,
        "CAESAR_OIDC_CLIENT_ID": OIDC_CLIENT,
        "CAESAR_OIDC_PROVIDER_NAME": "Test IdP",
        "CAESAR_MAX_INLINE_UPLOAD": str(1024 * 1024),
        "CAESAR_PART_SIZE": str(5 * 1024 * 1024),
        "CAESAR_RUNNER_MODULE": "tests.ui.hold_runner",
    })
    oidc.redirect_uris = {f"http://localhost:{port}/", f"http://127.0.0.1:{port}/"}
    stack.start()
    yield stack
    stack.stop()


def token_for(user: str, ttl: int = 3600) -> str:
    return sign(claims_for(user, ("user",), ttl), key=SECRET)


@dataclass
class Ui:
    """Pages on the test stack, each in a fresh context, with their console errors recorded."""

    browser: Any
    stack: LocalStack
    shots: Path
    contexts: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"http://localhost:{self.stack.http_port}"

    def api(self, user: str) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token_for(user)}"
        return session

    def allow(self, *patterns: str) -> None:
        """Console errors this test expects (regexes), e.g. the log line of a 400 it provokes."""
        self.allowed.extend(patterns)

    def new_page(self, viewport: dict[str, int] | None = None) -> Any:
        context = self.browser.new_context(viewport=viewport or WIDE, accept_downloads=True)
        self.contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.on("console", lambda msg: msg.type == "error" and self.errors.append(msg.text))
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        return page

    def signed_in(self, user: str, route: str | None = None, viewport: dict[str, int] | None = None) -> Any:
        """A page signed in by a #token= link, then at `route` (e.g. "#/jobs/<id>") when given."""
        page = self.new_page(viewport)
        page.goto(f"{self.origin}/#token={token_for(user)}")
        page.get_by_text("Signed in as").wait_for()
        if route:
            page.goto(f"{self.origin}/{route}")
        return page

    @staticmethod
    def home_ready(page: Any) -> None:
        """The home view has drawn its data: both tables and the submit form's options."""
        page.locator("table[aria-labelledby=files-heading] tbody tr").first.wait_for()
        page.locator("table[aria-labelledby=jobs-heading] tbody tr").first.wait_for()
        page.locator(".options fieldset").first.wait_for()

    def shoot(self, page: Any, name: str) -> list[Path]:
        """Full-page screenshots at 1280 px and on a narrow window."""
        size = page.viewport_size
        paths = []
        for label, viewport in (("wide", WIDE), ("narrow", NARROW)):
            page.set_viewport_size(viewport)
            path = self.shots / f"{name}-{label}.png"
            page.screenshot(path=str(path), full_page=True)
            paths.append(path)
        page.set_viewport_size(size)
        return paths

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(re.search(p, e) for p in self.allowed)]

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def ui(browser: Any, ui_stack: LocalStack, tmp_path: Path) -> Iterator[Ui]:
    found = Ui(browser, ui_stack, tmp_path)
    yield found
    found.close()
    assert found.unexpected_errors() == [], "console errors on the page"


@pytest.fixture(scope="package")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small FITS images: a synthetic radio field with 40 sources (inline upload), one above the
    1 MiB inline limit (multipart, two 5 MiB parts), plain noise without a beam (sep refuses it),
    and a file named hold*.fits (its job waits to be cancelled)."""
    folder = tmp_path_factory.mktemp("ui-images")
    field_path = folder / "field.fits"
    make_image(str(field_path), size=384, n_sources=40, seed=11)
    return {
        "field": field_path,
        "large": write_fits(folder / "large.fits", shape=(1200, 1200), seed=1),
        "noise": write_fits(folder / "noise.fits", shape=(64, 48), seed=2),
        "hold": write_fits(folder / "hold.fits", shape=(64, 48), seed=3),
    }


def upload_with_api(ui: Ui, user: str, path: Path) -> dict[str, Any]:
    with open(path, "rb") as fh:
        resp = ui.api(user).post(ui.stack.url + "/function/upload", files={"file": (path.name, fh)}, timeout=60)
    assert resp.status_code == 201, resp.text
    return resp.json()


def row_state(page: Any, job_id: str) -> str | None:
    return page.locator(f'tr[data-job-id="{job_id}"]').get_attribute("data-state", timeout=1000)


def wait_row_state(page: Any, job_id: str, state: str, timeout: float = 120) -> None:
    wait_for(lambda: row_state(page, job_id) == state, timeout=timeout, interval=0.1,
             message=f"job {job_id} to show {state} in the Jobs table")
