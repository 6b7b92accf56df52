"""PUSH_IMAGE over real HTTP with the real engine: build → push to the htpasswd registry of
scripts/services → release by digest with the registry's auth; refused credentials, a
registry where nothing listens, and a cancel during the push.

The registry is made with ``createRegistry`` and set with ``updateApplication(registryId:)``.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from app.db.models import Deployment, Registry
from app.engine.adapters import real_adapters
from app.types import Scope
from tests.bench.raw_docker import HTTPD
from tests.conftest import APPS, make_git_repo
from tests.e2e.conftest import create_git_app, wait_finished
from tests.e2e.harness import Server, running_server
from tests.e2e.polling import messages, poll, state, timed_cancel
from tests.e2e.queries import DEPLOY
from tests.e2e.support_registries import CREATE as CREATE_REGISTRY
from tests.e2e.support_registries import UPDATE_APP
from tests.support.auth_registry import AuthRegistry
from tests.support.fake_servers import refusing_port
from tests.support.random_images import manifest_digest, registry_tags

pytestmark = [pytest.mark.docker, pytest.mark.registry]

PREFIX = "slipway-e2e"
PUSH_INTERVAL_S = 2.0  # app/registry/push.py's PROGRESS_INTERVAL_S
LAYER = re.compile(r"^[0-9a-f]{12}: ")
CANCEL_LIMIT_S = 5.5  # the cancel promise (5 s) plus polling and HTTP round trips


@pytest.fixture
def server(tmp_path: Path, docker_client: Any) -> Iterator[Server]:  # noqa: ARG001
    """A real server whose fetches and pushes are retried twice (1 s, then 2 s)."""
    with running_server(
        tmp_path / "data", real_adapters, endpoint_mode="dnsrr", health_timeout=60, fetch_retries=2
    ) as running:
        yield running


def random_repo(tmp_path: Path, size: int) -> Path:
    """tests/apps/static-ok plus a layer of ``size`` random bytes made by a RUN line with a
    token in it, so no build cache and no registry has that layer: the push uploads it."""
    token = uuid.uuid4().hex[:10]
    src = tmp_path / f"static-random-{token}"
    shutil.copytree(APPS / "static-ok", src)
    dockerfile = src / "Dockerfile"
    dockerfile.write_text(
        dockerfile.read_text() + f"RUN head -c {size} /dev/urandom > /blob # {token}\n"
    )
    return make_git_repo(src, tmp_path / f"repo-{token}")


def attach_registry(
    server: Server,
    app_id: str,
    *,
    host: str,
    username: str | None = None,
    password: str | None = None,
) -> str:
    """createRegistry (ADMIN), then updateApplication(registryId:) with a DEPLOY key."""
    registry = server.client(Scope.ADMIN)(
        CREATE_REGISTRY,
        input={
            "name": f"e2e-{uuid.uuid4().hex[:6]}",
            "url": host,
            "username": username,
            "password": password,
            "imagePrefix": PREFIX,
        },
    )["createRegistry"]
    updated = server.client(Scope.DEPLOY)(
        UPDATE_APP, id=app_id, input={"registryId": registry["id"]}
    )["updateApplication"]
    assert updated["registryId"] == registry["id"]
    return str(registry["id"])


def _registry_name(server: Server, registry_id: str) -> str:
    with server.db.session() as session:
        row = session.get(Registry, registry_id)
        assert row is not None
        return row.name


def _recorded_registry(server: Server, dep_id: str) -> str | None:
    with server.db.session() as session:
        dep = session.get(Deployment, dep_id)
        assert dep is not None
        return dep.registry_id


def test_build_push_and_release_by_digest(
    server: Server,
    shared_auth_registry: AuthRegistry,
    cleanup: list[str],
    docker_client: Any,
    tmp_path: Path,
) -> None:
    reg = shared_auth_registry
    app = create_git_app(server, random_repo(tmp_path, 24_000_000), cleanup, name="pushed")
    registry_id = attach_registry(
        server, app["id"], host=reg.addr, username=reg.username, password=reg.password
    )
    client = server.client(Scope.DEPLOY)
    dep_id = client(DEPLOY, id=app["id"])["deployApplication"]["id"]
    done = wait_finished(client, dep_id, timeout=240)
    assert done["status"] == "DONE", done["errorMessage"]
    assert [s["step"] for s in done["steps"]] == [
        "FETCH_SOURCE",
        "BUILD_IMAGE",
        "PUSH_IMAGE",
        "RELEASE",
        "VERIFY_HEALTH",
    ]
    repository = f"{reg.addr}/{PREFIX}/{app['appName']}"
    image_ref = done["imageRef"]
    assert re.fullmatch(re.escape(repository) + r"@sha256:[0-9a-f]{64}", image_ref), image_ref
    assert _recorded_registry(server, dep_id) == registry_id

    # the registry's HTTP API has the deployment's tag, on the digest the deployment recorded
    path, creds = f"{PREFIX}/{app['appName']}", (reg.username, reg.password)
    assert registry_tags(reg.addr, path, creds) == [dep_id]
    assert manifest_digest(reg.addr, path, dep_id, creds) == image_ref.split("@", 1)[1]

    # Swarm runs that digest, sent with the registry's auth (never in the spec or labels)
    service = docker_client.services.get(app["appName"])
    assert service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == image_ref
    assert reg.password not in json.dumps(service.attrs)
    with urllib.request.urlopen(f"http://127.0.0.1:{app['port']}/", timeout=5) as res:
        assert res.status == 200

    # the push's log: per layer, throttled, never the password
    push_lines = [x["message"] for x in done["logs"] if x["step"] == "PUSH_IMAGE"]
    assert push_lines[1] == (
        f"Pushing slipway/{app['appName']}:{dep_id} to {repository}:{dep_id} "
        f"(registry {_registry_name(server, registry_id)!r}, user {reg.username})"
    )
    layer_lines = [m for m in push_lines if LAYER.match(m)]
    layers = {m[:12] for m in layer_lines}
    assert len(layers) >= 3, push_lines  # busybox, www, the random blob
    assert sum(m.endswith(": Pushed") for m in layer_lines) >= 1, push_lines  # the blob at least
    push_s = next(s["durationMs"] for s in done["steps"] if s["step"] == "PUSH_IMAGE") / 1000
    for layer in layers:
        pushing = [m for m in layer_lines if m.startswith(f"{layer}: Pushing")]
        assert len(pushing) <= push_s / PUSH_INTERVAL_S + 1, (layer, push_s, push_lines)
    assert any(" Pushing " in m and "%" in m for m in layer_lines), push_lines
    assert re.match(
        rf"Pushed {re.escape(repository)}:{dep_id} \(sha256:[0-9a-f]{{64}}\); \d+ layers: ",
        push_lines[-2],
    ), push_lines
    assert push_lines[-1] == f"Releasing {image_ref}"
    assert reg.password not in Path(done["logPath"]).read_text()
    assert reg.password not in json.dumps(done)


def test_a_node_without_the_image_pulls_the_digest_with_the_registry_auth_swarm_keeps(
    server: Server,
    shared_auth_registry: AuthRegistry,
    cleanup: list[str],
    docker_client: Any,
    git_repo: Any,
) -> None:
    """What "any node can pull it" needs: the released digest and the credentials stay
    with the service. With every local reference to the image removed, as on a node that
    never had it, a forced update (which sends no credentials itself) makes this node pull
    the digest from the htpasswd registry, which refuses anonymous pulls."""
    reg = shared_auth_registry
    app = create_git_app(server, git_repo("static-ok"), cleanup, name="anynode", command=HTTPD)
    attach_registry(server, app["id"], host=reg.addr, username=reg.username, password=reg.password)
    client = server.client(Scope.DEPLOY)
    done = wait_finished(client, client(DEPLOY, id=app["id"])["deployApplication"]["id"], 240)
    assert done["status"] == "DONE", done["errorMessage"]
    image_ref, name = done["imageRef"], app["appName"]
    # The image by its running container: the references may already be fewer, as other
    # test servers' retention on this shared engine untags images of deployments they do
    # not know.
    image_id = _running_image(docker_client, name, set())[1]
    try:
        attrs = docker_client.api.inspect_image(image_id)
        for ref in [*attrs["RepoTags"], *attrs["RepoDigests"]]:  # the task keeps the layers
            with contextlib.suppress(docker.errors.ImageNotFound):  # gone with its tag
                docker_client.api.remove_image(ref, force=True)
        with pytest.raises(docker.errors.ImageNotFound):
            docker_client.images.get(image_ref)
        before = {t["ID"] for t in docker_client.api.tasks(filters={"service": name})}
        sent: list[str | None] = []

        def spy(response: Any, *_: Any, **__: Any) -> None:
            if response.request.path_url.split("?")[0].endswith("/update"):
                sent.append(response.request.headers.get("X-Registry-Auth"))

        docker_client.api.hooks.setdefault("response", []).append(spy)
        try:
            docker_client.services.get(name).force_update()
        finally:
            docker_client.api.hooks["response"].remove(spy)
        assert sent == [None], "the update itself carried no credentials"

        task, pulled = _running_image(docker_client, name, before)
        assert task["Spec"]["ContainerSpec"]["Image"] == image_ref
        assert pulled == image_id  # the same image, pulled back by its digest
    finally:
        docker_client.services.get(name).remove()
        deadline = time.monotonic() + 30  # the image goes once its containers have
        while time.monotonic() < deadline:
            try:
                docker_client.api.remove_image(image_id, force=True)
                break
            except docker.errors.ImageNotFound:
                break
            except docker.errors.APIError:
                time.sleep(0.5)


def _running_image(
    docker_client: Any, service: str, old_tasks: set[str]
) -> tuple[dict[str, Any], str]:
    """A running task of ``service`` not in ``old_tasks``, and its container's image id;
    fails at once if such a task was rejected (its image could not be pulled)."""

    def running() -> dict[str, Any] | None:
        tasks = docker_client.api.tasks(filters={"service": service})
        fresh = [t for t in tasks if t["ID"] not in old_tasks]
        for task in fresh:
            assert task["Status"]["State"] not in ("rejected", "failed"), task["Status"]
        return next((t for t in fresh if t["Status"]["State"] == "running"), None)

    task = poll(running, timeout=60, what=f"a running task of {service}", every=0.25)
    container = docker_client.api.inspect_container(
        task["Status"]["ContainerStatus"]["ContainerID"]
    )
    return task, str(container["Image"])


def test_refused_credentials_end_the_deployment_at_once(
    server: Server, shared_auth_registry: AuthRegistry, cleanup: list[str], git_repo: Any
) -> None:
    reg = shared_auth_registry
    wrong = "wrong-" + reg.password[::-1]
    app = create_git_app(server, git_repo("static-ok"), cleanup, name="refused")
    registry_id = attach_registry(
        server, app["id"], host=reg.addr, username=reg.username, password=wrong
    )
    client = server.client(Scope.DEPLOY)
    dep_id = client(DEPLOY, id=app["id"])["deployApplication"]["id"]
    done = wait_finished(client, dep_id, timeout=180)
    assert done["status"] == "ERROR"
    assert [(s["step"], s["outcome"]) for s in done["steps"]][-1] == ("PUSH_IMAGE", "ERROR")
    name = _registry_name(server, registry_id)
    assert done["errorMessage"].startswith(
        f"registry {name!r} ({reg.addr}) refused the credentials of user {reg.username!r} "
        f"pushing {reg.addr}/{PREFIX}/{app['appName']}:{dep_id}: "
    ), done["errorMessage"]
    log = Path(done["logPath"]).read_text()
    assert "retrying" not in log
    for secret in (wrong, reg.password):
        assert secret not in log and secret not in json.dumps(done)
    assert done["imageRef"].startswith("slipway/")  # nothing was released from the registry
    assert _recorded_registry(server, dep_id) is None


def test_a_registry_where_nothing_listens_is_retried_then_fails(
    server: Server, cleanup: list[str], git_repo: Any, docker_client: Any
) -> None:
    with refusing_port() as addr:
        app = create_git_app(server, git_repo("static-ok"), cleanup, name="unreachable")
        attach_registry(server, app["id"], host=addr, username="u", password="pw-never-shown-42")
        client = server.client(Scope.DEPLOY)
        dep_id = client(DEPLOY, id=app["id"])["deployApplication"]["id"]
        done = wait_finished(client, dep_id, timeout=180)
    lines = [x["message"] for x in done["logs"] if x["step"] == "PUSH_IMAGE"]
    why = (done["errorMessage"], lines)  # shown when an assert fails
    assert done["status"] == "ERROR", why
    assert done["steps"][-1]["step"] == "PUSH_IMAGE", why
    assert "cannot reach registry" in done["errorMessage"], why
    assert "connection refused" in done["errorMessage"], why
    assert done["steps"][-1]["durationMs"] >= 3000, why  # waited 1 s, then 2 s
    retries = [m for m in lines if "network error, retrying" in m]
    assert [m.rsplit(" ", 3)[1:] for m in retries] == [["in", "1s", "(1/2)"], ["in", "2s", "(2/2)"]]
    assert "pw-never-shown-42" not in json.dumps(done)
    assert not docker_client.services.list(filters={"name": app["appName"]})


def test_cancel_during_a_push_ends_cancelled_and_the_push_stops(
    server: Server, shared_auth_registry: AuthRegistry, cleanup: list[str], tmp_path: Path
) -> None:
    """A 160 MB random layer takes the engine several seconds to compress and upload; the
    cancel lands while it is Pushing, and the tag never reaches the registry."""
    reg = shared_auth_registry
    app = create_git_app(server, random_repo(tmp_path, 160_000_000), cleanup, name="cancelpush")
    attach_registry(server, app["id"], host=reg.addr, username=reg.username, password=reg.password)
    client = server.client(Scope.DEPLOY)
    dep_id = client(DEPLOY, id=app["id"])["deployApplication"]["id"]

    def pushing() -> bool | None:
        dep = state(client, dep_id)
        assert dep["status"] not in ("DONE", "ERROR", "CANCELLED"), dep
        return True if any(": Pushing " in m for m in messages(client, dep_id)) else None

    poll(pushing, timeout=240, what="the push to upload", every=0.1)
    elapsed, dep, _ = timed_cancel(client, app["id"], dep_id)
    assert dep["status"] == "CANCELLED", dep
    assert elapsed < CANCEL_LIMIT_S, elapsed
    assert dep["steps"][-1] == {"step": "PUSH_IMAGE", "outcome": "CANCELLED"}
    time.sleep(10)  # longer than the whole push takes here: had it gone on, the tag would show
    creds = (reg.username, reg.password)
    assert registry_tags(reg.addr, f"{PREFIX}/{app['appName']}", creds) == []
