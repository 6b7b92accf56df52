"""dropDeployment over real HTTP: GraphQL multipart requests to a real server.

The fake-engine tests run the real upload, checks and extraction (FetchDrop is not
faked) with a fake builder and runtime; the last test deploys a dropped app through
Docker and answers over HTTP.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.types import Scope
from tests.conftest import APPS
from tests.e2e.conftest import Fakes, wait_finished
from tests.e2e.harness import Client, GraphQLError, Server, free_port, running_server
from tests.e2e.queries import CREATE_APP, DEPLOY, DEPLOYMENTS, REDEPLOY
from tests.support.zips import file, symlink, write_zip, zip_tree

DROP = """
mutation($id: ID!, $zip: Upload!, $path: String) {
  dropDeployment(applicationId: $id, zip: $zip, dropBuildPath: $path) { id status trigger }
}"""
LIMIT = 1 << 20  # max_upload_bytes of the small server


def multipart(query: str, variables: dict[str, Any], name: str, data: bytes) -> dict[str, Any]:
    """httpx arguments for a GraphQL multipart request (operations, map, one file)."""
    return {
        "data": {
            "operations": json.dumps({"query": query, "variables": {**variables, name: None}}),
            "map": json.dumps({"0": [f"variables.{name}"]}),
        },
        "files": {"0": ("site.zip", data, "application/zip")},
    }


def drop_raw(client: Client, app_id: str, data: bytes, path: str = "/") -> httpx.Response:
    return client.http.post(
        client.url, **multipart(DROP, {"id": app_id, "path": path}, "zip", data)
    )


def drop(client: Client, app_id: str, data: bytes, path: str = "/") -> dict[str, Any]:
    res = drop_raw(client, app_id, data, path)
    assert res.status_code == 200, res.text
    body: dict[str, Any] = res.json()
    if body.get("errors"):
        raise GraphQLError(body["errors"])
    dep: dict[str, Any] = body["data"]["dropDeployment"]
    return dep


def create_drop_app(client: Client, name: str = "drop", **extra: Any) -> dict[str, Any]:
    app: dict[str, Any] = client(CREATE_APP, input={"name": name, "sourceType": "DROP", **extra})[
        "createApplication"
    ]
    return app


def deployment_ids(client: Client, app_id: str) -> list[str]:
    edges = client(DEPLOYMENTS, app=app_id, first=50)["deployments"]["edges"]
    return [e["node"]["id"] for e in edges]


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


def github_zip(tmp_path: Path, app: str = "static-ok") -> bytes:
    """The app in ``site/`` of a repository, zipped the way GitHub's "Download ZIP" does."""
    src = tmp_path / "repo"
    if (tmp_path / "gh.zip").exists():
        return (tmp_path / "gh.zip").read_bytes()
    (src / "site").mkdir(parents=True)
    (src / "README.md").write_text("not built\n")
    for p in (APPS / app).rglob("*"):
        if p.is_file():
            dest = src / "site" / p.relative_to(APPS / app)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(p.read_bytes())
    return zip_tree(src, tmp_path / "gh.zip", prefix="repo-main/").read_bytes()


@pytest.fixture
def small_server(tmp_path: Path, fakes: Fakes) -> Iterator[Server]:
    with running_server(tmp_path / "data", fakes.adapters, max_upload_bytes=LIMIT) as server:
        yield server


