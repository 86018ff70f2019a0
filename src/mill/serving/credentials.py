"""Endpoint credentials: keys, ``aml_token`` tokens and the gateway's TLS certificate.

Keys are urlsafe random strings compared in constant time. A token is
``base64url(payload) + "." + base64url(HMAC-SHA256(secret, base64url(payload)))`` where the
payload is ``{"endpoint": <name>, "exp": <epoch seconds>}``; the secret is per endpoint and
never leaves the control plane, so a token is only good for the endpoint it was minted for
and only until it expires. ``mint_token`` answers in the shape of Azure's
``get-credentials`` for ``aml_token`` endpoints.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "key_matches",
    "mint_token",
    "new_key",
    "self_signed_certificate",
    "token_expiry",
    "verify_token",
]

_CERT_NAME = "gateway-cert.pem"
_KEY_NAME = "gateway-key.pem"
_CERT_DAYS = 365
_RENEW_BEFORE = dt.timedelta(days=7)  # a certificate this close to expiry is replaced


def new_key() -> str:
    """A new endpoint key: 32 random bytes, urlsafe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def key_matches(given: str, keys: Iterable[str]) -> bool:
    """Whether ``given`` is one of ``keys``; every key is compared, in constant time."""
    given_bytes = given.encode()
    matched = False
    for key in keys:
        if key and hmac.compare_digest(given_bytes, key.encode()):
            matched = True
    return matched


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, payload: str) -> str:
    return _b64(hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest())


def mint_token(
    secret: bytes, endpoint: str, lifetime_s: int = 3600, now: float | None = None
) -> dict[str, Any]:
    """A bearer token for ``endpoint``, as Azure's ``get-credentials`` returns it."""
    issued = int(time.time() if now is None else now)
    expiry = issued + int(lifetime_s)
    payload = _b64(json.dumps({"endpoint": endpoint, "exp": expiry}).encode())
    return {
        "accessToken": f"{payload}.{_sign(secret, payload)}",
        "expiryTimeUtc": expiry,
        "refreshAfterTimeUtc": issued + int(lifetime_s) // 2,
        "tokenType": "Bearer",
    }


def token_expiry(secret: bytes, endpoint: str, token: str, now: float | None = None) -> int:
    """The token's expiry (epoch seconds) when it is valid for ``endpoint`` now, else 0."""
    payload, dot, signature = token.partition(".")
    if not dot or not payload:
        return 0
    try:
        expected = _sign(secret, payload)
    except UnicodeEncodeError:
        return 0
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return 0
    try:
        claims = json.loads(_unb64(payload))
        expiry = int(claims["exp"])
        audience = claims["endpoint"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        return 0
    if audience != endpoint or expiry <= (time.time() if now is None else now):
        return 0
    return expiry


def verify_token(secret: bytes, endpoint: str, token: str, now: float | None = None) -> bool:
    """Whether ``token`` is signed with ``secret``, minted for ``endpoint`` and unexpired."""
    return token_expiry(secret, endpoint, token, now) > 0


def self_signed_certificate(hosts: list[str], folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for the gateway's TLS: ``(certfile, keyfile)`` in ``folder``.

    The certificate (EC P-256) names every host in ``hosts`` plus ``localhost`` and
    ``127.0.0.1`` as subject alternative names. One already in ``folder`` is reused while it
    names all of them and is not about to expire; the key file is readable by its owner only.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    certfile, keyfile = folder / _CERT_NAME, folder / _KEY_NAME
    wanted = list(dict.fromkeys([*hosts, "localhost", "127.0.0.1"]))
    names: list[x509.GeneralName] = []
    for host in wanted:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    now = dt.datetime.now(dt.timezone.utc)
    if certfile.is_file() and keyfile.is_file():
        try:
            existing = x509.load_pem_x509_certificate(certfile.read_bytes())
            san = existing.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            if existing.not_valid_after_utc - _RENEW_BEFORE > now and set(names) <= set(san.value):
                return certfile, keyfile
        except (ValueError, x509.ExtensionNotFound):
            pass  # unreadable or without names: replaced below
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, wanted[0])])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp_key = keyfile.with_name(f".{keyfile.name}.{os.getpid()}.tmp")
    fd = os.open(tmp_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key_pem)
    os.chmod(tmp_key, 0o600)
    os.replace(tmp_key, keyfile)
    tmp_cert = certfile.with_name(f".{certfile.name}.{os.getpid()}.tmp")
    tmp_cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    os.replace(tmp_cert, certfile)
    return certfile, keyfile
