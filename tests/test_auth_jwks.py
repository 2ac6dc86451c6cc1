"""RS256/ES256 tokens verified with keys from a JWKS document served by a real local HTTP
server: caching, key rotation, the once-a-minute refetch limit, and the algorithm-confusion
attacks (HS256 forged with the public key, mismatched key types and algorithms)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives import serialization

from caesar_faas.auth import JwksCache, authenticate, reset_caches
from caesar_faas.auth.jwks import parse_jwks
from caesar_faas.errors import Unauthorized
from tests.fixtures.auth import FakeClock, auth_settings, bearer, claims_for, public_jwk, sign


@pytest.fixture(autouse=True)
def fresh_caches():
    reset_caches()
    yield
    reset_caches()


@pytest.fixture
def settings(tmp_path, jwks_server):
    # The typical OIDC setup: JWKS only, no shared secret.
    return auth_settings(tmp_path, jwt_secret=None, jwks_url=jwks_server.url)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def cache(jwks_server, clock):
    return JwksCache(jwks_server.url, clock=clock)


def refuse(token, settings, cache=None):
    with pytest.raises(Unauthorized) as info:
        authenticate(bearer(token), {}, settings, jwks=cache)
    assert info.value.headers["WWW-Authenticate"] == 'Bearer realm="caesar", error="invalid_token"'


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hs256_forged_with(secret: bytes, claims: dict, kid: str | None = None) -> str:
    """What an attacker builds by hand (pyjwt itself refuses a PEM as an HMAC key)."""
    header = {"alg": "HS256", "typ": "JWT", **({"kid": kid} if kid else {})}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def test_rs256_token_verified_and_keys_cached(settings, jwks_server, rsa_key):
    jwks_server.keys = [public_jwk(rsa_key, "k1")]
    for user in ("alice", "bob", "carol"):
        token = sign(claims_for(user, ["user"]), rsa_key, "RS256", kid="k1")
        assert authenticate(bearer(token), {}, settings).owner == user
    assert jwks_server.fetches == 1  # one fetch served all three requests


def test_es256_token_verified(settings, jwks_server, ec_key, rsa_key):
    jwks_server.keys = [public_jwk(rsa_key, "rsa"), public_jwk(ec_key, "ec", alg="ES256")]
    token = sign(claims_for("alice", ["admin"]), ec_key, "ES256", kid="ec")
    principal = authenticate(bearer(token), {}, settings)
    assert principal.owner == "alice" and principal.is_admin


def test_token_signed_by_another_key_with_a_known_kid(settings, jwks_server, rsa_key, rsa_key_2):
    jwks_server.keys = [public_jwk(rsa_key, "k1")]
    refuse(sign(claims_for(), rsa_key_2, "RS256", kid="k1"), settings)


def test_expired_rs256_token(settings, jwks_server, rsa_key):
    jwks_server.keys = [public_jwk(rsa_key, "k1")]
    refuse(sign(claims_for(ttl=-60), rsa_key, "RS256", kid="k1"), settings)


def test_hs256_forged_with_the_rsa_public_key_is_refused(tmp_path, jwks_server, rsa_key):
    jwks_server.keys = [public_jwk(rsa_key, "k1")]
    pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    der = rsa_key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    forged = [hs256_forged_with(secret, claims_for("mallory", ["admin"]), kid="k1")
              for secret in (pem, der, json.dumps(jwks_server.keys[0]).encode())]
    jwks_only = auth_settings(tmp_path, jwt_secret=None, jwks_url=jwks_server.url)
    both = auth_settings(tmp_path, jwks_url=jwks_server.url)  # shared secret configured as well
    for settings in (jwks_only, both):
        for token in forged:
            refuse(token, settings)


def test_key_type_and_algorithm_must_match_the_published_key(settings, jwks_server, rsa_key, ec_key):
    jwks_server.keys = [public_jwk(rsa_key, "rsa", alg="RS256"), public_jwk(ec_key, "ec")]
    refuse(sign(claims_for(), ec_key, "ES256", kid="rsa"), settings)  # EC token, RSA kid
    refuse(sign(claims_for(), rsa_key, "RS256", kid="ec"), settings)  # RSA token, EC kid
    refuse(sign(claims_for(), rsa_key, "RS512", kid="rsa"), settings)  # key published for RS256 only
    refuse(sign(claims_for(), rsa_key, "PS256", kid="rsa"), settings)  # algorithm we never accept
    assert authenticate(bearer(sign(claims_for(), rsa_key, "RS256", kid="rsa")), {}, settings).owner == "alice"


def test_symmetric_keys_in_a_jwks_are_never_used(settings, jwks_server):
    secret = b"published-in-the-clear-0123456789abcdef"
    jwks_server.keys = [{"kty": "oct", "kid": "oct", "k": b64(secret), "alg": "HS256"}]
    assert parse_jwks({"keys": jwks_server.keys}) == []
    refuse(hs256_forged_with(secret, claims_for(), kid="oct"), settings)


def test_encryption_keys_and_garbage_entries_are_skipped(rsa_key, ec_key):
    keys = parse_jwks({"keys": [public_jwk(rsa_key, "enc", use="enc"), {"kty": "RSA", "kid": "broken", "n": "x"},
                                "not a key", {"kty": "EC", "crv": "P-999", "x": "a", "y": "b"},
                                public_jwk(ec_key, "good")]})
    assert [(k.kid, sorted(k.algorithms)) for k in keys] == [("good", ["ES256"])]


def test_audience_and_issuer_with_jwks(tmp_path, jwks_server, rsa_key):
    jwks_server.keys = [public_jwk(rsa_key, "k1")]
    settings = auth_settings(tmp_path, jwt_secret=None, jwks_url=jwks_server.url, jwt_audience="caesar",
                             jwt_issuer="https://idp.example.org")
    good = claims_for(aud="caesar", iss="https://idp.example.org")
    assert authenticate(bearer(sign(good, rsa_key, "RS256", kid="k1")), {}, settings).owner == "alice"
    refuse(sign({**good, "aud": "other"}, rsa_key, "RS256", kid="k1"), settings)
    refuse(sign({**good, "iss": "https://evil.example.org"}, rsa_key, "RS256", kid="k1"), settings)


def test_token_without_kid_only_when_unambiguous(settings, jwks_server, rsa_key, rsa_key_2):
    jwks_server.keys = [public_jwk(rsa_key, "k1")]
    assert authenticate(bearer(sign(claims_for(), rsa_key, "RS256")), {}, settings).owner == "alice"
    reset_caches()
    jwks_server.keys = [public_jwk(rsa_key, "k1"), public_jwk(rsa_key_2, "k2")]
    refuse(sign(claims_for(), rsa_key, "RS256"), settings)


def test_key_rotation_new_kid_triggers_one_refetch(settings, jwks_server, cache, clock, rsa_key, rsa_key_2):
    jwks_server.keys = [public_jwk(rsa_key, "old")]
    old_token = sign(claims_for(), rsa_key, "RS256", kid="old")
    assert authenticate(bearer(old_token), {}, settings, jwks=cache).owner == "alice"
    assert jwks_server.fetches == 1

    # The provider rotates: the new key is published, the old one withdrawn.
    jwks_server.keys = [public_jwk(rsa_key_2, "new")]
    clock.advance(61)
    new_token = sign(claims_for("bob"), rsa_key_2, "RS256", kid="new")
    assert authenticate(bearer(new_token), {}, settings, jwks=cache).owner == "bob"
    assert jwks_server.fetches == 2
    assert authenticate(bearer(new_token), {}, settings, jwks=cache).owner == "bob"
    refuse(old_token, settings, cache)  # withdrawn key: no longer trusted
    assert jwks_server.fetches == 2  # and no extra fetch within the minute


def test_unknown_kid_fetches_at_most_once_a_minute(settings, jwks_server, cache, clock, rsa_key):
    jwks_server.keys = [public_jwk(rsa_key, "k1")]
    ghost = sign(claims_for(), rsa_key, "RS256", kid="ghost")
    refuse(ghost, settings, cache)  # first use: the initial fetch only
    assert jwks_server.fetches == 1
    clock.advance(30)
    refuse(ghost, settings, cache)
    refuse(ghost, settings, cache)
    assert jwks_server.fetches == 1  # twice within 60 s: no new fetch
    clock.advance(31)
    refuse(ghost, settings, cache)
    assert jwks_server.fetches == 2  # a minute later: one more try
    refuse(ghost, settings, cache)
    assert jwks_server.fetches == 2


def test_process_wide_cache_limits_fetches_with_the_real_clock(settings, jwks_server, rsa_key):
    jwks_server.keys = [public_jwk(rsa_key, "k1")]
    for _ in range(5):
        refuse(sign(claims_for(), rsa_key, "RS256", kid=f"random-{_}"), settings)
    assert authenticate(bearer(sign(claims_for(), rsa_key, "RS256", kid="k1")), {}, settings).owner == "alice"
    assert jwks_server.fetches == 1


def test_keys_are_refreshed_after_max_age(jwks_server, rsa_key, clock):
    jwks_server.keys = [public_jwk(rsa_key, "k1")]
    cache = JwksCache(jwks_server.url, clock=clock, max_age=300)
    assert cache.key_for("k1", "RS256") is not None
    jwks_server.keys = []  # the provider withdrew k1
    clock.advance(299)
    assert cache.key_for("k1", "RS256") is not None
    clock.advance(2)
    assert cache.key_for("k1", "RS256") is None
    assert jwks_server.fetches == 2


def test_provider_errors_answer_401_and_keep_known_keys(settings, jwks_server, cache, clock, rsa_key):
    jwks_server.status = 500
    token = sign(claims_for(), rsa_key, "RS256", kid="k1")
    refuse(token, settings, cache)  # no keys yet: 401, not a 500
    jwks_server.status = 200
    jwks_server.keys = [public_jwk(rsa_key, "k1")]
    clock.advance(61)
    assert authenticate(bearer(token), {}, settings, jwks=cache).owner == "alice"
    jwks_server.status = 500
    clock.advance(4000)  # past max_age: the refresh fails, the known key stays usable
    assert authenticate(bearer(token), {}, settings, jwks=cache).owner == "alice"
    assert jwks_server.fetches == 3


def test_unreachable_provider_is_401(tmp_path, rsa_key):
    from tests.helpers import free_port

    settings = auth_settings(tmp_path, jwt_secret=None, jwks_url=f"http://127.0.0.1:{free_port()}/jwks.json")
    refuse(sign(claims_for(), rsa_key, "RS256", kid="k1"), settings)


def test_hs256_still_works_next_to_jwks(tmp_path, jwks_server, rsa_key):
    # Both configured: local service tokens (HS256) and the provider's (RS256) are accepted.
    jwks_server.keys = [public_jwk(rsa_key, "k1")]
    settings = auth_settings(tmp_path, jwks_url=jwks_server.url)
    assert authenticate(bearer(sign(claims_for("svc"))), {}, settings).owner == "svc"
    assert authenticate(bearer(sign(claims_for("bob"), rsa_key, "RS256", kid="k1")), {}, settings).owner == "bob"
