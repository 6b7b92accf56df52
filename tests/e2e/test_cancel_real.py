"""cancelDeployment against the real Docker engine: queued, cloning, building, releasing.

Each running deployment must end CANCELLED within 5 s of the mutation, leave no process
or build container behind, and leave the Swarm service as it was before it started.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from app.types import Scope
from tests.conftest import APPS, make_git_repo
from tests.e2e.conftest import create_git_app, wait_finished
from tests.e2e.harness import Client, Server
from tests.e2e.polling import (
    CANCEL,
    messages,
    poll,
    state,
    timed_cancel,
    wait_step,
)
from tests.e2e.queries import CREATE_APP, DEPLOY

pytestmark = pytest.mark.docker

LIMIT_S = 5.0 + 0.5  # the promise (5 s) plus the polling and HTTP round trips
WHO = "cancelled by API key 'test'"  # the harness names every key "test"

UPDATE = """
mutation($id: ID!, $input: UpdateApplicationInput!) { updateApplication(id: $id, input: $input) {
  id } }"""


# -- helpers -------------------------------------------------------------------------------


def slow_repo(tmp_path: Path, token: str) -> Path:
    """tests/apps/slow-build with ``token`` in its RUN line: no build cache can skip the
    sleep, and its build container is recognisable by its command."""
    src = tmp_path / f"slow-build-{token}"
    shutil.copytree(APPS / "slow-build", src)
    dockerfile = src / "Dockerfile"
    text = dockerfile.read_text()
    assert "RUN sleep 60\n" in text
    dockerfile.write_text(text.replace("RUN sleep 60\n", f"RUN sleep 60 # {token}\n"))
    return make_git_repo(src, tmp_path / f"repo-slow-{token}")


def build_containers(docker_client: Any, token: str, *, all: bool = False) -> list[str]:  # noqa: A002
    """Containers (running ones unless ``all``) whose command carries ``token``."""
    found = docker_client.api.containers(all=all)
    return [c["Id"] for c in found if token in (c.get("Command") or "")]


def processes_with(text: str) -> list[str]:
    """Command lines of live processes on this machine that contain ``text``."""
    needle, found = text.encode(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or entry.name == str(os.getpid()):
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # it ended meanwhile, or is not ours to read
            continue
        if needle in cmdline:
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


class SilentRemote:
    """A TCP server on loopback that accepts connections and never says a word."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port: int = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self.accepted:
            conn.close()
        self.listener.close()


@contextmanager
def silent_remote() -> Iterator[SilentRemote]:
    remote = SilentRemote()
    try:
        yield remote
    finally:
        remote.close()


def service_named(docker_client: Any, name: str) -> dict[str, Any] | None:
    services = docker_client.api.services(filters={"name": name})
    return next((s for s in services if s["Spec"]["Name"] == name), None)


def answers(port: int, path: str = "/") -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as res:
            body: str = res.read().decode()
            return body
    except OSError:
        return None


def assert_cancelled(dep: dict[str, Any], elapsed: float, client: Client) -> None:
    assert dep["status"] == "CANCELLED", dep
    assert elapsed < LIMIT_S, f"cancel took {elapsed:.2f}s (limit {LIMIT_S}s)"
    assert WHO in (dep["errorMessage"] or ""), dep["errorMessage"]
    logged = messages(client, dep["id"])
    assert any(WHO in m for m in logged), logged[-5:]


# -- queued --------------------------------------------------------------------------------


