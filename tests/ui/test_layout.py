"""The page as anyone uses it: every control labelled, reachable with the keyboard in a sensible
order, no sideways scrolling on a narrow window, a favicon, and (for every test here, through
the `ui` fixture) no console error."""

from __future__ import annotations

import pytest

from tests.ui.conftest import NARROW, upload_with_api

# Controls without an accessible name (label, aria-label(ledby) or text), and duplicate ids.
UNLABELLED = """() => {
  const named = (el) => {
    if (el.getAttribute('aria-label')) return true;
    const by = el.getAttribute('aria-labelledby');
    if (by && by.split(' ').every((id) => document.getElementById(id))) return true;
    if (el.labels && [...el.labels].some((l) => l.textContent.trim())) return true;
    return ['BUTTON', 'A', 'SUMMARY'].includes(el.tagName) && el.textContent.trim() !== '';
  };
  const controls = [...document.querySelectorAll('input, select, textarea, button, a[href], summary, [tabindex="0"]')];
  const ids = [...document.querySelectorAll('[id]')].map((el) => el.id);
  return {
    unlabelled: controls.filter((el) => !named(el)).map((el) => el.outerHTML.slice(0, 160)),
    duplicateIds: ids.filter((id, i) => ids.indexOf(id) !== i),
    controls: controls.length,
  };
}"""
FOCUSED = """() => {
  const el = document.activeElement;
  return el.id || el.getAttribute('aria-label') || el.textContent.trim().slice(0, 40) || el.tagName;
}"""
NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth"


@pytest.fixture
def job_of(ui, images):
    """A user with a file and a finished (failed: no WCS) job, for pages with content."""
    user = "nia"
    file_id = upload_with_api(ui, user, images["noise"])["uuid"]
    resp = ui.api(user).post(ui.stack.url + "/function/submit", timeout=10,
                             json={"app": "sep", "data_inputs": file_id, "job_inputs": {}})
    return user, resp.json()["job_id"]


def test_every_control_is_labelled_on_every_view(ui, job_of):
    user, job_id = job_of
    page = ui.signed_in(user)
    ui.home_ready(page)
    page.get_by_text("Advanced options").click()
    home = page.evaluate(UNLABELLED)
    assert home["controls"] > 30 and home["unlabelled"] == [] and home["duplicateIds"] == [], home
    page.goto(f"{ui.origin}/#/jobs/{job_id}")
    page.get_by_role("heading", name="Job log").wait_for(timeout=120_000)
    job = page.evaluate(UNLABELLED)
    assert job["unlabelled"] == [] and job["duplicateIds"] == [], job
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("Token").wait_for()
    signin = page.evaluate(UNLABELLED)
    assert signin["unlabelled"] == [] and signin["duplicateIds"] == [], signin


def test_keyboard_reaches_every_step_in_order(ui, job_of):
    user, _ = job_of
    page = ui.signed_in(user)
    ui.home_ready(page)
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED) == "skip"
    page.keyboard.press("Enter")  # the skip link lands on the content
    assert page.evaluate("document.activeElement.id") == "main"
    order = []
    for _ in range(120):
        page.keyboard.press("Tab")
        order.append(page.evaluate(FOCUSED))
        if order[-1] == "jobs-size":
            break
    wanted = ["fits-file", "upload-tag", "Upload", "Download noise.fits", "submit-app", "submit-file", "opt-thresh",
              "opt-clean", "Advanced options", "submit-timeout", "submit-tag", "Submit", "jobs-state", "jobs-app",
              "jobs-size"]
    positions = [order.index(name) for name in wanted]  # every one is reached ...
    assert positions == sorted(positions), order  # ... in reading order
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(FOCUSED) == "jobs-state"


def test_narrow_window_and_1280px_need_no_sideways_scrolling(ui, job_of):
    user, job_id = job_of
    for viewport in (NARROW, {"width": 1280, "height": 900}):
        page = ui.signed_in(user, viewport=viewport)
        ui.home_ready(page)
        assert page.evaluate(NO_SIDEWAYS_SCROLL), viewport  # wide tables scroll inside their own region
        page.goto(f"{ui.origin}/#/jobs/{job_id}")
        page.get_by_role("heading", name="Job log").wait_for(timeout=120_000)
        assert page.evaluate(NO_SIDEWAYS_SCROLL), viewport
    ui.shoot(page, "job-page")


def test_favicon_and_strict_content_security_policy(ui):
    page = ui.new_page()
    response = page.goto(ui.origin + "/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    icon = page.locator("link[rel=icon]").get_attribute("href")
    answer = page.request.get(ui.origin + icon)
    assert answer.status == 200 and answer.headers["content-type"] == "image/svg+xml"
    assert answer.body().startswith(b"<svg")
    page.get_by_role("heading", name="Sign in").wait_for()  # the module scripts ran under that policy
