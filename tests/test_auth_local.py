"""The local-stack side of auth: the secret kept in the data folder, the loopback rule for
CAESAR_AUTH=off, and the token command (`make token` / `python -m caesar_faas.tokens`)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from caesar_faas.auth import auth_off_allowed, authenticate, ensure_local_secret, secret_path
from caesar_faas.errors import Unauthorized
from caesar_faas.tokens import main, mint_for, mint_token
from tests.fixtures.auth import HS_SECRET, auth_settings, bearer

REPO = Path(__file__).resolve().parents[1]


def test_local_secret_created_once_private_and_reused(tmp_path):
    settings = auth_settings(tmp_path / "home", jwt_secret=None)
    secret = ensure_local_secret(settings)
    path = secret_path(settings)
    assert path == tmp_path / "home" / "jwt.secret"
    assert len(secret) == 64 and int(secret, 16) >= 0  # 32 random bytes, hex
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_local_secret(settings) == secret
    assert ensure_local_secret(auth_settings(tmp_path / "other", jwt_secret=None)) != secret
    assert [p.name for p in path.parent.iterdir()] == ["jwt.secret"]  # no temp file left behind


def test_configured_secret_wins_and_no_file_is_written(tmp_path):
    settings = auth_settings(tmp_path, jwt_secret=HS_SECRET)
    assert ensure_local_secret(settings) == HS_SECRET
    assert not secret_path(settings).exists()


def test_concurrent_starts_agree_on_one_secret(tmp_path):
    settings = auth_settings(tmp_path, jwt_secret=None)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(ensure_local_secret(settings))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and len(set(results)) == 1


def test_too_open_secret_file_is_restricted(tmp_path):
    settings = auth_settings(tmp_path, jwt_secret=None)
    path = secret_path(settings)
    path.write_text("f" * 64 + "\n")
    path.chmod(0o644)
    assert ensure_local_secret(settings) == "f" * 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_empty_secret_file_is_an_error(tmp_path):
    settings = auth_settings(tmp_path, jwt_secret=None)
    secret_path(settings).write_text("\n")
    secret_path(settings).chmod(0o600)
    with pytest.raises(RuntimeError, match="empty"):
        ensure_local_secret(settings)


@pytest.mark.parametrize(("host", "allowed"), [
    ("127.0.0.1", True), ("127.1.2.3", True), ("localhost", True), ("LOCALHOST", True), ("::1", True),
    ("[::1]", True), ("0.0.0.0", False), ("::", False), ("", False), ("192.168.1.10", False),  # noqa: S104
    ("10.0.0.1", False), ("example.org", False), ("localhost.example.org", False), ("::ffff:10.0.0.1", False),
])
def test_auth_off_only_on_loopback(host, allowed):
    assert auth_off_allowed(host) is allowed


def test_minted_token_is_accepted_with_configured_audience_and_issuer(tmp_path):
    settings = auth_settings(tmp_path, jwt_secret=None, jwt_audience="caesar", jwt_issuer="https://local",
                             roles_claim="groups")
    token = mint_for(settings, "alice", ["admin"], ttl=60)
    verifying = auth_settings(tmp_path, jwt_secret=ensure_local_secret(settings), jwt_audience="caesar",
                              jwt_issuer="https://local", roles_claim="groups")
    principal = authenticate(bearer(token), {}, verifying)
    assert principal.owner == "alice" and principal.is_admin
    with pytest.raises(Unauthorized):  # another stack's secret does not accept it
        authenticate(bearer(token), {}, auth_settings(tmp_path, jwt_audience="caesar",
                                                      jwt_issuer="https://local"))


def test_minted_token_expires(tmp_path):
    token = mint_token(HS_SECRET, "alice", ttl=10, now=1_000_000)
    with pytest.raises(Unauthorized):
        authenticate(bearer(token), {}, auth_settings(tmp_path))


@pytest.mark.parametrize(("user", "ttl"), [("bad user", 60), ("", 60), ("alice", 0), ("alice", -5)])
def test_mint_refuses_bad_input(user, ttl):
    with pytest.raises(ValueError):
        mint_token(HS_SECRET, user, ttl=ttl)


def test_token_command_in_process(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CAESAR_HOME", str(tmp_path))
    monkeypatch.delenv("CAESAR_JWT_SECRET", raising=False)
    monkeypatch.setenv("CAESAR_SECRETS_DIR", str(tmp_path / "no-secrets"))
    assert main(["--user", "bob", "--roles", "admin,ops", "--roles", "user", "--ttl", "120"]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert "jwt.secret" in err and (tmp_path / "jwt.secret").read_text().strip() not in err + out
    principal = authenticate(bearer(token), {}, auth_settings(tmp_path, jwt_secret=(tmp_path / "jwt.secret")
                                                              .read_text().strip()))
    assert principal.owner == "bob" and principal.roles == frozenset({"admin", "ops", "user"})
    with pytest.raises(SystemExit) as info:
        main(["--user", "bob", "--ttl", "0"])
    assert info.value.code == 2


def test_token_command_as_a_module(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAESAR_")}
    env.update(CAESAR_HOME=str(tmp_path), CAESAR_JWT_SECRET=HS_SECRET)
    done = subprocess.run([sys.executable, "-m", "caesar_faas.tokens", "--user", "alice", "--roles", "admin"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=True)
    token = done.stdout.strip()
    assert "\n" not in token and done.stderr == ""  # only the token: TOKEN=$(make token ...) works
    principal = authenticate(bearer(token), {}, auth_settings(tmp_path))
    assert principal.owner == "alice" and principal.is_admin
    assert not (tmp_path / "jwt.secret").exists()  # the configured secret was used
