"""testRegistry over real HTTP: against the real htpasswd registry of scripts/services, the
open one, loopback servers that are not registries, and a port where nothing listens; and
the resolver's part with a FakeRegistryClient (what it asks, for which repository)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from app.engine.context import Adapters
from app.registry.base import RegistryCheckResult
from app.registry.fake import FakeRegistryClient
from app.settings import Settings
from app.types import Scope
from tests.e2e.conftest import Fakes
from tests.e2e.harness import Server, running_server
from tests.e2e.support_registries import CREATE, TEST, Recorded, assert_nowhere
from tests.support.auth_registry import AuthRegistry
from tests.support.fake_servers import closed_port, plain_http_server, silent_server

WRONG = "wr0ng-Password-for-check"


@pytest.fixture
def seen() -> list[str]:
    return []


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level(logging.DEBUG)
    return caplog


def steps(
    reachable: bool | None, registry: bool | None, login: bool | None, push: bool | None
) -> dict[str, bool | None]:
    return {
        "reachable": reachable,
        "isRegistry": registry,
        "credentialsAccepted": login,
        "pushAllowed": push,
    }


def check(server: Server, seen: list[str], **registry: Any) -> dict[str, Any]:
    admin = Recorded(server.url, server.key(Scope.ADMIN), seen)
    made = admin(CREATE, input={"name": "r", **registry})["createRegistry"]
    result: dict[str, Any] = admin(TEST, id=made["id"])["testRegistry"]
    return result


def test_the_right_password_is_accepted_and_push_allowed(
    fake_server: Server, shared_auth_registry: AuthRegistry, seen: list[str], logs: Any
) -> None:
    reg = shared_auth_registry
    result = check(
        fake_server,
        seen,
        url=reg.addr,
        username=reg.username,
        password=reg.password,
        imagePrefix="slipway-test",
    )
    assert result == {
        "ok": True,
        "message": f"{reg.addr} is a registry; credentials of user {reg.username!r} accepted; "
        "push to slipway-test/slipway-check allowed",
        **steps(True, True, True, True),
    }
    assert_nowhere(reg.password, fake_server, seen, logs)


def test_a_wrong_password_is_refused_by_name(
    fake_server: Server, shared_auth_registry: AuthRegistry, seen: list[str], logs: Any
) -> None:
    reg = shared_auth_registry
    result = check(fake_server, seen, url=reg.addr, username=reg.username, password=WRONG)
    assert result == {
        "ok": False,
        "message": f"credentials refused by {reg.addr} (user {reg.username!r})",
        **steps(True, True, False, None),
    }
    assert_nowhere(WRONG, fake_server, seen, logs)


def test_no_credentials_for_a_registry_that_needs_them(
    fake_server: Server, shared_auth_registry: AuthRegistry, seen: list[str]
) -> None:
    result = check(fake_server, seen, url=shared_auth_registry.addr)
    assert result["ok"] is False
    assert result | steps(True, True, False, None) == result
    assert "requires credentials: set username and password" in result["message"]


def test_an_open_registry_needs_no_login(
    fake_server: Server, registry_addr: str, seen: list[str]
) -> None:
    result = check(fake_server, seen, url=registry_addr)
    assert result == {
        "ok": True,
        "message": f"{registry_addr} is a registry; no login needed; push to slipway-check allowed",
        **steps(True, True, None, True),  # no login asked for
    }


def test_nothing_listening_is_not_reachable(fake_server: Server, seen: list[str]) -> None:
    addr = closed_port()
    result = check(fake_server, seen, url=addr, username="u", password=WRONG)
    assert result["ok"] is False
    assert result | steps(False, None, None, None) == result
    assert f"cannot connect to {addr}" in result["message"]
    assert "connection refused" in result["message"]
    assert WRONG not in result["message"]


def test_a_web_server_is_not_a_registry(fake_server: Server, seen: list[str]) -> None:
    with plain_http_server() as addr:
        result = check(fake_server, seen, url=addr, username="u", password=WRONG)
    assert result["ok"] is False
    assert result | steps(True, False, None, None) == result
    assert result["message"].startswith("not a registry (no Docker-Distribution-API-Version")
    assert f"http://{addr}/v2/" in result["message"]
    assert "web page" not in result["message"]  # the body is never quoted


def test_a_server_that_never_answers_times_out(
    tmp_path: Path, fakes: Fakes, seen: list[str]
) -> None:
    with running_server(tmp_path / "data", fakes.adapters, registry_timeout=1) as server:
        with silent_server() as addr:
            result = check(server, seen, url=addr)
    assert result["ok"] is False
    assert result | steps(False, None, None, None) == result
    assert "did not answer within" in result["message"]


def test_the_resolver_checks_the_stored_target(
    tmp_path: Path, fakes: Fakes, seen: list[str]
) -> None:
    """With a FakeRegistryClient: the check is asked for the registry's host and the
    prefix's check repository, and its answer is passed on as it is."""
    fake = FakeRegistryClient(
        check_result=RegistryCheckResult(
            ok=False,
            message="scripted: push refused",
            reachable=True,
            is_registry=True,
            credentials_accepted=True,
            push_allowed=False,
        )
    )

    def adapters(settings: Settings) -> Adapters:
        return Adapters(**{**vars(fakes.adapters(settings)), "registry": fake})

    with running_server(tmp_path / "data", adapters) as server:
        result = check(
            server,
            seen,
            url="https://registry.example.com",
            username="u",
            password=WRONG,
            imagePrefix="team/x",
        )
    assert result == {
        "ok": False,
        "message": "scripted: push refused",
        **steps(True, True, True, False),
    }
    assert fake.checks == [("registry.example.com", "team/x/slipway-check")]
