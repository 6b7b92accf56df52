"""Each provider's signature check: valid, forged, unsigned, wrong secret, tampered body."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from app.webhooks.providers import PROVIDERS
from tests.fixtures.webhooks.samples import PROVIDERS as NAMES
from tests.fixtures.webhooks.samples import encode, push, signed_headers

SECRET = "s3cret-" + "x" * 20
SHA = "59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5"


def delivery(provider: str, secret: str | None = SECRET) -> tuple[bytes, Headers]:
    body = encode(push(provider, sha=SHA))
    return body, Headers(signed_headers(provider, "push", body, secret, delivery="d-1"))


@pytest.mark.parametrize("name", NAMES)
def test_valid_signature_passes(name: str) -> None:
    body, headers = delivery(name)
    assert PROVIDERS[name].verify(headers, body, SECRET)


@pytest.mark.parametrize("name", NAMES)
def test_unsigned_fails(name: str) -> None:
    body, headers = delivery(name, secret=None)
    assert not PROVIDERS[name].verify(headers, body, SECRET)


@pytest.mark.parametrize("name", NAMES)
def test_signed_with_another_secret_fails(name: str) -> None:
    body, headers = delivery(name, secret="not-the-secret")
    assert not PROVIDERS[name].verify(headers, body, SECRET)


@pytest.mark.parametrize("name", ["github", "gitea", "bitbucket"])
def test_tampered_body_fails(name: str) -> None:
    body, headers = delivery(name)
    tampered = body.replace(SHA.encode(), b"0" * 40)
    assert tampered != body
    assert not PROVIDERS[name].verify(headers, tampered, SECRET)


def test_gitlab_token_is_the_secret_itself_and_does_not_sign_the_body() -> None:
    body, headers = delivery("gitlab")
    assert headers["X-Gitlab-Token"] == SECRET
    assert PROVIDERS["gitlab"].verify(headers, body + b" ", SECRET)
    assert not PROVIDERS["gitlab"].verify(Headers({"X-Gitlab-Token": SECRET[:-1]}), body, SECRET)


@pytest.mark.parametrize(
    ("name", "header", "value"),
    [
        ("github", "X-Hub-Signature-256", "sha256=" + "0" * 64),
        ("github", "X-Hub-Signature-256", "0" * 64),  # no sha256= prefix
        ("github", "X-Hub-Signature", "sha1=" + "0" * 40),  # the legacy SHA-1 header alone
        ("gitea", "X-Gitea-Signature", "f" * 64),
        ("bitbucket", "X-Hub-Signature", "sha256=" + "a" * 64),
        ("gitlab", "X-Gitlab-Token", "guess"),
    ],
)
def test_forged_signature_fails(name: str, header: str, value: str) -> None:
    body, _ = delivery(name, secret=None)
    assert not PROVIDERS[name].verify(Headers({header: value}), body, SECRET)


def test_forged_signature_with_the_right_prefix_of_the_real_one_fails() -> None:
    body, headers = delivery("github")
    real = headers["X-Hub-Signature-256"]
    assert not PROVIDERS["github"].verify(Headers({"X-Hub-Signature-256": real[:-1]}), body, SECRET)


def test_gitea_also_accepts_the_github_style_header() -> None:
    body, headers = delivery("gitea")
    only_hub = Headers({"X-Hub-Signature-256": headers["X-Hub-Signature-256"]})
    assert PROVIDERS["gitea"].verify(only_hub, body, SECRET)


def test_uppercase_hex_digest_is_accepted() -> None:
    body, headers = delivery("github")
    upper = "sha256=" + headers["X-Hub-Signature-256"].removeprefix("sha256=").upper()
    assert PROVIDERS["github"].verify(Headers({"X-Hub-Signature-256": upper}), body, SECRET)


def test_non_ascii_signature_is_rejected_not_an_error() -> None:
    body, _ = delivery("github")
    headers = {"X-Hub-Signature-256": "sha256=ü" + "0" * 63}
    assert not PROVIDERS["github"].verify(headers, body, SECRET)
    assert not PROVIDERS["gitlab"].verify({"X-Gitlab-Token": "sëcret"}, body, SECRET)


@pytest.mark.parametrize(
    ("name", "headers", "expected"),
    [
        ("github", {"X-GitHub-Delivery": "72d3162e-cc78"}, "72d3162e-cc78"),
        ("gitea", {"X-Gitea-Delivery": "f6266f16"}, "f6266f16"),
        ("gitlab", {"X-Gitlab-Event-UUID": "a1", "Idempotency-Key": "b2"}, "a1"),
        ("gitlab", {"Idempotency-Key": "b2", "X-Gitlab-Webhook-UUID": "c3"}, "b2"),
        ("gitlab", {"X-Gitlab-Webhook-UUID": "c3"}, "c3"),
        ("bitbucket", {"X-Request-UUID": "r1", "X-Hook-UUID": "h1"}, "r1"),
        ("github", {}, None),
    ],
)
def test_delivery_ids(name: str, headers: dict[str, str], expected: str | None) -> None:
    assert PROVIDERS[name].delivery_id(Headers(headers), b"{}") == expected


def test_bitbucket_hook_uuid_alone_names_the_hook_so_the_body_tells_deliveries_apart() -> None:
    bitbucket = PROVIDERS["bitbucket"]
    hook = Headers({"X-Hook-UUID": "{b7a2e1c4}"})
    first, again = bitbucket.delivery_id(hook, b'{"a":1}'), bitbucket.delivery_id(hook, b'{"a":1}')
    other = bitbucket.delivery_id(hook, b'{"a":2}')
    assert first is not None and first == again
    assert other != first
