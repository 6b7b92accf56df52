"""DOCKER applications through the API: a private registry image is pulled, pinned, served."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.types import Scope
from tests.e2e.conftest import wait_finished
from tests.e2e.harness import Client, Server, free_port
from tests.e2e.queries import CREATE_APP, DEPLOY
from tests.support.auth_registry import (
    AuthRegistry,
    push_test_image,
    remove_local,
)

pytestmark = pytest.mark.docker

GREETING = "hello-from-a-private-registry"
# busybox:1.36 as it is (the pushed image): write a page, serve it; exit at once on TERM.
SERVE = [
    "sh",
    "-c",
    f"mkdir -p /www && echo {GREETING} > /www/index.html && "
    "trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait",
]


@pytest.fixture(scope="module")
def pushed(registry: AuthRegistry, docker_client: Any) -> Iterator[str]:
    digest = push_test_image(docker_client, registry)
    remove_local(docker_client, registry.ref())  # the deployment's pull goes to the registry
    yield digest
    remove_local(docker_client, registry.ref())


def _create(
    client: Client, registry: AuthRegistry, cleanup: list[str], *, name: str, password: str
) -> dict[str, Any]:
    port = free_port()
    app = client(
        CREATE_APP,
        input={
            "name": name,
            "sourceType": "DOCKER",
            "dockerImage": registry.ref(),
            "registryUsername": registry.username,
            "registryPassword": password,
            "ports": [{"publishedPort": port, "targetPort": 8080, "publishMode": "HOST"}],
            "command": SERVE,
        },
    )["createApplication"]
    cleanup.append(app["appName"])
    app["port"] = port
    return app


def _every_application_field(client: Client, app_id: str) -> str:
    """All scalar fields of the application, whatever the schema has today, as JSON text."""
    fields = client(
        '{ __type(name: "Application") { fields { name args { name } '
        "type { kind ofType { kind ofType { kind ofType { kind } } } } } } }"
    )
    scalars = []
    for field in fields["__type"]["fields"]:
        kind, inner = field["type"]["kind"], field["type"].get("ofType")
        while kind in ("NON_NULL", "LIST") and inner is not None:
            kind, inner = inner["kind"], inner.get("ofType")
        if kind in ("SCALAR", "ENUM") and not field["args"]:
            scalars.append(field["name"])
    assert "hasRegistryPassword" in scalars and "registryUsername" in scalars
    selection = " ".join(scalars)
    one = client.raw(f"query($id: ID!) {{ application(id: $id) {{ {selection} }} }}", id=app_id)
    many = client.raw(f"{{ applications(first: 100) {{ edges {{ node {{ {selection} }} }} }} }}")
    return json.dumps([one, many])


def test_private_image_is_pulled_pinned_and_served(
    real_server: Server,
    registry: AuthRegistry,
    pushed: str,
    cleanup: list[str],
    docker_client: Any,
) -> None:
    client = real_server.client(Scope.DEPLOY)
    app = _create(client, registry, cleanup, name="private", password=registry.password)
    dep = client(DEPLOY, id=app["id"])["deployApplication"]
    done = wait_finished(client, dep["id"], timeout=120)
    assert done["status"] == "DONE", done["errorMessage"]
    pinned = f"{registry.addr}/slipway-test/app@{pushed}"
    assert done["imageRef"] == pinned
    assert [s["step"] for s in done["steps"]] == ["FETCH_SOURCE", "RELEASE", "VERIFY_HEALTH"]
    messages = [line["message"] for line in done["logs"]]
    assert f"Pulled {registry.ref()} ({pushed})" in messages
    with urllib.request.urlopen(f"http://127.0.0.1:{app['port']}/", timeout=5) as res:
        assert GREETING in res.read().decode()

    service = docker_client.services.get(app["appName"])
    assert service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == pinned
    assert registry.password not in json.dumps(service.attrs), "not in the spec nor labels"
    assert registry.password not in Path(done["logPath"]).read_text()
    assert registry.password not in json.dumps(done)

    shown = _every_application_field(client, app["id"])
    assert registry.password not in shown
    fields = client(
        "query($id: ID!) { application(id: $id) { registryUsername hasRegistryPassword } }",
        id=app["id"],
    )["application"]
    assert fields == {"registryUsername": registry.username, "hasRegistryPassword": True}


@pytest.mark.usefixtures("pushed")  # the image exists: only the credentials are wrong
def test_wrong_password_ends_in_error_with_the_registry_reason(
    real_server: Server, registry: AuthRegistry, cleanup: list[str]
) -> None:
    client = real_server.client(Scope.DEPLOY)
    wrong = "not-" + registry.password
    app = _create(client, registry, cleanup, name="wrongpw", password=wrong)
    done = wait_finished(client, client(DEPLOY, id=app["id"])["deployApplication"]["id"], 60)
    assert done["status"] == "ERROR"
    assert (
        f"registry {registry.addr} refused the credentials for user '{registry.username}'"
        in done["errorMessage"]
    )
    assert "authentication required" in done["errorMessage"], "the registry's own reason"
    assert [(s["step"], s["outcome"]) for s in done["steps"]] == [("FETCH_SOURCE", "ERROR")]
    assert wrong not in json.dumps(done) and wrong not in Path(done["logPath"]).read_text()
