"""Build settings and the cache over real HTTP with fake adapters: validation, write-only
build secrets (encrypted, never shown, masked), what reaches the builder, scopes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.db.models import Application
from app.types import Scope
from tests.e2e.conftest import GIT_APP, Fakes, wait_finished
from tests.e2e.harness import GraphQLError, Server, running_server

SECRET = "bk-secret-value-8c1f2"
ARG_VALUE = "build-arg-value-77ad"
FIELDS = """id contextPath dockerContextPath dockerBuildStage buildArgKeys buildSecretKeys
  buildSecrets
  buildMemoryLimitMb buildCpuLimit cleanCache cleanCacheNext"""
CREATE = f"""mutation($input: CreateApplicationInput!) {{
  createApplication(input: $input) {{ {FIELDS} }} }}"""
UPDATE = f"""mutation($id: ID!, $input: UpdateApplicationInput!) {{
  updateApplication(id: $id, input: $input) {{ {FIELDS} }} }}"""
APP = f"query($id: ID!) {{ application(id: $id) {{ {FIELDS} }} }}"
DEPLOY = """mutation($id: ID!, $clean: Boolean) {
  deployApplication(applicationId: $id, cleanCache: $clean) { id } }"""
REDEPLOY = """mutation($id: ID!, $clean: Boolean) {
  redeployApplication(applicationId: $id, cleanCache: $clean) { id } }"""
CLEAR = "mutation($id: ID!) { clearBuildCache(applicationId: $id) }"
BUILD = {
    "dockerContextPath": "web",
    "dockerBuildStage": "runtime",
    "buildArgs": [{"key": "TOKEN", "value": ARG_VALUE}],
    "buildSecrets": [{"id": "npm_token", "value": SECRET}, {"id": "pip.conf", "value": "x=1"}],
    "buildMemoryLimitMb": 512,
    "buildCpuLimit": 1.5,
}


def _create(server: Server, **extra: Any) -> dict[str, Any]:
    client = server.client(Scope.DEPLOY)
    app: dict[str, Any] = client(CREATE, input=GIT_APP(**extra))["createApplication"]
    return app


def test_build_settings_are_stored_and_shown_without_values(
    fake_server: Server, fakes: Fakes
) -> None:
    assert fakes.git.source_dir is not None
    (fakes.git.source_dir / "web").mkdir()
    app = _create(fake_server, **BUILD)
    assert app["contextPath"] == app["dockerContextPath"] == "web"
    assert app["dockerBuildStage"] == "runtime"
    assert app["buildSecretKeys"] == app["buildSecrets"] == ["npm_token", "pip.conf"]
    assert (app["buildMemoryLimitMb"], app["buildCpuLimit"]) == (512, 1.5)
    assert app["cleanCache"] is False and app["cleanCacheNext"] is False
    client = fake_server.client(Scope.READ)
    raw = client.http.post(client.url, json={"query": APP, "variables": {"id": app["id"]}}).text
    assert SECRET not in raw and ARG_VALUE not in raw
    with fake_server.db.session() as session:
        row = session.get(Application, app["id"])
        assert row is not None and row.build_secrets_enc
        assert SECRET not in row.build_secrets_enc
    db_file = Path(fake_server.settings.data_dir) / "slipway.db"
    for path in db_file.parent.glob("slipway.db*"):
        assert SECRET.encode() not in path.read_bytes(), f"{path.name} holds it in clear"

    deploy = fake_server.client(Scope.DEPLOY)
    done = wait_finished(deploy, deploy(DEPLOY, id=app["id"])["deployApplication"]["id"])
    assert done["status"] == "DONE", done["errorMessage"]
    spec = fakes.builder.builds[-1]
    assert spec.context_path == "web" and spec.target == "runtime"
    assert spec.secrets == {"npm_token": SECRET, "pip.conf": "x=1"}
    assert spec.build_args == {"TOKEN": ARG_VALUE}
    assert (spec.memory_limit, spec.cpu_limit) == (512 * 1024 * 1024, 1.5)
    assert spec.no_cache is False


def test_build_secret_values_are_masked_in_errors_and_logs(
    fake_server: Server, fakes: Fakes
) -> None:
    app = _create(fake_server, buildSecrets=[{"id": "tok", "value": SECRET}])
    fakes.builder.fail = f"RUN failed: curl -H 'Authorization: {SECRET}'"
    client = fake_server.client(Scope.DEPLOY)
    done = wait_finished(client, client(DEPLOY, id=app["id"])["deployApplication"]["id"])
    assert done["status"] == "ERROR"
    assert SECRET not in done["errorMessage"] and "********" in done["errorMessage"]
    assert SECRET not in Path(done["logPath"]).read_text()


def test_updates_replace_and_remove_build_settings(fake_server: Server) -> None:
    app = _create(fake_server, **BUILD)
    client = fake_server.client(Scope.DEPLOY)
    changed = client(
        UPDATE,
        id=app["id"],
        input={
            "buildSecrets": [{"id": "other", "value": "v-123"}],
            "dockerBuildStage": "",
            "buildMemoryLimitMb": 0,
            "buildCpuLimit": 0,
            "cleanCache": True,
            "contextPath": ".",
        },
    )["updateApplication"]
    assert changed["buildSecretKeys"] == ["other"]
    assert changed["dockerBuildStage"] is None and changed["dockerContextPath"] == "."
    assert (changed["buildMemoryLimitMb"], changed["buildCpuLimit"]) == (None, None)
    assert changed["cleanCache"] is True
    cleared = client(UPDATE, id=app["id"], input={"buildSecrets": []})["updateApplication"]
    assert cleared["buildSecretKeys"] == []
    with fake_server.db.session() as session:
        row = session.get(Application, app["id"])
        assert row is not None and row.build_secrets_enc is None


@pytest.mark.parametrize(
    ("patch", "reason"),
    [
        ({"buildSecrets": [{"id": "a,b", "value": "x"}]}, "id"),
        ({"buildSecrets": [{"id": "a=b", "value": "x"}]}, "id"),
        ({"buildSecrets": [{"id": "-x", "value": "x"}]}, "id"),
        ({"buildSecrets": [{"id": "", "value": "x"}]}, "id"),
        ({"buildSecrets": [{"id": "a" * 129, "value": "x"}]}, "id"),
        ({"buildSecrets": [{"id": "t", "value": "x"}, {"id": "t", "value": "y"}]}, "twice"),
        ({"buildSecrets": [{"id": "t", "value": ""}]}, "empty"),
        ({"buildSecrets": [{"id": "t", "value": "x" * 16_385}]}, "longer"),
        ({"buildSecrets": [{"id": f"s{i}", "value": "x"} for i in range(51)]}, "buildSecrets"),
        ({"dockerBuildStage": "1st"}, "dockerBuildStage"),
        ({"dockerBuildStage": "a b"}, "dockerBuildStage"),
        ({"dockerContextPath": "../outside"}, "'..'"),
        ({"dockerContextPath": "/etc"}, "absolute"),
        ({"dockerContextPath": "web", "contextPath": "api"}, "not two different"),
        ({"dockerfile": "../Dockerfile"}, "'..'"),
        ({"buildMemoryLimitMb": 5}, "buildMemoryLimitMb"),
        ({"buildMemoryLimitMb": -1}, "buildMemoryLimitMb"),
        ({"buildMemoryLimitMb": 2_000_000}, "buildMemoryLimitMb"),
        ({"buildCpuLimit": 0.001}, "buildCpuLimit"),
        ({"buildCpuLimit": 300}, "buildCpuLimit"),
        ({"buildCpuLimit": -1}, "buildCpuLimit"),
    ],
)
def test_bad_build_settings_are_refused_and_change_nothing(
    fake_server: Server, patch: dict[str, object], reason: str
) -> None:
    client = fake_server.client(Scope.DEPLOY)
    with pytest.raises(GraphQLError) as err:
        client(CREATE, input=GIT_APP(**patch))
    assert err.value.codes == ["BAD_USER_INPUT"]
    message = err.value.errors[0]["message"]
    assert reason.lower() in message.lower()
    assert "x" * 100 not in message, "the error does not echo a long value"
    listed = client("{ applications { edges { node { id } } } }")["applications"]["edges"]
    assert listed == []
    app = _create(fake_server, dockerBuildStage="keep")
    with pytest.raises(GraphQLError) as again:
        client(UPDATE, id=app["id"], input=patch)
    assert again.value.codes == ["BAD_USER_INPUT"]
    assert client(APP, id=app["id"])["application"]["dockerBuildStage"] == "keep"


def test_bad_secret_values_never_reach_the_error(fake_server: Server) -> None:
    client = fake_server.client(Scope.DEPLOY)
    long_secret = "S3cr3t" + "q" * 16_400
    with pytest.raises(GraphQLError) as err:
        client(CREATE, input=GIT_APP(buildSecrets=[{"id": "t", "value": long_secret}]))
    assert "S3cr3t" not in str(err.value.errors)


def test_clean_cache_per_call_per_application_and_after_clear(
    fake_server: Server, fakes: Fakes
) -> None:
    app = _create(fake_server)
    client = fake_server.client(Scope.DEPLOY)

    def build(query: str = DEPLOY, clean: bool | None = None) -> tuple[bool, list[str]]:
        data = client(query, id=app["id"], clean=clean)
        dep_id = next(iter(data.values()))["id"]
        done = wait_finished(client, dep_id)
        assert done["status"] == "DONE", done["errorMessage"]
        return fakes.builder.builds[-1].no_cache, [line["message"] for line in done["logs"]]

    assert build()[0] is False
    no_cache, messages = build(clean=True)
    assert no_cache is True
    assert any(
        "Building without cache and pulling base images fresh: cleanCache was asked" in m
        for m in messages
    )
    assert build(REDEPLOY, clean=True)[0] is True
    assert build(REDEPLOY)[0] is False, "one call's cleanCache is for that build only"

    client(UPDATE, id=app["id"], input={"cleanCache": True})
    no_cache, messages = build()
    assert no_cache is True
    assert any("cleanCache is on for the application" in m for m in messages)
    assert build(clean=False)[0] is False, "cleanCache: false on a call overrides it"
    client(UPDATE, id=app["id"], input={"cleanCache": False})

    assert client(CLEAR, id=app["id"])["clearBuildCache"] is True
    assert client(APP, id=app["id"])["application"]["cleanCacheNext"] is True
    no_cache, messages = build(clean=False)
    assert no_cache is True, "a cleared cache is not used, whatever the call says"
    assert any("the build cache was cleared (clearBuildCache)" in m for m in messages)
    assert client(APP, id=app["id"])["application"]["cleanCacheNext"] is False
    assert build()[0] is False, "after the clean build, builds use cache again"


def test_a_failed_build_after_clear_keeps_the_next_one_clean(
    fake_server: Server, fakes: Fakes
) -> None:
    app = _create(fake_server)
    client = fake_server.client(Scope.DEPLOY)
    client(CLEAR, id=app["id"])
    fakes.builder.fail = "step 2 failed"
    done = wait_finished(client, client(DEPLOY, id=app["id"])["deployApplication"]["id"])
    assert done["status"] == "ERROR"
    assert client(APP, id=app["id"])["application"]["cleanCacheNext"] is True
    fakes.builder.fail = None
    done = wait_finished(client, client(DEPLOY, id=app["id"])["deployApplication"]["id"])
    assert done["status"] == "DONE" and fakes.builder.builds[-1].no_cache is True


def test_clear_build_cache_needs_deploy_and_an_application(fake_server: Server) -> None:
    app = _create(fake_server)
    with pytest.raises(GraphQLError) as err:
        fake_server.client(Scope.READ)(CLEAR, id=app["id"])
    assert err.value.codes == ["FORBIDDEN"]
    client = fake_server.client(Scope.DEPLOY)
    assert client(APP, id=app["id"])["application"]["cleanCacheNext"] is False
    with pytest.raises(GraphQLError) as missing:
        client(CLEAR, id="nope")
    assert missing.value.codes == ["NOT_FOUND"]
    with pytest.raises(GraphQLError) as read_deploy:
        fake_server.client(Scope.READ)(DEPLOY, id=app["id"], clean=True)
    assert read_deploy.value.codes == ["FORBIDDEN"]
    with pytest.raises(GraphQLError) as read_update:
        fake_server.client(Scope.READ)(
            UPDATE, id=app["id"], input={"buildSecrets": [{"id": "a", "value": "b-c-d"}]}
        )
    assert read_update.value.codes == ["FORBIDDEN"]


def test_a_queued_duplicate_becomes_a_clean_build(fake_server: Server, fakes: Fakes) -> None:
    app = _create(fake_server)
    client = fake_server.client(Scope.DEPLOY)
    fakes.builder.delay_s = 1.0  # the first build runs for 3 s: the next ones queue
    first = client(DEPLOY, id=app["id"])["deployApplication"]["id"]
    assert fakes.builder.started.wait(10)
    queued = client(DEPLOY, id=app["id"])["deployApplication"]["id"]
    again = client(DEPLOY, id=app["id"], clean=True)["deployApplication"]["id"]
    assert again == queued != first
    assert wait_finished(client, first)["status"] == "DONE"
    assert fakes.builder.builds[0].no_cache is False
    fakes.builder.delay_s = 0
    done = wait_finished(client, queued)
    assert done["status"] == "DONE", done["errorMessage"]
    assert fakes.builder.builds[-1].no_cache is True


def test_build_proxy_from_settings_reaches_the_build_masked(tmp_path: Path, fakes: Fakes) -> None:
    proxy = "http://proxyuser:pr0xy-pass-91@proxy.corp:3128"
    with running_server(
        tmp_path / "data",
        fakes.adapters,
        build_http_proxy=proxy,
        build_no_proxy="localhost",
    ) as server:
        app = _create(server)
        fakes.builder.fail = f"could not reach {proxy}"
        client = server.client(Scope.DEPLOY)
        done = wait_finished(client, client(DEPLOY, id=app["id"])["deployApplication"]["id"])
    spec = fakes.builder.builds[-1]
    assert spec.proxy["HTTP_PROXY"] == spec.proxy["http_proxy"] == proxy
    assert spec.proxy["NO_PROXY"] == "localhost"
    assert "pr0xy-pass-91" not in done["errorMessage"] and "proxy.corp:3128" in done["errorMessage"]
    log_text = Path(done["logPath"]).read_text()
    assert "pr0xy-pass-91" not in log_text
    assert "Builds go through the proxy set in SLIPWAY_BUILD_*_PROXY" in log_text
