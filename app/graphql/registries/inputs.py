"""Inputs of registry mutations, and their validation into table columns.

On update every field is optional and an omitted (or null) field is left as it is. An
empty string removes ``username``, ``password`` or ``imagePrefix``; a new ``password``
replaces the stored one. The password is encrypted before it is stored and never read
back. Credentials belong to the host they were given for: a ``url`` naming another host
while a password is stored must come with the password again (or ``password: ""``), so
a changed URL never carries the old password to a new host unnoticed.
"""

from __future__ import annotations

import re
from typing import Any

import strawberry

from app.crypto import Cipher
from app.db.models import Registry as RegistryRow
from app.errors import BadInput
from app.graphql.limits import NAME_MAX, check_display_name, check_length
from app.registry.address import URL_MAX, check_image_prefix, parse_registry_url

SECRET_MAX = 16_384  # a password or access token
USERNAME_MAX = 200
_USERNAME_BAD = re.compile(r"[\x00-\x20\x7f:]")


@strawberry.input(description="A registry to push images to")
class CreateRegistryInput:
    name: str = strawberry.field(description="unique; 1-100 characters")
    url: str = strawberry.field(
        description="host[:port] or http(s)://host[:port]; no path (use imagePrefix), no "
        "credentials (use username and password). Loopback hosts without a scheme are plain "
        "http, like Docker"
    )
    username: str | None = None
    password: str | None = strawberry.field(
        default=None, description="password or access token; write-only, stored encrypted"
    )
    image_prefix: str | None = strawberry.field(
        default=None,
        description="namespace under the host (e.g. team/images): images are pushed as "
        "<host>/<imagePrefix>/<appName>:<deploymentId>",
    )


@strawberry.input(description="Changes to a registry; an omitted field is kept")
class UpdateRegistryInput:
    name: str | None = None
    url: str | None = strawberry.field(
        default=None,
        description='a new host while a password is stored needs password too (or "")',
    )
    username: str | None = strawberry.field(default=None, description='"" removes it')
    password: str | None = strawberry.field(
        default=None,
        description='a new value replaces the stored one; "" removes it; omitted keeps it',
    )
    image_prefix: str | None = strawberry.field(default=None, description='"" removes it')


def registry_columns(
    data: CreateRegistryInput | UpdateRegistryInput,
    cipher: Cipher,
    *,
    current: RegistryRow | None = None,
) -> dict[str, Any]:
    """Checked columns for what ``data`` gives, with ``current`` for what it omits."""
    cols: dict[str, Any] = {}
    if data.name is not None:
        cols["name"] = check_display_name(data.name, "name", NAME_MAX)
    if data.url is not None:
        address = parse_registry_url(check_length(data.url, "url", URL_MAX))
        cols["host"] = address.host
        cols["url"] = f"{address.scheme}://{address.host}" if address.scheme else address.host
    if data.username is not None:
        cols["username"] = _username(data.username)
    if data.password is not None:
        cols["password_enc"] = _password(data.password, cipher)
    host = cols.get("host") or (current.host if current else "")
    if data.image_prefix is not None:
        cols["image_prefix"] = check_image_prefix(data.image_prefix, host=host)
    elif current is not None and current.image_prefix and "host" in cols:
        check_image_prefix(current.image_prefix, host=host)  # still fits with the new host
    _check_consistent(cols, current)
    return cols


def _username(value: str) -> str | None:
    if len(value) > USERNAME_MAX or _USERNAME_BAD.search(value):
        raise BadInput(
            f"username must be at most {USERNAME_MAX} characters, without spaces, control "
            "characters or ':'"
        )
    return value or None


def _password(value: str, cipher: Cipher) -> str | None:
    check_length(value, "password", SECRET_MAX)
    if "\x00" in value:
        raise BadInput("password must not contain NUL")
    return cipher.encrypt_json(value) if value else None


def _check_consistent(cols: dict[str, Any], current: RegistryRow | None) -> None:
    def merged(column: str) -> Any:
        if column in cols:
            return cols[column]
        return getattr(current, column) if current is not None else None

    if merged("password_enc") and not merged("username"):
        raise BadInput("a password needs a username: set username too")
    if (
        current is not None
        and current.password_enc
        and "host" in cols
        and cols["host"] != current.host
        and "password_enc" not in cols
    ):
        raise BadInput(
            f"url moves the registry from {current.host} to {cols['host']}: the stored password "
            'was given for the old host; give password again (or password: "" to remove it)'
        )
