"""Which repository hosts a fetch may reach with SLIPWAY_BLOCK_PRIVATE_SOURCES on, and what
the refusals and connection failures say (nothing a port scan could use)."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from app.errors import Forbidden, SourceError
from app.sources.addresses import (
    Endpoint,
    endpoint,
    is_public,
    pin_config,
    relative_escapes,
    resolve_public,
)
from app.sources.git import UNREACHABLE, GitPythonClient, _Failed, _Job
from app.sources.validate import check_local_source
from app.types import CancelToken, GitSourceSpec, Scope


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # the cloud metadata service
        "100.64.0.1",  # shared address space
        "0.0.0.0",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "::1",
        "::",
        "fe80::1",
        "fd00:ec2::254",  # unique-local (AWS's IPv6 metadata address)
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["140.82.112.3", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/acme/web.git", Endpoint("https", "github.com", 443)),
        ("http://u:p@10.0.0.5:6379/x.git", Endpoint("http", "10.0.0.5", 6379)),
        ("ssh://git@[::1]:2222/r.git", Endpoint("ssh", "::1", 2222)),
        ("git://example.com/r.git", Endpoint("git", "example.com", 9418)),
        ("git@169.254.169.254:acme/web.git", Endpoint("ssh", "169.254.169.254", 22)),
        ("file:///srv/repo.git", None),
    ],
)
def test_the_endpoint_of_each_url_form(url: str, expected: Endpoint | None) -> None:
    assert endpoint(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/r.git",
        "http://localhost/r.git",
        "https://169.254.169.254/latest/meta-data",
        "http://[::1]:9000/r.git",
        "ssh://git@10.0.0.7/r.git",
        "git@192.168.0.10:acme/web.git",
        "http://0x7f000001/r.git",  # 127.0.0.1 spelt in hex resolves the same
    ],
)
def test_a_private_host_is_refused_without_naming_its_address_or_port(url: str) -> None:
    found = endpoint(url)
    assert found is not None
    with pytest.raises(SourceError) as info:
        resolve_public(found)
    message = str(info.value)
    assert "not allowed" in message and "SLIPWAY_BLOCK_PRIVATE_SOURCES" in message
    assert "127.0.0.1" not in message.replace(repr(found.host), "")
    assert str(found.port) not in message


def test_a_name_resolving_to_any_private_address_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def two(host: str, port: Any, **_: Any) -> list[Any]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("140.82.112.3", 443)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", 443)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", two)
    with pytest.raises(SourceError, match="not allowed"):
        resolve_public(Endpoint("https", "rebind.example", 443))


def test_a_public_host_is_pinned_and_redirects_are_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda *a, **k: [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2606:50c0::153", 443))],
    )
    target = Endpoint("https", "github.com", 443)
    addresses = resolve_public(target)
    assert addresses == ["2606:50c0::153"]
    assert pin_config(target, addresses) == [
        ("http.followRedirects", "false"),
        ("http.curloptResolve", "github.com:443:[2606:50c0::153]"),
    ]


def test_an_unresolvable_host_says_so() -> None:
    with pytest.raises(SourceError, match="could not be resolved"):
        resolve_public(Endpoint("https", "no-such-host.invalid", 443))


@pytest.mark.parametrize(
    ("url", "parent", "escapes"),
    [
        ("../lib.git", "https://h/acme/web.git", False),
        ("../../lib.git", "https://h/acme/web.git", False),
        ("../../../evil.example/x.git", "https://h/acme/web.git", True),
        ("./../../lib.git", "git@h:acme/web.git", False),
        ("../../../x", "git@h:acme/web.git", True),
    ],
)
def test_relative_submodule_urls_may_not_climb_out_of_the_host(
    url: str, parent: str, escapes: bool
) -> None:
    assert relative_escapes(url, parent=parent) is escapes


def test_with_blocking_on_a_loopback_repository_is_refused_before_git_runs(
    tmp_path: Any,
) -> None:
    client = GitPythonClient(block_private=True)
    spec = GitSourceSpec(repository="http://127.0.0.1:1/acme/web.git", branch="main")
    lines: list[str] = []
    with pytest.raises(SourceError, match="not allowed"):
        client.clone(
            spec, tmp_path / "co", log=lambda t, **_: lines.append(t), cancel=CancelToken()
        )
    assert lines == [] and not (tmp_path / "co").exists()


@pytest.mark.parametrize(
    "tail",
    [
        "fatal: unable to access 'http://10.0.0.5:6379/x/': Failed to connect to 10.0.0.5 "
        "port 6379 after 3 ms: Connection refused",
        "fatal: unable to access 'http://10.0.0.5:22/x/': Failed to connect to 10.0.0.5 "
        "port 22 after 130000 ms: Connection timed out",
        "fatal: unable to access 'http://10.0.0.5:25/x/': Empty reply from server",
        "fatal: unable to access 'http://10.0.0.5:3306/x/': Received HTTP/0.9 when not allowed",
        "ssh: connect to host 10.0.0.5 port 2222: Connection refused",
        "kex_exchange_identification: Connection closed by remote host",
    ],
)
def test_connection_failures_read_the_same_whatever_the_port_did(tail: str) -> None:
    job = _Job.__new__(_Job)
    object.__setattr__(job, "target", _target())
    object.__setattr__(job, "mask", lambda text: text)
    message = str(job.error(_Failed((tail,), 128)))
    assert message.endswith(UNREACHABLE)
    for detail in ("refused", "timed out", "Empty reply", "HTTP/0.9", "closed", "6379 after"):
        assert detail not in message


def _target() -> Any:
    from app.sources.git import CloneTarget

    return CloneTarget(url="http://10.0.0.5:6379/x.git", branch="main")


@pytest.mark.parametrize(
    ("cols", "current"),
    [
        ({"repository": "file:///srv/repo.git"}, None),
        ({"repository": "FILE:///etc"}, "https://h/a.git"),
        ({"submodules": True}, "file:///srv/repo.git"),
    ],
)
def test_a_file_repository_needs_admin(cols: dict[str, Any], current: str | None) -> None:
    with pytest.raises(Forbidden, match="ADMIN"):
        check_local_source(cols, current_repository=current, scopes={Scope.READ, Scope.DEPLOY})
    check_local_source(cols, current_repository=current, scopes={Scope.ADMIN})


@pytest.mark.parametrize(
    ("cols", "current"),
    [
        ({"repository": "https://h/a.git"}, "file:///srv/repo.git"),
        ({"env_enc": "x"}, "file:///srv/repo.git"),  # other settings of an admin's app
        ({"submodules": False}, "file:///srv/repo.git"),
        ({"submodules": True}, "https://h/a.git"),
    ],
)
def test_other_changes_need_only_deploy(cols: dict[str, Any], current: str | None) -> None:
    check_local_source(cols, current_repository=current, scopes={Scope.READ, Scope.DEPLOY})
