"""The log viewer in real headless Chromium against a real server (fake adapters)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.logs.files import read_after
from app.types import Scope
from tests.browser.conftest import Scripted, open_with_key, read_key, screenshot
from tests.e2e.conftest import GIT_APP, wait_finished
from tests.e2e.harness import Server
from tests.e2e.queries import CREATE_APP, DEPLOY

XSS = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> &amp; </div>'
COLOURED = "\x1b[31mred\x1b[0m plain \x1b[1;32mbold green\x1b[0m \x1b[38;5;208morange\x1b[0m"

STATUS_TEXT = "document.getElementById('status').textContent"
RECORD_STATUSES = """() => {
  window.__statuses = [];
  window.__steps = [];
  const node = document.getElementById('status');
  const steps = document.getElementById('steps');
  new MutationObserver(() => window.__statuses.push(node.textContent))
    .observe(node, {childList: true, characterData: true, subtree: true});
  new MutationObserver(() => window.__steps.push(steps.textContent))
    .observe(steps, {childList: true, subtree: true});
}"""


def _page_lines(page: Any) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = page.evaluate(
        """() => { const l = window.slipwayViewer.log;
          return l.seq.map((seq, i) => ({seq, step: l.step[i], message: l.msg[i]})); }"""
    )
    return result


def _wait_text(page: Any, selector: str, text: str, timeout: float = 30) -> None:
    page.wait_for_function(
        "([sel, text]) => (document.querySelector(sel)?.textContent || '').includes(text)",
        arg=[selector, text],
        timeout=timeout * 1000,
    )


def test_a_deployment_is_followed_from_queued_to_done(
    page: Any, server: Server, scripted: Scripted
) -> None:
    client = server.client(Scope.ADMIN)
    app_id = client(CREATE_APP, input=GIT_APP())["createApplication"]["id"]
    scripted.builder.lines = ["Step 1/3 : FROM busybox", COLOURED, XSS, "Step 3/3 : done"]
    scripted.builder.gate.clear()
    scripted.builder.pace_s = 0.25  # a one-second build: RUNNING is seen
    first = client(DEPLOY, id=app_id)["deployApplication"]
    assert scripted.builder.started.wait(30), "the first deployment holds the application"
    dep = client(DEPLOY, id=app_id)["deployApplication"]
    assert dep["status"] == "QUEUED" and dep["id"] != first["id"]
    requests: list[Any] = []
    page.on("request", lambda r: requests.append(r))
    sockets: list[Any] = []
    page.on("websocket", lambda ws: sockets.append(ws))

    open_with_key(
        page, f"http://127.0.0.1:{server.port}/ui/deployments/{dep['id']}", read_key(server)
    )
    _wait_text(page, "#status", "QUEUED")
    page.evaluate(RECORD_STATUSES)
    scripted.builder.gate.set()
    _wait_text(page, "#status", "DONE", timeout=60)
    _wait_text(page, "#connection", "end of log")
    assert wait_finished(client, dep["id"])["status"] == "DONE"

    statuses = page.evaluate("window.__statuses")
    assert "RUNNING" in statuses and statuses[-1] == "DONE", statuses
    live_steps = page.evaluate("window.__steps")
    assert any("BUILD_IMAGERUNNING" in s for s in live_steps), live_steps  # seen while it ran
    steps = page.eval_on_selector_all(
        "#steps li",
        "els => els.map(e => [e.querySelector('.name').textContent,"
        " e.querySelector('.outcome').textContent])",
    )
    assert steps == [
        ["FETCH_SOURCE", "DONE"],
        ["BUILD_IMAGE", "DONE"],
        ["RELEASE", "DONE"],
        ["VERIFY_HEALTH", "DONE"],
    ]

    # every line of the file, once, in order, with its step
    on_disk = read_after(
        Path(
            client("query($id: ID!) { deployment(id: $id) { logPath } }", id=dep["id"])[
                "deployment"
            ]["logPath"]
        ),
        0,
    )
    shown = _page_lines(page)
    assert [(x["seq"], x["step"], x["message"]) for x in shown] == [
        (x.seq, x.step, x.message) for x in on_disk
    ]
    assert page.evaluate(
        "[window.slipwayViewer.state.duplicates, window.slipwayViewer.state.gaps]"
    ) == [0, 0]
    build_rows = page.eval_on_selector_all(
        "#rows .row",
        "rs => rs.map(r => [r.querySelector('.step').textContent,"
        " r.querySelector('.msg').textContent])",
    )
    assert ["BUILD_IMAGE", "Step 1/3 : FROM busybox"] in build_rows

    # ANSI colours become spans; the codes themselves are not shown
    coloured = page.locator("#rows .row", has_text="bold green")
    assert coloured.locator(".msg").text_content() == "red plain bold green orange"
    spans = coloured.locator(".msg span").evaluate_all(
        "ss => ss.map(s => [s.textContent, s.className, getComputedStyle(s).color])"
    )
    assert spans[0][:2] == ["red", "fg1"]
    assert spans[2][:2] == ["bold green", "fg2 bold"]
    assert spans[4][0] == "orange" and spans[4][2] == "rgb(255, 135, 0)"

    # an HTML payload in a log line is text: shown as written, nothing parsed or run
    xss = page.locator("#rows .row", has_text="window.__pwned")
    assert xss.locator(".msg").text_content() == XSS
    assert page.locator("#rows img, #rows script").count() == 0
    assert page.evaluate("window.__pwned") is None

    # the key went as a header and in connection_init, never in a URL
    key = page.evaluate("sessionStorage.getItem('slipway.apiKey')")
    assert key and all(key not in r.url for r in requests)
    assert sockets and all(key not in ws.url for ws in sockets)
    assert page.errors == []
    print("screenshot:", screenshot(page, "viewer-done"))


def test_the_list_links_each_recent_deployment_to_its_viewer(
    page: Any, server: Server, scripted: Scripted
) -> None:
    client = server.client(Scope.ADMIN)
    app = client(CREATE_APP, input=GIT_APP(name="shop"))["createApplication"]
    dep = client(DEPLOY, id=app["id"])["deployApplication"]
    assert wait_finished(client, dep["id"])["status"] == "DONE"
    seen: list[Any] = []
    page.on("request", lambda r: seen.append(r))

    open_with_key(page, f"http://127.0.0.1:{server.port}/ui/", read_key(server))
    row = page.locator(f"#apps tr[data-app='{app['id']}']")
    row.wait_for()
    assert "shop" in row.text_content()
    link = row.locator("a.dep")
    assert link.count() == 1 and "DONE" in link.text_content()
    link.click()
    page.wait_for_url(f"**/ui/deployments/{dep['id']}")
    _wait_text(page, "#status", "DONE")  # the key carried over in this tab's session storage
    graphql = [r for r in seen if r.url.endswith("/graphql") and r.method == "POST"]
    assert graphql and all(r.headers.get("x-api-key") for r in graphql)
    assert page.errors == []
    print("screenshot:", screenshot(page, "viewer-from-list"))


def test_a_refused_key_asks_again(page: Any, server: Server) -> None:
    client = server.client(Scope.ADMIN)
    app_id = client(CREATE_APP, input=GIT_APP())["createApplication"]["id"]
    dep = client(DEPLOY, id=app_id)["deployApplication"]
    open_with_key(page, f"http://127.0.0.1:{server.port}/ui/deployments/{dep['id']}", "sk_wrong")
    page.locator("#key-form").wait_for(state="visible")
    _wait_text(page, "#key-note", "refused")
    assert page.evaluate("sessionStorage.getItem('slipway.apiKey')") is None
    page.fill("#key-input", read_key(server))
    page.click("#key-form button[type=submit]")
    _wait_text(page, "#status", "DONE")


def test_an_unknown_deployment_says_so(page: Any, server: Server) -> None:
    open_with_key(
        page, f"http://127.0.0.1:{server.port}/ui/deployments/01nothere", read_key(server)
    )
    page.locator("#error").wait_for(state="visible")
    assert page.locator("#error").text_content() == "deployment '01nothere' does not exist"
    assert page.locator("#rows .row").count() == 0
