"""A registry row as the engine sees it: decrypted auth, and https or http as Docker does."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from app.crypto import Cipher
from app.db.models import Registry
from app.engine.snapshot import registry_target


@pytest.mark.parametrize(
    ("url", "host", "secure"),
    [
        ("127.0.0.1:5000", "127.0.0.1:5000", False),  # loopback, no scheme: http like Docker
        ("localhost:5000", "localhost:5000", False),
        ("http://registry.internal:5000", "registry.internal:5000", False),
        ("https://127.0.0.1:5443", "127.0.0.1:5443", True),
        ("registry.example.com", "registry.example.com", True),
    ],
)
def test_secure_follows_dockers_rule(url: str, host: str, secure: bool) -> None:
    cipher = Cipher(Fernet.generate_key())
    row = Registry(
        id="r1", name="r", url=url, host=host, username="u", password_enc=cipher.encrypt_json("pw")
    )
    target = registry_target(row, cipher)
    assert target is not None
    assert (target.host, target.secure) == (host, secure)
    assert target.auth is not None and target.auth.password == "pw"
    assert "pw" not in repr(target)