def test_drop_deploys_and_redeploy_rebuilds_without_the_archive(
    small_server: Server, fakes: Fakes, tmp_path: Path
) -> None:
    client = small_server.client(Scope.DEPLOY)
    app = create_drop_app(client)
    work = small_server.settings.work_dir / app["appName"]

    dep = drop(client, app["id"], github_zip(tmp_path), "site")
    assert dep["trigger"] == "DROP"
    done = wait_finished(client, dep["id"])
    assert done["status"] == "DONE", done["errorMessage"]
    assert [s["step"] for s in done["steps"]][0] == "FETCH_SOURCE"
    # The build folder became the code: the README beside it is not part of the build.
    assert files_under(work / "code") == ["Dockerfile", "www", "www/health", "www/index.html"]
    assert fakes.builder.builds[-1].source_dir == work / "code"
    assert files_under(work / "drops") == [], "the archive is deleted once extracted"
    assert not any(work.glob("incoming-*"))
    messages = [line["message"] for line in done["logs"]]
    assert any("top folder 'repo-main' stripped); building site" in m for m in messages), messages

    again = client(REDEPLOY, id=app["id"])["redeployApplication"]
    assert again["trigger"] == "REBUILD"
    second = wait_finished(client, again["id"])
    assert second["status"] == "DONE", second["errorMessage"]
    assert any("no upload" in line["message"] for line in second["logs"])
    assert files_under(work / "code") == ["Dockerfile", "www", "www/health", "www/index.html"]
    assert len(fakes.builder.builds) == 2


HOSTILE = {
    "traversal": [file("index.html"), file("../../escape.txt", b"x")],
    "absolute": [file("index.html"), file("/etc/cron.d/x", b"x")],
    "symlink": [file("index.html"), symlink("www", "/etc")],
    "bomb": [file("zeros.bin", bytes(32 << 20))],
    "duplicate": [file("a.txt"), file("a.txt"), file("b.txt")],
}


REASONS = {
    "traversal": "'..' component",
    "absolute": "absolute path",
    "symlink": "symbolic link",
    "bomb": "zip bomb",
    "duplicate": "two entries named 'a.txt'",
    "corrupt": "not a valid ZIP file",
}


def test_hostile_archives_are_bad_input_and_queue_nothing(
    small_server: Server, tmp_path: Path
) -> None:
    client = small_server.client(Scope.DEPLOY)
    app = create_drop_app(client)
    for kind, reason in REASONS.items():
        if kind == "corrupt":
            data = b"PK\x03\x04" + os.urandom(5000)
        else:
            data = write_zip(tmp_path / f"{kind}.zip", HOSTILE[kind]).read_bytes()
        with pytest.raises(GraphQLError) as err:
            drop(client, app["id"], data)
        assert err.value.codes == ["BAD_USER_INPUT"], kind
        assert reason in err.value.errors[0]["message"], kind
    assert deployment_ids(client, app["id"]) == []
    data_dir = small_server.settings.data_dir
    assert files_under(data_dir / "work") == [f"{app['appName']}", f"{app['appName']}/drops"]
    assert files_under(data_dir / "uploads") == []
    assert not (tmp_path / "escape.txt").exists()


def test_missing_build_path_is_bad_input(small_server: Server, tmp_path: Path) -> None:
    client = small_server.client(Scope.DEPLOY)
    app = create_drop_app(client)
    for path, reason in (("nope", "not a folder in the archive"), ("../x", "'..'")):
        with pytest.raises(GraphQLError) as err:
            drop(client, app["id"], github_zip(tmp_path), path)
        assert err.value.codes == ["BAD_USER_INPUT"]
        assert reason in err.value.errors[0]["message"]
    assert deployment_ids(client, app["id"]) == []


