"""Notifications over real HTTP: CRUD, validation and scopes, deployments announced through
the real queue and real apprise to a real endpoint on loopback, retries of a failing one
that leave the deployment alone, and a URL that is never shown, logged or stored in clear."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.db.models import NotificationDelivery
from app.types import Scope
from tests.e2e.conftest import GIT_APP, Fakes, wait_finished
from tests.e2e.harness import GraphQLError, Server, running_server
from tests.e2e.queries import CREATE_APP, DEPLOY
from tests.e2e.support_registries import Recorded, assert_nowhere
from tests.support.fake_servers import refusing_port
from tests.support.notify_endpoint import Endpoint, endpoint

FIELDS = "id name events applicationIds service scheme lastSentAt lastError"
CREATE = f"""
mutation($input: CreateNotificationInput!) {{ createNotification(input: $input) {{ {FIELDS} }} }}"""
UPDATE = f"""
mutation($id: ID!, $input: UpdateNotificationInput!) {{
  updateNotification(id: $id, input: $input) {{ {FIELDS} }} }}"""
DELETE = "mutation($id: ID!) { deleteNotification(id: $id) }"
TEST = "mutation($id: ID!) { testNotification(id: $id) }"
LIST = f"{{ notifications {{ {FIELDS} }} }}"
ONE = f"query($id: ID!) {{ notification(id: $id) {{ {FIELDS} }} }}"
TOKEN = "tok-7f3a9c2e51"  # the part of the URL a real service's token would be


@pytest.fixture
def seen() -> list[str]:
    return []


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    yield caplog


@pytest.fixture
def hook() -> Iterator[Endpoint]:
    with endpoint() as ep:
        yield ep


@pytest.fixture
def server(tmp_path: Path, fakes: Fakes) -> Iterator[Server]:
    with running_server(
        tmp_path / "data",
        fakes.adapters,
        public_url="https://slipway.example.com/",
        notify_backoff=0.3,
        notify_attempts=4,
    ) as running:
        yield running


def admin(server: Server, seen: list[str], scope: Scope = Scope.ADMIN) -> Recorded:
    return Recorded(server.url, server.key(scope), seen)


def refused(call: Any, query: str, **variables: Any) -> GraphQLError:
    with pytest.raises(GraphQLError) as caught:
        call(query, **variables)
    return caught.value


def wait_for(check: Any, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.1)


def test_crud_validation_and_the_url_never_shown(
    server: Server, hook: Endpoint, seen: list[str], logs: Any
) -> None:
    call = admin(server, seen)
    app_id = call(CREATE_APP, input=GIT_APP())["createApplication"]["id"]
    made = call(
        CREATE,
        input={
            "name": "Team chat",
            "url": hook.url(),
            "events": ["DEPLOY_FAILED", "APP_DOWN", "DEPLOY_FAILED"],
            "applicationIds": [app_id],
        },
    )["createNotification"]
    assert made == {
        "id": made["id"],
        "name": "Team chat",
        "events": ["DEPLOY_FAILED", "APP_DOWN"],
        "applicationIds": [app_id],
        "service": "JSON",
        "scheme": "json",
        "lastSentAt": None,
        "lastError": None,
    }
    assert call(LIST)["notifications"] == [made]
    changed = call(
        UPDATE,
        id=made["id"],
        input={"events": ["RECOVERED"], "applicationIds": [], "url": hook.url("form")},
    )["updateNotification"]
    assert changed["events"] == ["RECOVERED"] and changed["applicationIds"] == []
    assert changed["service"] == "Form" and changed["name"] == "Team chat"

    bad = refused(call, CREATE, input={"name": "x", "url": "slack://only-one-part", "events": []})
    assert bad.codes == ["BAD_USER_INPUT"]
    assert "not a valid apprise URL for slack://" in bad.errors[0]["message"]
    assert "only-one-part" not in bad.errors[0]["message"]
    for url, says in (
        ("https-but-no-scheme", "needs a service scheme"),
        ("nosuchservice://abc/def", "not a valid apprise URL for nosuchservice://"),
        ("", "1 to 2000 characters"),
    ):
        error = refused(call, CREATE, input={"name": "x", "url": url, "events": ["APP_DOWN"]})
        assert error.codes == ["BAD_USER_INPUT"] and says in error.errors[0]["message"], url
    unknown = refused(
        call,
        CREATE,
        input={"name": "x", "url": hook.url(), "events": ["APP_DOWN"], "applicationIds": ["nope"]},
    )
    assert unknown.codes == ["BAD_USER_INPUT"]
    assert "applicationIds: no application 'nope'" in unknown.errors[0]["message"]
    empty = refused(call, CREATE, input={"name": "x", "url": hook.url(), "events": []})
    assert empty.codes == ["BAD_USER_INPUT"] and "at least one" in empty.errors[0]["message"]
    taken = refused(
        call, CREATE, input={"name": "Team chat", "url": hook.url(), "events": ["APP_DOWN"]}
    )
    assert taken.codes == ["CONFLICT"]
    assert [n["name"] for n in call(LIST)["notifications"]] == ["Team chat"], "nothing written"

    assert call(DELETE, id=made["id"])["deleteNotification"] is True
    assert call(ONE, id=made["id"])["notification"] is None
    assert refused(call, DELETE, id=made["id"]).codes == ["NOT_FOUND"]
    assert refused(call, TEST, id=made["id"]).codes == ["NOT_FOUND"]
    assert_nowhere(TOKEN, server, seen, logs)


def test_weaker_keys_are_refused_everything(
    server: Server, hook: Endpoint, seen: list[str]
) -> None:
    made = admin(server, seen)(
        CREATE, input={"name": "n", "url": hook.url(), "events": ["APP_DOWN"]}
    )["createNotification"]
    for scope in (Scope.READ, Scope.DEPLOY):
        weak = admin(server, seen, scope)
        for query, variables in (
            (LIST, {}),
            (ONE, {"id": made["id"]}),
            (CREATE, {"input": {"name": "m", "url": hook.url(), "events": ["APP_DOWN"]}}),
            (UPDATE, {"id": made["id"], "input": {"url": hook.url("form")}}),
            (DELETE, {"id": made["id"]}),
            (TEST, {"id": made["id"]}),
        ):
            assert refused(weak, query, **variables).codes == ["FORBIDDEN"], (scope, query)
    assert hook.received == [], "no weaker key made it send"
    assert admin(server, seen)(ONE, id=made["id"])["notification"]["service"] == "JSON"


def test_deployments_are_announced_through_the_queue(
    server: Server, fakes: Fakes, hook: Endpoint, seen: list[str], logs: Any
) -> None:
    call = admin(server, seen)
    secret = "sup3r-secret-env-value"
    app = call(CREATE_APP, input=GIT_APP(env=[{"key": "TOKEN", "value": secret}]))
    app = app["createApplication"]
    note = call(
        CREATE,
        input={"name": "all", "url": hook.url(), "events": ["DEPLOY_SUCCEEDED", "DEPLOY_FAILED"]},
    )["createNotification"]
    done = wait_finished(call, call(DEPLOY, id=app["id"])["deployApplication"]["id"])
    assert done["status"] == "DONE"
    [ok] = hook.wait(1)
    assert ok.body["title"] == "[Slipway] web: deployment succeeded"
    assert f"Deployment: {done['id']} (Manual deployment)" in ok.body["message"]
    assert f"Commit: {fakes.git.sha[:12]}" in ok.body["message"]
    assert f"https://slipway.example.com/ui/deployments/{done['id']}" in ok.body["message"]

    fakes.builder.fail = f"registry refused the login {secret}"
    failed = wait_finished(call, call(DEPLOY, id=app["id"])["deployApplication"]["id"])
    assert failed["status"] == "ERROR"
    _, bad = hook.wait(2)
    assert bad.body["title"] == "[Slipway] web: deployment failed"
    message = bad.body["message"]
    assert "Error: registry refused the login ********" in message
    assert "Last " in message and "Step 3/3 : fake build" in message
    assert secret not in message
    row = wait_for(lambda: call(ONE, id=note["id"])["notification"]["lastSentAt"])
    assert row
    assert_nowhere(TOKEN, server, seen, logs)


def test_a_failing_endpoint_is_retried_and_the_deployment_is_unaffected(
    server: Server, fakes: Fakes, seen: list[str], logs: Any
) -> None:
    call = admin(server, seen)
    app_id = call(CREATE_APP, input=GIT_APP())["createApplication"]["id"]
    with endpoint(fail_first=2) as flaky:
        note = call(
            CREATE, input={"name": "flaky", "url": flaky.url(), "events": ["DEPLOY_SUCCEEDED"]}
        )["createNotification"]
        started = time.monotonic()
        dep = wait_finished(call, call(DEPLOY, id=app_id)["deployApplication"]["id"])
        took = time.monotonic() - started
        assert dep["status"] == "DONE"
        first = flaky.wait(1)[0]
        error = wait_for(lambda: call(ONE, id=note["id"])["notification"]["lastError"])
        assert "500" in error and TOKEN not in error and "127.0.0.1" not in error
        got = flaky.wait(3)
        assert [r.status for r in got] == [500, 500, 200]
        gaps = [b.at - a.at for a, b in zip(got, got[1:], strict=False)]
        assert gaps[0] >= 0.25 and gaps[1] >= 0.55, f"backoff 0.3 s then 0.6 s: {gaps}"
        assert got[2].body == first.body, "the same message, sent again"
        final = wait_for(
            lambda: (n := call(ONE, id=note["id"])["notification"])["lastSentAt"] and n
        )
        assert final["lastError"] is None
    assert took < 10, f"the deployment took {took:.1f}s"
    assert_nowhere(TOKEN, server, seen, logs)


def test_a_closed_port_never_delays_a_deployment_and_is_given_up(
    server: Server, fakes: Fakes, seen: list[str], logs: Any
) -> None:
    call = admin(server, seen)
    app_id = call(CREATE_APP, input=GIT_APP())["createApplication"]["id"]

    def given_up() -> bool:
        with server.db.session() as session:
            row = session.query(NotificationDelivery).one()
            return row.status == "FAILED" and row.attempts == 4

    with refusing_port() as gone:  # bound, not listening: connections are refused
        url = f"json://{gone}/hook/{TOKEN}"
        note = call(CREATE, input={"name": "gone", "url": url, "events": ["DEPLOY_FAILED"]})
        note = note["createNotification"]
        fakes.builder.fail = "the build broke"
        dep = wait_finished(call, call(DEPLOY, id=app_id)["deployApplication"]["id"], timeout=10)
        assert dep["status"] == "ERROR" and dep["errorMessage"] == "the build broke"
        error = wait_for(lambda: call(ONE, id=note["id"])["notification"]["lastError"])
        assert "Connection error" in error and TOKEN not in error
        wait_for(given_up, timeout=15)  # 4 attempts, 0.3 + 0.6 + 1.2 s apart
        assert call(TEST, id=note["id"])["testNotification"] is False
    assert_nowhere(TOKEN, server, seen, logs)
    assert_nowhere(gone, server, seen, logs)


def test_test_notification_sends_now(server: Server, hook: Endpoint, seen: list[str]) -> None:
    call = admin(server, seen)
    note = call(CREATE, input={"name": "ops", "url": hook.url("form"), "events": ["APP_DOWN"]})
    note = note["createNotification"]
    assert call(TEST, id=note["id"])["testNotification"] is True
    [got] = hook.received
    assert got.body["title"] == "[Slipway] test notification"
    assert (
        "'ops'" in got.body["message"] and "https://slipway.example.com/ui/" in got.body["message"]
    )
    after = call(ONE, id=note["id"])["notification"]
    assert after["lastSentAt"] is not None and after["lastError"] is None
