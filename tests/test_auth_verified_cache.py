"""Verified bearer tokens are remembered for at most a minute and never past their expiry
(plus the leeway), and only for the settings they were verified with."""

from __future__ import annotations

import dataclasses
import time

import pytest

from caesar_faas.auth import authenticate, reset_caches
from caesar_faas.auth import bearer as bearer_module
from caesar_faas.errors import Unauthorized
from tests.fixtures.auth import auth_settings, bearer, claims_for, sign


@pytest.fixture(autouse=True)
def _fresh() -> None:
    reset_caches()


def test_a_verified_token_is_answered_from_memory(tmp_path, monkeypatch) -> None:
    settings = auth_settings(tmp_path)
    token = sign(claims_for("alice", ["admin"]))
    first = authenticate(bearer(token), {}, settings)
    calls = []
    monkeypatch.setattr(bearer_module, "_verify", lambda *a: calls.append(a) or (None, 0.0))
    assert authenticate(bearer(token), {}, settings) == first  # no second verification
    assert not calls


def test_other_settings_verify_again(tmp_path) -> None:
    settings = auth_settings(tmp_path)
    token = sign(claims_for())
    assert authenticate(bearer(token), {}, settings).owner == "alice"
    rotated = dataclasses.replace(settings, jwt_secret="another-secret-of-at-least-32-bytes!!")
    with pytest.raises(Unauthorized):
        authenticate(bearer(token), {}, rotated)


def test_an_entry_never_outlives_the_token(tmp_path) -> None:
    settings = auth_settings(tmp_path)
    now = int(time.time())
    token = sign({"sub": "alice", "exp": now - 20})  # inside the 30 s leeway: valid for ~10 s more
    assert authenticate(bearer(token), {}, settings).owner == "alice"
    until, _ = bearer_module._verified[bearer_module._cache_key(token, settings)]
    assert until <= time.monotonic() + 10.5
    long_lived = sign(claims_for(ttl=3600))
    authenticate(bearer(long_lived), {}, settings)
    until, _ = bearer_module._verified[bearer_module._cache_key(long_lived, settings)]
    assert until <= time.monotonic() + bearer_module.VERIFIED_MAX_AGE
