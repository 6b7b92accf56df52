"""Registry credentials go to the registry host they were bound to, never to the host an
image reference happens to name (issue 9, finding 5: defence in depth at pull time)."""

from __future__ import annotations

from typing import Any

import docker.errors

from app.runtime.images import authed_api, pull_image
from app.types import CancelToken, LogStream, RegistryAuth

AUTH = RegistryAuth(username="deployer", password="registry-s3cret-pw", registry="127.0.0.1:5000")


class RecordingEngine:
    """The few APIClient calls a pull makes; records the auth each pull carried."""

    def __init__(self) -> None:
        self.hooks: dict[str, list[Any]] = {}
        self.pulls: list[dict[str, Any]] = []  # shared with per-call views (shallow copy)
        self.pulled: set[str] = set()

    def inspect_image(self, image: str) -> dict[str, Any]:
        if not self.pulls:
            raise docker.errors.NotFound("no such image")
        repo = image.rsplit(":", 1)[0]
        return {"Id": "sha256:" + "1" * 64, "RepoDigests": [f"{repo}@sha256:{'2' * 64}"]}

    def pull(self, repo: str, *, tag: str, auth_config: Any = None, **_: Any) -> list[Any]:
        self.pulls.append({"repo": repo, "tag": tag, "auth_config": auth_config})
        return [{"status": "Pull complete"}]


def _pull(engine: RecordingEngine, image: str) -> list[str]:
    lines: list[str] = []

    def log(message: str, *, stream: LogStream = LogStream.STDOUT) -> None:  # noqa: ARG001
        lines.append(message)

    pull_image(engine, image, auth=AUTH, log=log, cancel=CancelToken())
    return lines


def test_credentials_are_sent_to_their_own_registry() -> None:
    engine = RecordingEngine()
    _pull(engine, "127.0.0.1:5000/acme/web:1")
    assert engine.pulls[-1]["auth_config"]["password"] == AUTH.password


def test_credentials_are_not_sent_to_another_registry() -> None:
    engine = RecordingEngine()
    lines = _pull(engine, "attacker.example/acme/web:1")
    assert engine.pulls[-1]["auth_config"] is None
    assert any("not sent to attacker.example" in line for line in lines)
    assert not any(AUTH.password in line for line in lines)


def test_the_release_sends_no_credentials_for_another_registry() -> None:
    engine = RecordingEngine()
    assert authed_api(engine, AUTH, "attacker.example/acme/web@sha256:" + "2" * 64) is engine
    view = authed_api(engine, AUTH, "127.0.0.1:5000/acme/web@sha256:" + "2" * 64)
    assert view is not engine and view._auth_configs.resolve_authconfig("127.0.0.1:5000")