def test_queued_deployment_is_cancelled_at_once_and_never_runs(
    real_server: Server, git_repo: Any, cleanup: list[str], docker_client: Any, tmp_path: Path
) -> None:
    client = real_server.client(Scope.DEPLOY)
    token = secrets.token_hex(6)
    slow = create_git_app(real_server, slow_repo(tmp_path, token), cleanup, name="slow")
    other = create_git_app(real_server, git_repo("static-ok"), cleanup, name="queued")
    running = client(DEPLOY, id=slow["id"])["deployApplication"]
    wait_step(client, running["id"], "BUILD_IMAGE", timeout=60)
    # one build at a time on the local engine: the second application waits its turn
    waiting = client(DEPLOY, id=other["id"])["deployApplication"]
    assert waiting["status"] == "QUEUED"
    time.sleep(0.5)
    assert state(client, waiting["id"])["status"] == "QUEUED"

    started = time.monotonic()
    returned = client(CANCEL, id=other["id"])["cancelDeployment"]
    dep = state(client, waiting["id"])
    elapsed = time.monotonic() - started
    assert returned["id"] == waiting["id"]
    assert dep["status"] == "CANCELLED", "a queued deployment is cancelled by the mutation"
    assert elapsed < 2, f"cancelling a queued deployment took {elapsed:.2f}s"
    assert dep["startedAt"] is None and dep["finishedAt"] is not None
    assert dep["steps"] == [], "it never ran"
    assert dep["application"]["status"] == "IDLE"
    assert any(WHO in m for m in messages(client, dep["id"]))
    assert service_named(docker_client, other["appName"]) is None

    # The other application's deployment was not touched, and can be cancelled in turn.
    still = state(client, running["id"])
    assert still["status"] == "RUNNING" and not still["cancelRequested"]
    elapsed, ended, _ = timed_cancel(client, slow["id"], running["id"])
    assert_cancelled(ended, elapsed, client)
    assert state(client, waiting["id"])["startedAt"] is None, "the cancelled one never starts"


# -- cloning -------------------------------------------------------------------------------


def test_cancel_while_cloning_kills_git(
    real_server: Server, cleanup: list[str], tmp_path: Path
) -> None:
    client = real_server.client(Scope.DEPLOY)
    token = f"hang-{secrets.token_hex(6)}"
    with silent_remote() as remote:
        url = f"http://127.0.0.1:{remote.port}/{token}.git"
        app = client(
            CREATE_APP,
            input={"name": "hang", "sourceType": "GIT", "repository": url, "branch": "main"},
        )["createApplication"]
        cleanup.append(app["appName"])
        dep = client(DEPLOY, id=app["id"])["deployApplication"]
        wait_step(client, dep["id"], "FETCH_SOURCE", timeout=30)
        poll(
            lambda: True if remote.accepted and processes_with(token) else None,
            timeout=30,
            what="git to connect to the silent remote",
        )
        time.sleep(1)  # git is now blocked reading an answer that never comes
        assert state(client, dep["id"])["status"] == "RUNNING"
        assert processes_with(token), "git is still waiting"

        started = time.monotonic()
        elapsed, ended, returned = timed_cancel(client, app["id"], dep["id"])
        assert returned is not None and returned["id"] == dep["id"]
        assert_cancelled(ended, elapsed, client)
        leftovers = poll(
            lambda: None if processes_with(token) else [],
            timeout=max(0.1, LIMIT_S - (time.monotonic() - started)),
            what=f"the git processes of {url} to end: {processes_with(token)}",
        )
        assert leftovers == []
    assert [(s["step"], s["outcome"]) for s in ended["steps"]] == [("FETCH_SOURCE", "CANCELLED")]
    assert ended["application"]["status"] == "IDLE"
    work = real_server.settings.work_dir / app["appName"]
    assert not (work / f"incoming-{dep['id']}").exists(), "the partial clone is removed"


# -- building ------------------------------------------------------------------------------


def test_cancel_while_building_aborts_the_build(
    real_server: Server, cleanup: list[str], docker_client: Any, tmp_path: Path
) -> None:
    client = real_server.client(Scope.DEPLOY)
    token = secrets.token_hex(6)
    app = create_git_app(real_server, slow_repo(tmp_path, token), cleanup, name="slow")
    dep = client(DEPLOY, id=app["id"])["deployApplication"]
    try:
        wait_step(client, dep["id"], "BUILD_IMAGE", timeout=60)
        poll(
            lambda: build_containers(docker_client, token) or None,
            timeout=60,
            what="the build's RUN sleep container",
        )
        time.sleep(1)
        started = time.monotonic()
        elapsed, ended, _ = timed_cancel(client, app["id"], dep["id"])
        assert_cancelled(ended, elapsed, client)
        poll(
            lambda: None if build_containers(docker_client, token) else True,
            timeout=30,
            what="the build container to stop",
            every=0.02,
        )
        took = time.monotonic() - started
        assert took < LIMIT_S, f"build container still running {took:.2f}s after the cancel"
        assert [s["step"] for s in ended["steps"]] == ["FETCH_SOURCE", "BUILD_IMAGE"]
        assert ended["steps"][-1]["outcome"] == "CANCELLED"
        assert ended["imageRef"] is None
        assert not docker_client.images.list(name=f"slipway/{app['appName']}")
        assert ended["application"]["status"] == "IDLE"
        assert service_named(docker_client, app["appName"]) is None
    finally:
        for cid in build_containers(docker_client, token, all=True):
            with suppress(docker.errors.APIError):  # the daemon may be removing it already
                docker_client.api.remove_container(cid, force=True)