def _raw_http(port: int, head: bytes, body: bytes = b"") -> bytes:
    """One request on a plain socket; the whole response, read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_oversized_upload_is_refused_before_its_body_is_read(small_server: Server) -> None:
    """Content-Length over the limit: 413 at once, though not one byte of body was sent."""
    key = small_server.key(Scope.DEPLOY)
    head = (
        f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {key}\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\n"
        f"Content-Length: {50 << 20}\r\nConnection: close\r\n\r\n"
    ).encode()
    response = _raw_http(small_server.port, head)
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    assert b"at most 1048576 bytes (SLIPWAY_MAX_UPLOAD_BYTES)" in response


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_upload_over_the_limit_is_refused_while_read_and_leaves_nothing(
    small_server: Server, chunked: bool
) -> None:
    client = small_server.client(Scope.DEPLOY)
    app = create_drop_app(client)
    data = os.urandom(LIMIT + 10_000)
    if chunked:  # no Content-Length: only counting the stream can stop it
        request = client.http.build_request(
            "POST", client.url, **multipart(DROP, {"id": app["id"]}, "zip", data)
        )
        body = request.read()
        res = client.http.post(
            client.url,
            content=iter([body[i : i + 65536] for i in range(0, len(body), 65536)]),
            headers={"content-type": request.headers["content-type"]},
        )
    else:
        res = drop_raw(client, app["id"], data)
    assert res.status_code == 413, res.text
    assert "at most 1048576 bytes" in res.text
    assert deployment_ids(client, app["id"]) == []
    assert files_under(small_server.settings.data_dir / "uploads") == []
    assert files_under(small_server.settings.work_dir) == []


def test_read_scope_key_cannot_drop(small_server: Server, tmp_path: Path) -> None:
    """Refused before the body is read (tests/e2e/test_security_http.py shows that part)."""
    app = create_drop_app(small_server.client(Scope.DEPLOY))
    reader = small_server.client(Scope.READ)
    anonymous = Client(small_server.url, None)
    for client, status, code in ((reader, 403, "FORBIDDEN"), (anonymous, 401, "UNAUTHENTICATED")):
        res = drop_raw(client, app["id"], github_zip(tmp_path))
        assert res.status_code == status, res.text
        assert GraphQLError(res.json()["errors"]).codes == [code]
    assert deployment_ids(reader, app["id"]) == []
    assert files_under(small_server.settings.work_dir) == []


def test_only_drop_applications_take_archives(small_server: Server, tmp_path: Path) -> None:
    client = small_server.client(Scope.DEPLOY)
    git_app = client(
        CREATE_APP,
        input={"name": "g", "sourceType": "GIT", "repository": "https://example.invalid/r.git"},
    )["createApplication"]
    with pytest.raises(GraphQLError) as err:
        drop(client, git_app["id"], github_zip(tmp_path))
    assert err.value.codes == ["CONFLICT"]
    # A string where the file belongs (a plain JSON request) is refused, not crashed on.
    app = create_drop_app(client)
    with pytest.raises(GraphQLError) as err:
        client(DROP, id=app["id"], zip="not-a-file")
    assert err.value.codes == ["BAD_USER_INPUT"]
    # A DROP application has nothing to deploy before its first upload.
    dep = client(DEPLOY, id=app["id"])["deployApplication"]
    done = wait_finished(client, dep["id"])
    assert done["status"] == "ERROR"
    assert "no archive has been dropped yet" in done["errorMessage"]


@pytest.mark.docker
def test_dropped_static_app_is_deployed_and_rebuilt(
    tmp_path: Path, real_server: Server, cleanup: list[str]
) -> None:
    port = free_port()
    client = real_server.client(Scope.DEPLOY)
    app = create_drop_app(
        client,
        healthCheckPath="/health",
        ports=[{"publishedPort": port, "targetPort": 8080, "publishMode": "HOST"}],
    )
    cleanup.append(app["appName"])
    dep = drop(client, app["id"], github_zip(tmp_path), "site")
    done = wait_finished(client, dep["id"], timeout=180)
    assert done["status"] == "DONE", done["errorMessage"]
    assert done["imageRef"] == f"slipway/{app['appName']}:{dep['id']}"
    assert _get(port) == "hello from slipway\n"

    again = client(REDEPLOY, id=app["id"])["redeployApplication"]
    second = wait_finished(client, again["id"], timeout=180)
    assert second["status"] == "DONE", second["errorMessage"]
    assert second["imageRef"] == f"slipway/{app['appName']}:{again['id']}"
    assert _get(port) == "hello from slipway\n"
    assert files_under(real_server.settings.work_dir / app["appName"] / "drops") == []


def _get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as res:
        body: str = res.read().decode()
        return body
