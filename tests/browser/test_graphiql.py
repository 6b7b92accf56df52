"""GraphiQL offline in real headless Chromium against a real server (issue 11, part 3).

Every request the page makes goes to the server itself (any other is recorded and
aborted, as on a machine without internet); the key typed into the headers pane runs a
query over HTTP and a subscription over a WebSocket, with no console error but the
refusals of requests without a key (a CSP violation would be one).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from app.types import Scope
from tests.browser.conftest import Scripted, screenshot
from tests.e2e.conftest import GIT_APP, wait_finished
from tests.e2e.harness import Server
from tests.e2e.queries import CREATE_APP, DEPLOY

QUERY = ".graphiql-query-editor .CodeMirror"
HEADERS = ".graphiql-editor-tool[aria-label=Headers] .graphiql-editor:not(.hidden) .CodeMirror"
RESULT = ".result-window .CodeMirror"


def set_editor(page: Any, selector: str, text: str) -> None:
    """What typing does: CodeMirror's value, with its change events."""
    page.wait_for_selector(selector)
    page.evaluate(
        "([sel, text]) => document.querySelector(sel).CodeMirror.setValue(text)", [selector, text]
    )
    page.wait_for_timeout(700)  # GraphiQL takes an editor's text after a 500 ms debounce


def result_of(page: Any, contains: str, timeout: float = 30) -> Any:
    page.wait_for_function(
        "([sel, text]) => { const e = document.querySelector(sel);"
        " return e && e.CodeMirror.getValue().includes(text); }",
        arg=[RESULT, contains],
        timeout=timeout * 1000,
    )
    return json.loads(
        page.evaluate(f"() => document.querySelector('{RESULT}').CodeMirror.getValue()")
    )


def run(page: Any) -> None:
    page.click(".graphiql-execute-button")


def test_graphiql_runs_offline_with_the_key_from_its_headers_pane(
    page: Any, server: Server, scripted: Scripted
) -> None:
    own = f"127.0.0.1:{server.port}"
    elsewhere: list[str] = []

    def only_own(route: Any) -> None:
        if urlsplit(route.request.url).netloc == own or route.request.url.startswith("data:"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_own)
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))

    admin = server.client(Scope.ADMIN)
    app_id = admin(CREATE_APP, input=GIT_APP())["createApplication"]["id"]
    scripted.builder.lines = [f"Step {n}/20 : line {n}" for n in range(1, 21)]
    dep = admin(DEPLOY, id=app_id)["deployApplication"]
    wait_finished(admin, dep["id"])
    key = server.key(Scope.READ)

    page.goto(server.url)
    page.wait_for_selector(".graphiql-execute-button", timeout=30_000)
    set_editor(page, HEADERS, json.dumps({"x-api-key": key}))
    with page.expect_response(lambda r: r.request.method == "POST") as introspection:
        page.click('button[aria-label="Re-fetch GraphQL schema"]')  # as the README says
    assert introspection.value.status == 200
    assert "__schema" in introspection.value.text()
    set_editor(page, QUERY, "{ applications { edges { node { id name } } } }")
    run(page)
    data = result_of(page, app_id)
    assert data == {"data": {"applications": {"edges": [{"node": {"id": app_id, "name": "web"}}]}}}

    subscription = (
        f'subscription {{ deploymentLogs(deploymentId: "{dep["id"]}", afterSeq: 0) '
        "{ seq message } }"
    )
    set_editor(page, QUERY, subscription)
    run(page)
    last = result_of(page, "Deployment finished: DONE")
    assert last["data"]["deploymentLogs"][-1]["message"] == "Deployment finished: DONE"
    assert sockets == [f"ws://{own}/graphql"], sockets
    screenshot(page, "graphiql-subscription")

    set_editor(page, HEADERS, json.dumps({"x-api-key": "slw_not-a-key"}))
    set_editor(page, QUERY, "{ applications { edges { node { id } } } }")
    run(page)
    refused = result_of(page, "UNAUTHENTICATED")
    assert refused["errors"][0]["message"] == "the API key is not valid"

    assert elsewhere == [], "GraphiQL asked another host"
    # The schema is asked for once at load, before a key is typed, and the bad key: 401s.
    unexpected = [e for e in page.errors if "status of 401" not in e]
    assert unexpected == [], page.errors
