"""Registry inputs into columns: normalised, checked, the password encrypted; and the
application's references to registries."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from app.crypto import Cipher
from app.db.models import Registry
from app.errors import BadInput
from app.graphql.applications.inputs import UpdateApplicationInput, settings_columns
from app.graphql.registries.inputs import (
    CreateRegistryInput,
    UpdateRegistryInput,
    registry_columns,
)

CIPHER = Cipher(Fernet.generate_key())


def stored(**fields: object) -> Registry:
    base: dict[str, object] = {
        "id": "r1",
        "name": "r",
        "url": "127.0.0.1:5001",
        "host": "127.0.0.1:5001",
    }
    return Registry(**(base | fields))


def test_create_normalises_and_encrypts() -> None:
    cols = registry_columns(
        CreateRegistryInput(
            name=" r ",
            url="HTTPS://Reg.Example.com:443/",
            username="u",
            password="pw-123",
            image_prefix="team/images",
        ),
        CIPHER,
    )
    assert cols["name"] == "r"
    assert (cols["url"], cols["host"]) == ("https://reg.example.com:443", "reg.example.com:443")
    assert cols["image_prefix"] == "team/images"
    assert "pw-123" not in cols["password_enc"]
    assert CIPHER.decrypt_json(cols["password_enc"]) == "pw-123"


def test_empty_strings_remove_and_omitted_fields_are_kept() -> None:
    current = stored(username="u", password_enc=CIPHER.encrypt_json("pw"), image_prefix="a")
    assert registry_columns(UpdateRegistryInput(), CIPHER, current=current) == {}
    cols = registry_columns(
        UpdateRegistryInput(username="", password="", image_prefix=""), CIPHER, current=current
    )
    assert cols == {"username": None, "password_enc": None, "image_prefix": None}


def test_removing_the_username_alone_would_orphan_the_password() -> None:
    current = stored(username="u", password_enc=CIPHER.encrypt_json("pw"))
    with pytest.raises(BadInput, match="a password needs a username"):
        registry_columns(UpdateRegistryInput(username=""), CIPHER, current=current)


def test_a_new_host_with_a_stored_password_needs_it_again() -> None:
    current = stored(username="u", password_enc=CIPHER.encrypt_json("pw"))
    with pytest.raises(BadInput, match="give password again") as caught:
        registry_columns(UpdateRegistryInput(url="evil.example.com"), CIPHER, current=current)
    assert "pw" not in str(caught.value).replace("password", "")
    same = registry_columns(
        UpdateRegistryInput(url="http://127.0.0.1:5001"), CIPHER, current=current
    )
    assert same["host"] == "127.0.0.1:5001"
    without = stored(username="u")
    assert registry_columns(UpdateRegistryInput(url="evil.example.com"), CIPHER, current=without)


def test_the_stored_prefix_must_still_fit_a_longer_host() -> None:
    current = stored(image_prefix="p" * 180)
    with pytest.raises(BadInput, match="imagePrefix must be at most"):
        registry_columns(
            UpdateRegistryInput(url=f"{'h' * 40}.example.com"), CIPHER, current=current
        )


def test_application_references_omitted_null_and_empty() -> None:
    assert "registry_id" not in settings_columns(UpdateApplicationInput(), CIPHER)
    cols = settings_columns(
        UpdateApplicationInput(registry_id=None, rollback_registry_id=""),
        CIPHER,  # type: ignore[arg-type]
    )
    assert cols == {"registry_id": None, "rollback_registry_id": None}
    given = settings_columns(UpdateApplicationInput(registry_id="abc"), CIPHER)  # type: ignore[arg-type]
    assert given == {"registry_id": "abc"}
    with pytest.raises(BadInput, match="registryId must be at most 24"):
        settings_columns(UpdateApplicationInput(registry_id="x" * 25), CIPHER)  # type: ignore[arg-type]
