"""Build settings and the build cache through the API on the real engine: the target
stage, a masked build arg, cache hits, clearBuildCache scoped to its application, and
cleanCache on one call (base image pulled fresh from the local registry)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.types import Scope
from tests.conftest import APPS, make_git_repo
from tests.e2e.conftest import create_git_app, wait_finished
from tests.e2e.harness import Client, GraphQLError, Server
from tests.support.base_images import registry_base

pytestmark = pytest.mark.docker

TOKEN = "arg-value-5e0c9d1"
DEPLOY = """mutation($id: ID!, $clean: Boolean) {
  deployApplication(applicationId: $id, cleanCache: $clean) { id } }"""
REDEPLOY = "mutation($id: ID!) { redeployApplication(applicationId: $id) { id } }"
CLEAR = "mutation($id: ID!) { clearBuildCache(applicationId: $id) }"
CACHED = " ---> Using cache"
RAN = "token=********"  # the RUN step's output, its build arg masked: it ran, not cached


@pytest.fixture
def base(docker_client: Any, registry_addr: str) -> Iterator[str]:
    with registry_base(docker_client, registry_addr) as ref:
        yield ref


def _repo(tmp_path: Path, name: str, base: str) -> Path:
    """static-ok behind a slow-ish RUN and a last stage that fails: only ``web`` builds."""
    src = tmp_path / f"src-{name}"
    shutil.copytree(APPS / "static-ok", src)
    (src / "Dockerfile").write_text(
        f"FROM {base} AS web\n"
        "ARG TOKEN\n"
        f'RUN echo "token=$TOKEN" && sleep 1 && echo {name}-{uuid.uuid4().hex} > /step\n'
        "COPY www /www\nEXPOSE 8080\n"
        'CMD ["httpd","-f","-v","-p","8080","-h","/www"]\n'
        f"FROM {base} AS broken\nRUN exit 9\n"
    )
    return make_git_repo(src, tmp_path / f"repo-{name}")


def _build_log(client: Client, query: str, app_id: str, **variables: Any) -> list[str]:
    dep_id = next(iter(client(query, id=app_id, **variables).values()))["id"]
    done = wait_finished(client, dep_id, timeout=180)
    assert done["status"] == "DONE", done["errorMessage"]
    return [line["message"] for line in done["logs"] if line["step"] == "BUILD_IMAGE"]


def test_cache_hits_clear_build_cache_is_per_application_and_clean_builds(
    real_server: Server, tmp_path: Path, cleanup: list[str], base: str
) -> None:
    settings = {"dockerBuildStage": "web", "buildArgs": [{"key": "TOKEN", "value": TOKEN}]}
    app_a = create_git_app(real_server, _repo(tmp_path, "a", base), cleanup, name="a", **settings)
    app_b = create_git_app(real_server, _repo(tmp_path, "b", base), cleanup, name="b", **settings)
    client = real_server.client(Scope.DEPLOY)

    first_a = _build_log(client, DEPLOY, app_a["id"])
    assert RAN in first_a and not any(TOKEN in m for m in first_a)
    assert any("(stage web)" in m for m in first_a)
    assert RAN in _build_log(client, DEPLOY, app_b["id"])
    again_a = _build_log(client, REDEPLOY, app_a["id"])
    assert CACHED in again_a and RAN not in again_a  # unchanged: the RUN step is cached

    with pytest.raises(GraphQLError) as refused:
        real_server.client(Scope.READ)(CLEAR, id=app_a["id"])
    assert refused.value.codes == ["FORBIDDEN"]
    assert client(CLEAR, id=app_a["id"])["clearBuildCache"] is True

    cleared_a = _build_log(client, REDEPLOY, app_a["id"])
    assert CACHED not in cleared_a, "the cleared application rebuilds every step"
    assert any("the build cache was cleared (clearBuildCache)" in m for m in cleared_a)
    assert any(base.rsplit(":", 1)[0].split("/", 1)[1] in m and "Pull" in m for m in cleared_a)
    assert RAN in cleared_a, "the RUN step ran again"
    b_after = _build_log(client, REDEPLOY, app_b["id"])
    assert CACHED in b_after and RAN not in b_after, "B's next build still hits its cache"
    a_after = _build_log(client, REDEPLOY, app_a["id"])
    assert CACHED in a_after and RAN not in a_after, "A caches again after its clean build"

    clean = _build_log(client, DEPLOY, app_a["id"], clean=True)
    assert CACHED not in clean and RAN in clean
    assert any("cleanCache was asked for this deployment" in m for m in clean)
    assert RAN not in _build_log(client, REDEPLOY, app_a["id"])