# -- releasing -----------------------------------------------------------------------------


def test_cancel_during_verify_rolls_the_service_back(
    real_server: Server, git_repo: Any, cleanup: list[str], docker_client: Any
) -> None:
    client = real_server.client(Scope.DEPLOY)
    app = create_git_app(real_server, git_repo("static-ok"), cleanup, healthCheckPath="/health")
    first = wait_finished(client, client(DEPLOY, id=app["id"])["deployApplication"]["id"], 180)
    assert first["status"] == "DONE", first["errorMessage"]
    before = service_named(docker_client, app["appName"])
    assert before is not None
    assert _image(before) == first["imageRef"]

    # The next release can never pass its check: a path that answers 404.
    client(UPDATE, id=app["id"], input={"healthCheckPath": "/missing", "healthTimeout": 300})
    second = client(DEPLOY, id=app["id"])["deployApplication"]
    wait_step(client, second["id"], "VERIFY_HEALTH", timeout=120)
    poll(
        lambda: any("HTTP 404" in m for m in messages(client, second["id"])) or None,
        timeout=60,
        what="the health probe to see the 404",
        every=0.3,
    )
    released = service_named(docker_client, app["appName"])
    assert released is not None and _image(released) == f"slipway/{app['appName']}:{second['id']}"
    assert state(client, second["id"])["application"]["status"] == "RUNNING"

    elapsed, ended, _ = timed_cancel(client, app["id"], second["id"])
    assert_cancelled(ended, elapsed, client)
    assert ended["steps"][-1] == {"step": "VERIFY_HEALTH", "outcome": "CANCELLED"}
    assert ended["application"]["status"] == "DONE", "back to what the first deployment left"

    after = service_named(docker_client, app["appName"])
    assert after is not None and after["ID"] == before["ID"]
    assert _image(after) == first["imageRef"], "rolled back to the first deployment's image"
    assert after["Spec"]["Labels"]["slipway.deployment"] == first["id"]
    assert any("rolling service" in m for m in messages(client, second["id"]))
    # Swarm replaces the cancelled release's task with one of the previous spec.
    body = poll(lambda: answers(app["port"]), timeout=60, what="the rolled-back service to answer")
    assert "hello from slipway" in body


def test_cancel_during_verify_of_a_first_release_removes_the_service(
    real_server: Server, git_repo: Any, cleanup: list[str], docker_client: Any
) -> None:
    client = real_server.client(Scope.DEPLOY)
    app = create_git_app(
        real_server, git_repo("static-ok"), cleanup, healthCheckPath="/missing", healthTimeout=300
    )
    dep = client(DEPLOY, id=app["id"])["deployApplication"]
    wait_step(client, dep["id"], "VERIFY_HEALTH", timeout=120)
    assert service_named(docker_client, app["appName"]) is not None, "the release created it"

    elapsed, ended, _ = timed_cancel(client, app["id"], dep["id"])
    assert_cancelled(ended, elapsed, client)
    assert service_named(docker_client, app["appName"]) is None, "the service it created is gone"
    assert ended["application"]["status"] == "IDLE"
    assert any("removing service" in m for m in messages(client, dep["id"]))
    # Nothing keeps running for it once Swarm has cleaned up its task.
    label = f"com.docker.swarm.service.name={app['appName']}"
    poll(
        lambda: None if docker_client.containers.list(filters={"label": label}) else True,
        timeout=30,
        what="the removed service's container to stop",
    )


def _image(service: dict[str, Any]) -> str:
    image: str = service["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    return image.split("@", 1)[0]
