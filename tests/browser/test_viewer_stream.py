"""The viewer under stress, in real headless Chromium: a dropped link, 100,000 lines, the tail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app.logs.files import last_seq, read_after
from app.types import Scope
from tests.browser.conftest import Scripted, open_with_key, read_key, screenshot
from tests.e2e.conftest import GIT_APP, wait_finished
from tests.e2e.harness import Server
from tests.e2e.queries import CREATE_APP, DEPLOY
from tests.support.cutting_proxy import CuttingProxy

HELD = "window.slipwayViewer.log.seq.length"
STATE = "window.slipwayViewer.state"


def _deploy(server: Server) -> tuple[str, Path]:
    client = server.client(Scope.ADMIN)
    app_id = client(CREATE_APP, input=GIT_APP())["createApplication"]["id"]
    dep = client(DEPLOY, id=app_id)["deployApplication"]
    return dep["id"], Path(dep["logPath"])


def _until(page: Any, expression: str, timeout: float = 30) -> None:
    """Wait until ``expression`` is true in the page (as a function: the page's CSP forbids
    the eval Playwright uses for a bare expression)."""
    page.wait_for_function(f"() => ({expression})", timeout=timeout * 1000)


def _wait_held(page: Any, count: int, timeout: float = 60) -> None:
    _until(page, f"{HELD} >= {count}", timeout)


def _wait_end(page: Any, path: Path, timeout: float = 120) -> None:
    _until(page, f"{STATE}.logComplete", timeout)
    assert page.evaluate(HELD) == last_seq(path)


def _assert_same_as_file(page: Any, path: Path) -> None:
    seqs, messages = page.evaluate("[window.slipwayViewer.log.seq, window.slipwayViewer.log.msg]")
    on_disk = read_after(path, 0)
    assert seqs == [x.seq for x in on_disk] == list(range(1, len(on_disk) + 1))
    assert messages == [x.message for x in on_disk]
    assert page.evaluate(f"[{STATE}.duplicates, {STATE}.gaps]") == [0, 0]


def _download(page: Any, tmp_path: Path) -> str:
    with page.expect_download() as info:
        page.click("#download")
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(target)
    return target.read_text(encoding="utf-8")


def test_a_dropped_connection_resumes_after_the_last_line_held(
    page: Any, server: Server, scripted: Scripted, tmp_path: Path
) -> None:
    scripted.builder.lines = [f"\x1b[32mline {n:05d}\x1b[0m of the build" for n in range(1, 3001)]
    scripted.builder.pace_s = 0.002  # a few seconds of writing: cut twice while it is written
    proxy = CuttingProxy(server.port)
    subscribed: list[int] = []

    def on_socket(ws: Any) -> None:
        def sent(payload: str | bytes) -> None:
            message = json.loads(payload)
            if message.get("type") == "subscribe" and "ViewerLogs" in message["payload"]["query"]:
                subscribed.append(message["payload"]["variables"]["after"])

        ws.on("framesent", sent)

    page.on("websocket", on_socket)
    try:
        dep_id, path = _deploy(server)
        open_with_key(
            page, f"http://127.0.0.1:{proxy.port}/ui/deployments/{dep_id}", read_key(server)
        )
        for at in (400, 1500):
            _wait_held(page, at)
            assert proxy.cut() >= 1, "the page's WebSocket went through the proxy"
            held_when_cut = page.evaluate(HELD)
            assert last_seq(path) < 3000, "the deployment must still be writing"
            _until(page, f"{STATE}.client.connects >= {proxy.cuts + 1}")
            assert subscribed[-1] >= held_when_cut - 5 and subscribed[-1] > 0, subscribed
        _wait_end(page, path)
    finally:
        proxy.close()
    assert subscribed[0] == 0 and len(subscribed) == 3 and subscribed == sorted(subscribed)
    _assert_same_as_file(page, path)
    # the download is every line held, as logged (ANSI codes kept for `less -R`)
    assert _download(page, tmp_path) == "".join(x.message + "\n" for x in read_after(path, 0))
    assert page.errors == []


def test_100000_lines_stay_virtualised_scroll_and_search(
    page: Any, server: Server, scripted: Scripted, tmp_path: Path
) -> None:
    lines = [f"line {n} \x1b[1;34mbuilding\x1b[0m module-{n % 97}" for n in range(1, 100_001)]
    lines[99_990] = "the needle-in-the-log is here \x1b[31m(near the end)\x1b[0m"
    scripted.builder.lines = lines
    dep_id, path = _deploy(server)
    wait_finished(server.client(Scope.READ), dep_id, timeout=300)
    open_with_key(page, f"http://127.0.0.1:{server.port}/ui/deployments/{dep_id}", read_key(server))
    _wait_end(page, path, timeout=180)
    total = page.evaluate(HELD)
    assert total > 100_000

    def dom_rows() -> int:
        count: int = page.locator("#rows .row").count()
        return count

    # following: the last line is on screen, and only a screenful plus a margin is in the DOM
    _until(page, f"document.querySelector('#rows .row:last-child')?.dataset.seq === '{total}'")
    assert dom_rows() < 200
    assert page.evaluate("document.getElementsByTagName('*').length") < 3000

    # scrolled to the middle: the rows there, still a screenful
    page.evaluate("document.getElementById('log').scrollTop = 50000 * 18")
    _until(
        page,
        "(() => { const r = [...document.querySelectorAll('#rows .row')].map(e => +e.dataset.seq);"
        " return r.includes(50001) && r.includes(50010); })()",
    )
    assert dom_rows() < 200
    assert page.evaluate("document.getElementById('follow').textContent") == "Follow tail"

    # search finds the line near the end and brings it into view
    page.fill("#search", "NEEDLE-in-the")
    page.press("#search", "Enter")
    _until(page, "document.getElementById('matches').textContent === '1 / 1'")
    match = page.locator("#rows .row.current")
    match.wait_for()
    needle_seq = next(x.seq for x in read_after(path, 0) if x.message == lines[99_990])
    assert match.get_attribute("data-seq") == str(needle_seq)
    assert match.locator(".msg").text_content() == "the needle-in-the-log is here (near the end)"
    log_box, row_box = page.locator("#log").bounding_box(), match.bounding_box()
    assert (
        log_box["y"] <= row_box["y"]
        and row_box["y"] + row_box["height"] <= log_box["y"] + log_box["height"]
    )
    assert dom_rows() < 200

    # a word on many lines: step through them
    count = sum(1 for line in lines if line.endswith(" module-13"))  # no module-13x: n % 97
    assert count > 1000
    page.fill("#search", "module-13")
    _until(page, f"document.getElementById('matches').textContent === '1 / {count}'")
    page.press("#search", "Enter")
    assert page.evaluate("document.getElementById('matches').textContent") == f"2 / {count}"
    page.press("#search", "Shift+Enter")
    page.press("#search", "Shift+Enter")
    assert page.evaluate("document.getElementById('matches').textContent") == f"{count} / {count}"
    print("screenshot:", screenshot(page, "viewer-100k-search"))
    text = _download(page, tmp_path)
    assert text.count("\n") == total
    assert page.errors == []


def test_it_follows_the_tail_unless_the_user_scrolled_up(
    page: Any, server: Server, scripted: Scripted
) -> None:
    scripted.builder.lines = [f"tail line {n}" for n in range(1, 1501)]
    scripted.builder.pace_s = 0.003
    dep_id, path = _deploy(server)
    open_with_key(page, f"http://127.0.0.1:{server.port}/ui/deployments/{dep_id}", read_key(server))
    _wait_held(page, 300)
    at_bottom = (
        "(() => { const b = document.getElementById('log');"
        " return b.scrollTop + b.clientHeight >= b.scrollHeight - 18; })()"
    )
    _until(page, at_bottom)
    page.mouse.move(640, 500)
    page.mouse.wheel(0, -2000)  # the user scrolls up while lines keep coming
    _until(page, "document.getElementById('follow').textContent === 'Follow tail'")
    top = page.evaluate("document.getElementById('log').scrollTop")
    held = page.evaluate(HELD)
    _until(page, f"{HELD} >= {held + 200}")
    assert page.evaluate("document.getElementById('log').scrollTop") == top, "stayed put"
    assert not page.evaluate(at_bottom)
    page.click("#follow")
    _until(page, at_bottom)
    _wait_end(page, path)
    _until(page, at_bottom)
    last = page.locator("#rows .row").last
    assert last.get_attribute("data-seq") == str(last_seq(path))
    assert page.errors == []
