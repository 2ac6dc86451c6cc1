"""Bearer authentication with the HS256 shared secret: every refusal of issue 6's "Done when",
the clock leeway, the owner rules and the roles claim variants."""

from __future__ import annotations

import base64
import json
import logging
import time

import pytest

from caesar_faas.auth import Principal, authenticate
from caesar_faas.errors import Unauthorized
from tests.fixtures.auth import HS_SECRET, auth_settings, bearer, claims_for, sign

GENERIC = {"error": "unauthorized", "status": "missing or invalid bearer token"}


@pytest.fixture
def settings(tmp_path):
    return auth_settings(tmp_path)


def refused(headers, settings, query=None) -> Unauthorized:
    with pytest.raises(Unauthorized) as info:
        authenticate(headers, query or {}, settings)
    exc = info.value
    assert exc.http_status == 401
    assert exc.body() == GENERIC  # the same generic answer whatever went wrong
    assert exc.headers["WWW-Authenticate"].startswith('Bearer realm="caesar"')
    return exc


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_valid_token_names_the_owner_and_roles(settings):
    principal = authenticate(bearer(sign(claims_for("alice", ["user"]))), {}, settings)
    assert principal == Principal(owner="alice", roles=frozenset({"user"}), is_admin=False)
    admin = authenticate(bearer(sign(claims_for("root@example.org", ["admin"]))), {}, settings)
    assert admin.owner == "root@example.org" and admin.is_admin
    assert admin.can_see("alice") and not principal.can_see("bob") and principal.can_see("alice")


def test_header_name_and_scheme_are_case_insensitive(settings):
    token = sign(claims_for("alice"))
    assert authenticate({"authorization": f"bearer {token}"}, {}, settings).owner == "alice"


def test_no_token_is_401_without_error_code(settings):
    exc = refused({}, settings)
    assert exc.headers["WWW-Authenticate"] == 'Bearer realm="caesar"'
    refused({"Authorization": "  "}, settings)


@pytest.mark.parametrize("header", ["Basic YWxpY2U6cHc=", "Bearer", "Bearer not-a-jwt", "Bearer a.b.c d",
                                    "Bearer " + "a" * 9000 + ".b.c", "Token abc.def.ghi"])
def test_malformed_authorization_is_invalid_token(settings, header):
    exc = refused({"Authorization": header}, settings)
    assert exc.headers["WWW-Authenticate"] == 'Bearer realm="caesar", error="invalid_token"'


def test_expired_token(settings):
    refused(bearer(sign(claims_for(ttl=-60))), settings)


def test_token_without_exp(settings):
    claims = claims_for()
    del claims["exp"]
    refused(bearer(sign(claims)), settings)


def test_token_signed_with_another_secret(settings):
    refused(bearer(sign(claims_for(), key="another-secret-0123456789abcdef0123")), settings)


def test_tampered_payload(settings):
    header, _, signature = sign(claims_for("alice")).split(".")
    forged = f"{header}.{b64(claims_for('alice', ['admin']))}.{signature}"
    refused(bearer(forged), settings)


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none(settings, alg):
    unsigned = f"{b64({'alg': alg, 'typ': 'JWT'})}.{b64(claims_for('alice', ['admin']))}."
    refused(bearer(unsigned), settings)


def test_only_hs256_for_the_shared_secret(settings):
    refused(bearer(sign(claims_for(), alg="HS512")), settings)
    refused(bearer(sign(claims_for(), alg="HS384")), settings)


def test_hs256_refused_when_no_secret_is_configured(tmp_path):
    settings = auth_settings(tmp_path, jwt_secret=None, jwks_url="http://127.0.0.1:9/jwks.json")
    refused(bearer(sign(claims_for())), settings)


def test_audience_checked_when_configured(tmp_path):
    settings = auth_settings(tmp_path, jwt_audience="caesar")
    assert authenticate(bearer(sign(claims_for(aud="caesar"))), {}, settings).owner == "alice"
    assert authenticate(bearer(sign(claims_for(aud=["account", "caesar"]))), {}, settings).owner == "alice"
    refused(bearer(sign(claims_for(aud="other"))), settings)
    refused(bearer(sign(claims_for())), settings)  # no aud at all


def test_audience_ignored_when_not_configured(settings):
    # OIDC providers add their own audiences ("account"); without CAESAR_JWT_AUDIENCE they pass.
    assert authenticate(bearer(sign(claims_for(aud="account"))), {}, settings).owner == "alice"


