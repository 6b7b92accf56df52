"""Strict JSON decoding: what would fail later is refused with a reason."""

from __future__ import annotations

import pytest

from app.strict_json import JSONRefused, loads


def test_ordinary_json_and_paired_surrogates_decode() -> None:
    assert loads(b'{"a": [1, "\\u00e9", "\\ud83d\\ude00"]}') == {"a": [1, "é", "\U0001f600"]}
    assert loads('"x"') == "x"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"a": "\xff"}', "not valid UTF-8 (byte 7 is not)"),
        ('{"a": '.encode("utf-16"), "not valid UTF-8"),
        (b"{", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"a": "\\ud800"}', "unpaired surrogate"),
        (b'["\\uDFFF x"]', "unpaired surrogate"),
    ],
    ids=["utf8", "utf16", "syntax", "deep", "high-surrogate", "low-surrogate"],
)
def test_unusable_json_is_refused_with_its_reason(data: bytes, reason: str) -> None:
    with pytest.raises(JSONRefused, match=reason.replace("(", r"\(").replace(")", r"\)")):
        loads(data)
