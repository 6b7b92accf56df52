"""Registry URLs and image prefixes: what is accepted, how it is normalised, what is refused."""

from __future__ import annotations

import pytest

from app.errors import BadInput
from app.registry.address import (
    api_base,
    check_image_prefix,
    is_loopback,
    parse_registry_url,
    stored_secure,
)


@pytest.mark.parametrize(
    ("url", "host", "secure"),
    [
        ("registry.example.com", "registry.example.com", True),
        ("Registry.Example.COM:5000/", "registry.example.com:5000", True),
        ("https://ghcr.io", "ghcr.io", True),
        ("http://registry.internal:8080/", "registry.internal:8080", False),
        ("127.0.0.1:5000", "127.0.0.1:5000", False),  # loopback without a scheme: http
        ("https://127.0.0.1:5000", "127.0.0.1:5000", True),  # the scheme says otherwise
        ("localhost:5000", "localhost:5000", False),
        ("localhost", "localhost", False),
        ("127.1.2.3:05000", "127.1.2.3:5000", False),
        ("10.0.0.5:5000", "10.0.0.5:5000", True),  # not loopback: https like Docker
        ("  docker.io ", "docker.io", True),
        ("https://index.docker.io/", "docker.io", True),
        ("registry-1.docker.io", "docker.io", True),
    ],
)
def test_accepted_urls_are_normalised(url: str, host: str, secure: bool) -> None:
    address = parse_registry_url(url)
    assert (address.host, address.secure) == (host, secure)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("", "must not be empty"),
        ("https://user:pw@registry.example.com", "must not hold credentials"),
        ("user@registry.example.com", "must not hold credentials"),
        ("ftp://registry.example.com", "scheme must be http or https"),
        ("file:///etc/passwd", "scheme must be http or https"),
        ("registry.example.com/team", "without a path"),
        ("registry.example.com/../v2", "without a path"),
        ("registry.example.com//", "without a path"),
        ("registry.example.com?x=1", "query or fragment"),
        ("registry.example.com#frag", "query or fragment"),
        ("registry.example.com:0", "port must be within 1-65535"),
        ("registry.example.com:65536", "port must be within 1-65535"),
        ("registry.example.com:", "port must be within 1-65535"),
        ("registry.example.com:50:00", "port must be within"),
        ("registry example.com", "spaces"),
        ("registry.example.com\\x", "backslashes"),
        ("regis\x00try.com", "control characters"),
        ("-registry.example.com", "not a host name"),
        ("reg_istry.example.com", "not a host name"),
        ("[::1]:5000", "IPv6"),
        ("myregistry", "Docker Hub namespace"),  # myregistry/app would go to Docker Hub
        ("a" * 501, "at most 500"),
        ("x" * 64 + ".example.com", "not a host name"),  # a label over 63
    ],
)
def test_refused_urls_say_why(url: str, words: str) -> None:
    with pytest.raises(BadInput, match=words):
        parse_registry_url(url)


def test_a_single_label_with_a_port_is_a_registry() -> None:
    assert parse_registry_url("myregistry:5000").host == "myregistry:5000"


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("", None),
        ("  ", None),
        ("team", "team"),
        ("team/images", "team/images"),
        ("a.b_c__d-e--f", "a.b_c__d-e--f"),
    ],
)
def test_image_prefixes(prefix: str, expected: str | None) -> None:
    assert check_image_prefix(prefix, host="registry.example.com") == expected


@pytest.mark.parametrize(
    "prefix", ["Team", "/team", "team/", "team//x", "..", "team/../x", "-x", "x-", "a b", "a:b"]
)
def test_refused_image_prefixes(prefix: str) -> None:
    with pytest.raises(BadInput, match="imagePrefix"):
        check_image_prefix(prefix, host="registry.example.com")


def test_image_prefix_leaves_room_for_the_host_and_an_app_name() -> None:
    host = "registry.example.com"
    room = 255 - len(host) - 1 - 64
    assert check_image_prefix("a" * room, host=host) == "a" * room
    with pytest.raises(BadInput, match=f"at most {room} characters"):
        check_image_prefix("a" * (room + 1), host=host)


def test_loopback_and_api_base() -> None:
    assert is_loopback("127.0.0.1:5000") and is_loopback("localhost") and is_loopback("x.localhost")
    assert not is_loopback("10.0.0.1:5000") and not is_loopback("example.com")
    assert api_base("127.0.0.1:5000", secure=False) == "http://127.0.0.1:5000"
    assert api_base("ghcr.io", secure=True) == "https://ghcr.io"
    assert api_base("docker.io", secure=True) == "https://registry-1.docker.io"


def test_stored_secure_follows_the_rule_and_tolerates_old_rows() -> None:
    assert stored_secure("127.0.0.1:5000") is False
    assert stored_secure("http://registry.example.com") is False
    assert stored_secure("registry.example.com") is True
    assert stored_secure("http://odd row/with space") is False  # not parseable: the scheme
