"""SLIPWAY_CORS_ORIGINS: checked at start, normalised as browsers send Origin."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.settings import Settings


def settings(origins: str) -> Settings:
    return Settings(cors_origins=origins, _env_file=None)  # type: ignore[call-arg]


def test_origins_are_normalised() -> None:
    got = settings(" https://App.Example.com:443 ,http://localhost:5173,").cors_origin_list
    assert got == ("http://localhost:5173", "https://app.example.com")
    assert settings("").cors_origin_list == ()
    assert settings("*").cors_origin_list == ("*",)


@pytest.mark.parametrize("bad", ["app.example.com", "https://app.example.com/path", "null"])
def test_a_value_that_is_not_an_origin_is_refused_at_start(bad: str) -> None:
    with pytest.raises(ValidationError, match="Invalid origin"):
        settings(f"https://ok.example.com,{bad}")
