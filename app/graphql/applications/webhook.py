"""The application's webhook secret: made here, shown once, stored encrypted."""

from __future__ import annotations

import secrets

from sqlalchemy.orm import Session

from app.crypto import Cipher
from app.db.repos import applications
from app.errors import BadInput
from app.types import GIT_SOURCES, SourceType


def new_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


def store_webhook_secret(session: Session, app_id: str, secret: str, cipher: Cipher) -> None:
    """Replace the secret: deliveries signed with the old one fail from the commit on."""
    row = applications.require(session, app_id)
    if SourceType(row.source_type) not in GIT_SOURCES:
        raise BadInput(f"a {row.source_type} application takes no git webhooks")
    row.webhook_secret_enc = cipher.encrypt_json(secret)
