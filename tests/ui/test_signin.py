"""Signing in: the banner's #token= link, the Token field, Sign out, an expired token, and the
OIDC provider's authorization-code flow with PKCE."""

from __future__ import annotations

import re

import requests

from tests.fixtures.auth import claims_for, sign
from tests.helpers import wait_for
from tests.ui.conftest import HTTP_ERROR, OIDC_USER, token_for


def banner_link(stack) -> str:
    found = wait_for(lambda: re.search(r"(http://\S+/#token=\S+)", stack.output.read_text()), timeout=60,
                     message="the banner's sign-in link")
    return found.group(1)


def test_banner_link_signs_the_browser_in(ui):
    link = banner_link(ui.stack)
    assert link.startswith(f"http://127.0.0.1:{ui.stack.http_port}/#token=")
    page = ui.new_page()
    requests_seen = []
    page.on("request", lambda req: requests_seen.append(req.url))
    page.goto(link)
    page.get_by_text("Signed in as").wait_for()
    assert page.locator(".who strong").inner_text() == "astro"  # the banner's local user
    assert "#token" not in page.url and "token=" not in page.url  # gone from the address bar
    ui.home_ready(page)
    assert "token=" not in page.evaluate("location.href")
    assert not any("token=" in url for url in requests_seen), "the token must never travel in a URL"
    ui.shoot(page, "banner-link")


def test_token_field_sign_in_and_sign_out(ui):
    ui.allow(HTTP_ERROR.format(401))  # the refused token's check
    page = ui.new_page()
    page.goto(ui.origin + "/")
    heading = page.get_by_role("heading", name="Sign in")
    heading.wait_for()
    ui.shoot(page, "sign-in")
    field = page.get_by_label("Token")

    field.fill("not a token")
    page.get_by_role("button", name="Sign in", exact=True).click()
    assert "not a token" in page.locator("#token-error").inner_text()
    assert field.get_attribute("aria-invalid") == "true"

    field.fill(sign(claims_for("mallory", ("user",), 600), key="some-other-secret-" + "0" * 40))
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_text("The server did not accept this token").wait_for()
    assert page.evaluate("localStorage.getItem('caesar-token')") is None

    field.fill(token_for("bea"))
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_text("Signed in as").wait_for()
    assert page.locator(".who strong").inner_text() == "bea"
    page.get_by_role("table", name="Jobs").wait_for()
    page.reload()  # the token stays in this browser
    page.get_by_text("Signed in as").wait_for()

    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in").wait_for()
    assert page.evaluate("localStorage.getItem('caesar-token')") is None
    assert page.get_by_role("table", name="Files").count() == 0


def test_expired_token_shows_a_sign_in_prompt_not_errors(ui):
    page = ui.new_page()
    api_calls = []
    page.on("request", lambda req: "/function/" in req.url and "/function/ui/" not in req.url
            and api_calls.append(req.url))
    page.goto(f"{ui.origin}/#token={token_for('carl', ttl=-120)}")
    prompt = page.get_by_role("alert")
    prompt.wait_for()
    assert "expired" in prompt.inner_text()
    assert page.get_by_label("Token").is_visible()
    assert api_calls == []  # the page knew from the token itself: no request failed
    ui.shoot(page, "expired")


def test_token_running_out_while_signed_in_brings_the_prompt_back(ui):
    page = ui.new_page()
    page.goto(f"{ui.origin}/#token={token_for('dora', ttl=4)}")
    page.get_by_text("Signed in as").wait_for()
    page.get_by_role("table", name="Jobs").wait_for()
    page.get_by_role("alert").filter(has_text="expired").wait_for(timeout=30_000)
    assert page.get_by_role("table", name="Jobs").count() == 0
    assert page.get_by_label("Token").is_visible()


def test_oidc_authorization_code_flow_with_pkce(ui, oidc):
    page = ui.new_page()
    page.goto(ui.origin + "/")
    page.get_by_role("button", name="Sign in with Test IdP").click()
    page.get_by_text("Signed in as").wait_for()
    assert page.locator(".who strong").inner_text() == OIDC_USER
    page.get_by_role("table", name="Files").wait_for()
    assert "code=" not in page.url and "state=" not in page.url
    asked = oidc.authorize_requests[-1]
    assert asked["code_challenge_method"] == "S256" and asked["redirect_uri"] == ui.origin + "/"
    assert asked["client_id"] == "caesar-web" and asked["response_type"] == "code" and asked["state"]
    traded = oidc.token_requests[-1]
    assert traded["code_verifier"] and "code_verifier" not in asked  # the verifier never left with the redirect
    assert oidc.codes == {}  # the code was used once
    # The service accepts the provider's RS256 token (through its JWKS) and scopes data to its sub.
    token = page.evaluate("localStorage.getItem('caesar-token')")
    resp = requests.get(ui.stack.url + "/function/files", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert resp.status_code == 200 and resp.json()["files"] == []
