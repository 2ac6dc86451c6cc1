"""Settings and secrets are built once per process: the same Settings object while nothing
changes, new ones when the environment or a secret file changes, and a secret file read again
only when its stat (mtime, size) changes, and the files stat()ed at most once a second."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from caesar_faas import config, runtime


def test_settings_are_reused_until_the_environment_changes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CAESAR_HOME", str(tmp_path))
    first = config.load_settings()
    assert config.load_settings() is first
    assert runtime.services() is runtime.services()
    monkeypatch.setenv("CAESAR_QUOTA_FILES", "7")
    changed = config.load_settings()
    assert changed is not first and changed.quota_files == 7
    monkeypatch.delenv("CAESAR_QUOTA_FILES")
    assert config.load_settings() == first


def test_a_secret_file_is_read_again_only_when_its_stat_changes(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    secret = secrets / "caesar-jwt-secret"
    secret.write_text("first-secret-value\n")
    monkeypatch.setattr(config, "SECRETS_DIR", secrets)
    monkeypatch.setattr(config, "STAT_INTERVAL", 0.0)  # every call looks (the interval: next test)
    assert config.load_settings().jwt_secret == "first-secret-value"
    stamp = secret.stat().st_mtime_ns
    secret.write_text("other-secret-value\n")  # same size; put the old mtime back: not re-read
    os.utime(secret, ns=(stamp, stamp))
    assert config.load_settings().jwt_secret == "first-secret-value"
    assert config.read_secret("caesar-jwt-secret", "UNSET_ENV") == "first-secret-value"
    os.utime(secret, ns=(stamp + 1_000_000_000, stamp + 1_000_000_000))  # rotated: re-read
    assert config.load_settings().jwt_secret == "other-secret-value"
    secret.unlink()
    monkeypatch.setenv("CAESAR_JWT_SECRET", "from-the-environment")
    assert config.load_settings().jwt_secret == "from-the-environment"
    # Every secret Settings reads is watched, not only a fixed list.
    (secrets / "caesar-status-key").write_text("a-status-key-from-a-file\n")
    assert config.load_settings().status_key == "a-status-key-from-a-file"


def test_secret_files_are_looked_at_once_per_interval(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    secret = secrets / "caesar-jwt-secret"
    secret.write_text("first-secret-value\n")
    now = [1000.0]
    monkeypatch.setattr(config, "SECRETS_DIR", secrets)
    monkeypatch.setattr(config, "_clock", lambda: now[0])
    stats: list[str] = []
    real_stat = os.stat
    monkeypatch.setattr(config.os, "stat", lambda path, *a, **k: stats.append(str(path)) or real_stat(path, *a, **k))
    first = config.load_settings()
    assert first.jwt_secret == "first-secret-value"
    stats.clear()
    secret.write_text("rotated-secret-value-2\n")
    now[0] += 0.5
    assert config.load_settings() is first and stats == []  # within the interval: no stat at all
    now[0] += 0.6
    assert config.load_settings().jwt_secret == "rotated-secret-value-2"  # a second on: seen
    assert str(secret) in stats
    now[0] -= 100  # a clock that went back does not freeze the settings
    secret.write_text("third-secret-value-33\n")
    assert config.load_settings().jwt_secret == "third-secret-value-33"


def test_settings_can_be_loaded_while_other_threads_ask_for_new_secrets(monkeypatch: pytest.MonkeyPatch,
                                                                        tmp_path: Path) -> None:
    """A request thread computing the fingerprint must not trip over another thread that asks
    for a secret nobody asked for before (the watched names grow at run time)."""
    monkeypatch.setenv("CAESAR_HOME", str(tmp_path))
    monkeypatch.setattr(config, "SECRETS_DIR", tmp_path)
    monkeypatch.setattr(config, "_secret_names", dict(config._secret_names))
    asked = 3000

    def ask_for_new_secrets() -> None:
        for i in range(asked):
            config.read_secret(f"caesar-test-secret-{i}", "UNSET_ENV")

    asker = threading.Thread(target=ask_for_new_secrets, daemon=True)
    asker.start()
    loads = 0
    while asker.is_alive() or loads == 0:
        config.load_settings()
        loads += 1
    asker.join(timeout=60)
    assert len(config._secret_names) >= asked  # the names really grew while settings were loaded
