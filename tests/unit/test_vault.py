"""The vault's crypto adapter: sealing, key ids, the key file and MILL_VAULT_KEY."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

import pytest

from mill.config import Settings
from mill.errors import ConflictError, MillError
from mill.storage.vault import KEY_FILE_NAME, NONCE_BYTES, MasterKey, secret_aad


def _settings(tmp_path: Path, key: str | None = None) -> Settings:
    return Settings(home=tmp_path / "home", database_url="sqlite://", vault_key=key)


def _key(tmp_path: Path) -> MasterKey:
    return MasterKey.load(_settings(tmp_path, secrets.token_urlsafe(32)))


def test_seal_then_open_round_trips(tmp_path: Path) -> None:
    key = _key(tmp_path)
    aad = secret_aad("default", "db-password")
    blob = key.seal("s3cr3t ünïcode", aad)
    assert b"s3cr3t" not in blob
    assert len(blob) == NONCE_BYTES + len("s3cr3t ünïcode".encode()) + 16
    assert key.open(blob, aad, key_id=key.key_id) == "s3cr3t ünïcode"
    assert key.seal("same", aad) != key.seal("same", aad)  # a fresh nonce every time


def test_a_ciphertext_moved_to_another_name_or_workspace_does_not_open(tmp_path: Path) -> None:
    key = _key(tmp_path)
    blob = key.seal("value-1", secret_aad("default", "a"))
    for other in (secret_aad("default", "b"), secret_aad("other", "a")):
        with pytest.raises(ConflictError) as caught:
            key.open(blob, other)
        assert "value-1" not in caught.value.message


def test_a_wrong_key_names_the_secret_and_both_key_ids(tmp_path: Path) -> None:
    first, second = _key(tmp_path), _key(tmp_path)
    aad = secret_aad("default", "db-password")
    blob = first.seal("hunter2", aad)
    with pytest.raises(ConflictError) as caught:
        second.open(blob, aad, key_id=first.key_id)
    message = caught.value.message
    assert "default/db-password" in message
    assert first.key_id in message and second.key_id in message
    assert "hunter2" not in message
    with pytest.raises(ConflictError, match="does not open"):  # no key id stored: still clear
        second.open(blob, aad)


def test_key_id_is_a_short_hash_never_the_key(tmp_path: Path) -> None:
    text = secrets.token_urlsafe(32)
    key = MasterKey.load(_settings(tmp_path, text))
    assert len(key.key_id) == 16 and key.key_id not in text
    assert MasterKey.load(_settings(tmp_path, text)).key_id == key.key_id
    assert text not in repr(key)
    assert text not in repr(_settings(tmp_path, text))


def test_the_key_file_is_created_0600_and_reused(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    key = MasterKey.load(settings)
    path = settings.home / KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert MasterKey.load(settings).key_id == key.key_id
    assert [p.name for p in settings.home.iterdir()] == [KEY_FILE_NAME]  # no temp file left
    same = MasterKey.load(_settings(tmp_path, path.read_text().strip()))
    assert same.key_id == key.key_id  # the file holds what MILL_VAULT_KEY would


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    MasterKey.load(settings)
    path = settings.home / KEY_FILE_NAME
    os.chmod(path, 0o644)
    with pytest.raises(MillError) as caught:
        MasterKey.load(settings)
    assert f"chmod 600 {path}" in caught.value.message
    assert path.read_text().strip() not in caught.value.message


def test_a_bad_mill_vault_key_is_a_clear_error_that_does_not_echo_it(tmp_path: Path) -> None:
    for bad in ("not-a-key-but-a-password!", "c2hvcnQ", "a" * 60, "zz zz"):
        with pytest.raises(MillError) as caught:
            MasterKey.load(_settings(tmp_path, bad))
        text = f"{caught.value.message} {caught.value.hint}"
        assert "MILL_VAULT_KEY" in text and "32 bytes" in text
        assert bad not in text


def test_a_damaged_key_file_names_the_file_not_its_content(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    settings.home.mkdir(parents=True)
    path = settings.home / KEY_FILE_NAME
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"oops-this-is-no-key")
    os.close(fd)
    with pytest.raises(MillError) as caught:
        MasterKey.load(settings)
    assert str(path) in caught.value.message and "oops" not in caught.value.message


def test_settings_read_the_key_from_the_environment() -> None:
    settings = Settings.from_env({"MILL_HOME": "/tmp/x", "MILL_VAULT_KEY": "k" * 43})
    assert settings.vault_key == "k" * 43
    assert "k" * 43 not in repr(settings)
    assert Settings.from_env({"MILL_HOME": "/tmp/x", "MILL_VAULT_KEY": ""}).vault_key is None
