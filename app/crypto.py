"""Encryption of secrets at rest (Fernet) and hashing of API keys."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from app.errors import Unavailable
from app.settings import Settings


def load_or_create_key(settings: Settings) -> bytes:
    """The Fernet key: from SLIPWAY_SECRET_KEY, else a 0600 file made once in the data dir."""
    if settings.secret_key:
        raw = settings.secret_key.encode()
    else:
        path = settings.data_dir / "secret.key"
        raw = _read_or_create(path)
    digest = hashlib.sha256(raw).digest()
    return base64.urlsafe_b64encode(digest)


def _read_or_create(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(value)
    return value


class Cipher:
    """Encrypts small JSON values; tokens are opaque text safe to store in any column."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def encrypt_json(self, value: object) -> str:
        return self._fernet.encrypt(json.dumps(value).encode()).decode()

    def decrypt_json(self, token: str | None, default: object = None) -> object:
        if not token:
            return default
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise Unavailable(
                "stored secret cannot be decrypted: wrong SLIPWAY_SECRET_KEY"
            ) from exc


def instance_id(settings: Settings) -> str:
    """This installation's id: one-way from its secret key, so every process of one
    installation agrees and another installation (another key) differs. Images are
    labelled with it (``slipway.instance``) so image retention never removes another
    installation's images from an engine they share."""
    key = load_or_create_key(settings)
    return hashlib.sha256(b"slipway-instance\0" + key).hexdigest()[:16]


def hash_api_key(key: str) -> str:
    """API keys are 256-bit random tokens, so one SHA-256 is a sound, fast digest."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> str:
    return "slw_" + secrets.token_urlsafe(32)