def test_issuer_checked_when_configured(tmp_path):
    settings = auth_settings(tmp_path, jwt_issuer="https://idp.example.org/realms/caesar")
    good = claims_for(iss="https://idp.example.org/realms/caesar")
    assert authenticate(bearer(sign(good)), {}, settings).owner == "alice"
    refused(bearer(sign(claims_for(iss="https://evil.example.org/realms/caesar"))), settings)
    refused(bearer(sign(claims_for())), settings)


@pytest.mark.parametrize("name", ["access_token", "token", "jwt"])
def test_token_in_query_string_is_refused_even_with_a_valid_header(settings, name):
    token = sign(claims_for())
    exc = refused(bearer(token), settings, query={name: token})
    assert exc.headers["WWW-Authenticate"] == 'Bearer realm="caesar", error="invalid_request"'


def test_leeway_of_30_seconds(settings):
    now = int(time.time())
    # exp 10 s ago, nbf and iat 10 s ahead: a clock skew the leeway absorbs.
    skewed = {"sub": "alice", "exp": now - 10, "nbf": now + 10, "iat": now + 10}
    assert authenticate(bearer(sign(skewed)), {}, settings).owner == "alice"
    refused(bearer(sign({"sub": "alice", "exp": now - 45})), settings)
    refused(bearer(sign({"sub": "alice", "exp": now + 300, "nbf": now + 45})), settings)
    refused(bearer(sign({"sub": "alice", "exp": now + 300, "iat": now + 45})), settings)


@pytest.mark.parametrize("sub", [None, "", "a" * 129, "../etc/passwd", "alice bob", "alice/x", "é", 42,
                                 ["alice"]])
def test_sub_must_be_a_safe_owner_id(settings, sub):
    claims = claims_for()
    if sub is None:
        del claims["sub"]
    else:
        claims["sub"] = sub
    refused(bearer(sign(claims)), settings)


def test_longest_allowed_owner(settings):
    owner = "a" * 128
    assert authenticate(bearer(sign(claims_for(owner))), {}, settings).owner == owner


@pytest.mark.parametrize(("claim", "value", "expected"), [
    ("roles", ["admin", "user"], {"admin", "user"}),
    ("roles", "admin user", {"admin", "user"}),
    ("roles", [], set()),
    ("roles", 7, set()),
    ("roles", ["admin", 3, None, ""], {"admin"}),
    ("groups", ["admin"], {"admin"}),
    ("realm_access.roles", {"roles": ["admin"]}, {"admin"}),  # Keycloak realm roles
    ("https://caesar.example.org/roles", ["admin"], {"admin"}),  # URI-named claim (Auth0 style)
])
def test_roles_claim_variants(tmp_path, claim, value, expected):
    settings = auth_settings(tmp_path, roles_claim=claim)
    claims = claims_for()
    del claims["roles"]
    if claim == "realm_access.roles":
        claims["realm_access"] = value
    else:
        claims[claim] = value
    principal = authenticate(bearer(sign(claims)), {}, settings)
    assert principal.roles == frozenset(expected)
    assert principal.is_admin == ("admin" in expected)


def test_roles_from_another_claim_are_ignored(tmp_path):
    settings = auth_settings(tmp_path, roles_claim="groups")
    principal = authenticate(bearer(sign(claims_for("alice", ["admin"]))), {}, settings)
    assert not principal.is_admin and principal.roles == frozenset()


def test_failures_are_logged_at_debug_without_the_token(settings, caplog):
    token = sign(claims_for(ttl=-60))
    with caplog.at_level(logging.DEBUG, logger="caesar_faas.auth"):
        refused(bearer(token), settings)
    assert "ExpiredSignatureError" in caplog.text
    assert token not in caplog.text and token.split(".")[1] not in caplog.text
    assert HS_SECRET not in caplog.text


def test_auth_off_is_the_local_admin_on_loopback_only(tmp_path):
    local = auth_settings(tmp_path, auth_mode="off", http_host="127.0.0.1")
    principal = authenticate({}, {}, local)
    assert principal == Principal(owner="anonymous", roles=frozenset({"admin"}), is_admin=True)
    # Bound to every interface, "off" is refused rather than serving an unauthenticated admin.
    exposed = auth_settings(tmp_path, auth_mode="off", http_host="0.0.0.0")  # noqa: S104
    refused({}, exposed)
    refused(bearer(sign(claims_for())), exposed)
