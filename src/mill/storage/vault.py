"""The workspace vault's cryptography: one master key, AES-256-GCM for every secret.

The master key is 32 random bytes, written as URL-safe base64 (what
``python -c "import secrets; print(secrets.token_urlsafe(32))"`` prints). It comes from
``MILL_VAULT_KEY`` when that is set, else from ``<MILL_HOME>/vault.key``, which is created
(mode 0600) on first use. A sealed secret is ``nonce (12 random bytes) + ciphertext + tag``;
the associated data binds it to ``<workspace>/<name>``, so a row copied to another name or
workspace does not open. ``key_id`` (a short hash of the key, never the key) is stored beside
each ciphertext, so a server started with another key says so instead of failing obscurely.

No error raised here carries a key or a plaintext: messages name the secret, the key's
source and key ids only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mill.config import Settings
from mill.errors import ConflictError, MillError

__all__ = ["KEY_BYTES", "KEY_FILE_NAME", "NONCE_BYTES", "MasterKey", "secret_aad"]

KEY_BYTES = 32
NONCE_BYTES = 12
KEY_FILE_NAME = "vault.key"
_ENV_NAME = "MILL_VAULT_KEY"
_KEY_TEXT = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")
_NEW_KEY_HINT = 'make one with: python -c "import secrets; print(secrets.token_urlsafe(32))"'


def secret_aad(workspace: str, name: str) -> bytes:
    """The associated data that binds a sealed value to its workspace and name."""
    return f"{workspace}/{name}".encode()


class MasterKey:
    """The vault's master key; ``repr`` and every message show only its id and source."""

    __slots__ = ("_aead", "key_id", "source")

    def __init__(self, key: bytes, source: str) -> None:
        if len(key) != KEY_BYTES:
            raise MillError(f"the vault key from {source} is not {KEY_BYTES} bytes long")
        self._aead = AESGCM(key)
        self.key_id = hashlib.sha256(b"mill-vault-key-id\0" + key).hexdigest()[:16]
        self.source = source

    def __repr__(self) -> str:
        return f"MasterKey(key_id={self.key_id!r}, source={self.source!r})"

    @classmethod
    def load(cls, settings: Settings) -> MasterKey:
        """``settings.vault_key`` (MILL_VAULT_KEY) if set, else the home's key file."""
        if settings.vault_key:
            return cls(_decode(settings.vault_key, _ENV_NAME), _ENV_NAME)
        path = settings.home / KEY_FILE_NAME
        return cls(_decode(_read_or_create(path), str(path)), str(path))

    def seal(self, plaintext: str, aad: bytes) -> bytes:
        """Encrypt ``plaintext`` with a fresh random nonce, bound to ``aad``."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext.encode("utf-8"), aad)

    def open(self, blob: bytes, aad: bytes, *, key_id: str | None = None) -> str:
        """Decrypt what :meth:`seal` made for the same ``aad``.

        ``key_id`` is the id stored with the ciphertext; when it is not this key's, the
        error says so (a server started with another MILL_VAULT_KEY or key file).
        """
        label = aad.decode("utf-8", "replace")
        if key_id is not None and key_id != self.key_id:
            raise ConflictError(
                f"secret {label!r} was sealed with vault key {key_id}, but this server's key "
                f"(from {self.source}) is {self.key_id}",
                hint=f"start the server with the key whose id is {key_id}, "
                "or set the secret again to seal it with the current key",
                details={"secret": label, "key_id": key_id, "vault_key_id": self.key_id},
            )
        if len(blob) <= NONCE_BYTES:
            raise MillError(f"secret {label!r} is stored damaged (too short to be sealed)")
        try:
            data = self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
        except InvalidTag:
            raise ConflictError(
                f"secret {label!r} does not open with vault key {self.key_id} (from "
                f"{self.source}): it was sealed with another key, for another name, or altered",
                hint="set the secret again to replace it",
                details={"secret": label, "vault_key_id": self.key_id},
            ) from None
        return data.decode("utf-8")


def _decode(text: str, source: str) -> bytes:
    """The key's bytes; an error names the source and what is expected, never the text."""
    clean = text.strip()
    key: bytes | None = None
    if _KEY_TEXT.match(clean):
        try:
            key = base64.urlsafe_b64decode(clean + "=" * (-len(clean) % 4))
        except (binascii.Error, ValueError):
            key = None
    if key is None or len(key) != KEY_BYTES:
        raise MillError(
            f"{source} does not hold a valid vault key: expected the URL-safe base64 of "
            f"{KEY_BYTES} bytes (43 characters)",
            hint=_NEW_KEY_HINT,
        )
    return key


def _read_or_create(path: Path) -> str:
    """The key file's text, made on first use: complete and 0600 before it has its name."""
    try:
        return _read_private(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode().rstrip("=") + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)  # fails if another process made the key first: use theirs
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
    return _read_private(path)


def _read_private(path: Path) -> str:
    fd = os.open(path, os.O_RDONLY)
    with os.fdopen(fd, encoding="ascii", errors="replace") as f:
        mode = stat.S_IMODE(os.fstat(f.fileno()).st_mode)
        if mode & 0o077:
            raise MillError(
                f"the vault key file {path} can be read by other users (mode {mode:04o}); "
                f"refusing to use it: run `chmod 600 {path}`",
                hint="the key opens every secret of this home; only its owner may read it",
            )
        return f.read()
