"""What `make run` sets up for authentication: a local secret and a token that works, and
CAESAR_AUTH=off only on loopback, said loudly."""

from __future__ import annotations

import jwt
import pytest

from caesar_faas.config import load_settings
from caesar_faas.local.welcome import banner, local_token, prepare_auth


@pytest.fixture
def home(tmp_path, monkeypatch):
    for name in ("CAESAR_JWT_SECRET", "CAESAR_JWKS_URL", "CAESAR_AUTH", "CAESAR_HTTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CAESAR_HOME", str(tmp_path))
    return tmp_path


def test_auth_on_by_default_with_a_secret_kept_in_the_data_folder(home):
    env = prepare_auth(load_settings())
    secret = (home / "jwt.secret").read_text().strip()
    assert env == {"CAESAR_JWT_SECRET": secret} and len(secret) >= 32
    assert (home / "jwt.secret").stat().st_mode & 0o777 == 0o600
    assert prepare_auth(load_settings()) == env  # the same secret on every start


def test_banner_prints_a_token_the_stack_accepts(home, monkeypatch):
    monkeypatch.setenv("CAESAR_JWT_SECRET", prepare_auth(load_settings())["CAESAR_JWT_SECRET"])
    settings = load_settings()
    token = local_token(settings)
    claims = jwt.decode(token, settings.jwt_secret, algorithms=["HS256"])
    assert claims["sub"] and claims["exp"] > claims["iat"]
    assert f"export TOKEN={token}" in banner(settings)
    assert "Authorization: Bearer $TOKEN" in banner(settings)


def test_auth_off_is_refused_off_loopback(home, monkeypatch):
    monkeypatch.setenv("CAESAR_AUTH", "off")
    monkeypatch.setenv("CAESAR_HTTP_HOST", "0.0.0.0")
    with pytest.raises(SystemExit, match="only allowed when listening on loopback"):
        prepare_auth(load_settings())


def test_auth_off_on_loopback_warns_loudly(home, monkeypatch, capsys):
    monkeypatch.setenv("CAESAR_AUTH", "off")
    assert prepare_auth(load_settings()) == {}
    assert "authentication is OFF" in capsys.readouterr().err
    assert local_token(load_settings()) is None


def test_banner_prints_a_sign_in_link_for_the_web_page(home, monkeypatch):
    monkeypatch.setenv("CAESAR_JWT_SECRET", prepare_auth(load_settings())["CAESAR_JWT_SECRET"])
    monkeypatch.setenv("CAESAR_HTTP_PORT", "8321")
    text = banner(load_settings())
    link = next(line.strip() for line in text.splitlines() if "#token=" in line)
    token = link.split("#token=", 1)[1]
    assert link == f"http://127.0.0.1:8321/#token={token}"  # in the fragment: never sent to a server
    assert f"export TOKEN={token}" in text


def test_banner_prints_the_caesar_login_line(home, monkeypatch):
    monkeypatch.setenv("CAESAR_JWT_SECRET", prepare_auth(load_settings())["CAESAR_JWT_SECRET"])
    settings = load_settings()
    text = banner(settings)
    base = f"http://{settings.http_host}:{settings.http_port}"
    assert f"  caesar login --url {base} --token $TOKEN\n" in text
    assert "caesar run sep image.fits -o out/" in text
