"""Benchmark: the log viewer page holding a finished 100,000-line log, in headless Chromium.

Baseline: a bare Python graphql-transport-ws client (tests.e2e.harness.Subscription) taking
the same replay from the same server; the ratio is what the page adds (JSON in the browser,
the column arrays, drawing). Also measured in the page: the longest main-thread task while
it takes the replay (PerformanceObserver "longtask"; under 50 ms none is reported), a search
over every line (the keydown handler, to the match brought into view), and a jump to the
middle drawn in the next frame. Runs alternate. Figures are printed; only correctness is
asserted.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from app.logs.files import last_seq
from app.types import Scope
from tests.bench.stats import median, seconds
from tests.browser.conftest import browser, open_with_key, scripted, server  # noqa: F401 (fixtures)
from tests.e2e.conftest import GIT_APP, wait_finished
from tests.e2e.harness import Server
from tests.e2e.queries import CREATE_APP, DEPLOY, LOGS_SUB

RUNS = 3
LINES = 100_000

LONG_TASKS = """() => {
  window.__long = [];
  new PerformanceObserver((list) => window.__long.push(...list.getEntries().map(e => e.duration)))
    .observe({type: 'longtask', buffered: true});
}"""
SEARCH = """(needle) => {
  const input = document.getElementById('search');
  const t0 = performance.now();
  input.value = needle;
  input.dispatchEvent(new Event('input'));
  input.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter'}));
  return performance.now() - t0;
}"""
JUMP = """() => new Promise((done) => {
  const box = document.getElementById('log');
  const t0 = performance.now();
  box.scrollTop = 50000 * 18;
  requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t0)));
})"""


def _python_client(srv: Server, dep_id: str, total: int) -> float:
    started = time.perf_counter()
    sub = srv.subscribe(LOGS_SUB, id=dep_id, after=0)
    got = 0
    try:
        for data in sub.messages(timeout=300):
            got += len(data["deploymentLogs"])
    finally:
        sub.close()
    assert got == total
    return time.perf_counter() - started


def _page(chromium: Any, srv: Server, dep_id: str, total: int) -> dict[str, float]:
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        page.add_init_script(script=f"({LONG_TASKS})()")
        started = time.perf_counter()
        url = f"http://127.0.0.1:{srv.port}/ui/deployments/{dep_id}"
        open_with_key(page, url, srv.key(Scope.READ))
        page.wait_for_function(
            f"() => window.slipwayViewer.state.logComplete"
            f" && window.slipwayViewer.log.seq.length === {total}",
            timeout=300_000,
            polling=20,
        )
        held = time.perf_counter() - started
        longest = max(page.evaluate("window.__long"), default=0.0)
        search_ms = page.evaluate(SEARCH, "needle-in-the-log")
        assert page.locator("#rows .row.current").count() == 1
        jump_ms = page.evaluate(JUMP)
        assert page.locator("#rows .row").count() < 200
        return {"held": held, "longest": longest, "search": search_ms, "jump": jump_ms}
    finally:
        context.close()


def test_viewer_holds_100k_lines(
    browser: Any,  # noqa: F811
    server: Server,  # noqa: F811
    scripted: Any,  # noqa: F811
) -> None:
    lines = [f"line {n} \x1b[1;34mbuilding\x1b[0m module-{n % 97}" for n in range(1, LINES + 1)]
    lines[LINES - 10] = "the needle-in-the-log is here"
    scripted.builder.lines = lines
    client = server.client(Scope.ADMIN)
    app_id = client(CREATE_APP, input=GIT_APP())["createApplication"]["id"]
    dep = client(DEPLOY, id=app_id)["deployApplication"]
    assert wait_finished(client, dep["id"], timeout=300)["status"] == "DONE"
    total = last_seq(Path(dep["logPath"]))
    bare: list[float] = []
    pages: list[dict[str, float]] = []
    for _ in range(RUNS):
        bare.append(_python_client(server, dep["id"], total))
        pages.append(_page(browser, server, dep["id"], total))
    held = [p["held"] for p in pages]
    print(f"\nviewer, a finished log of {total} lines, {RUNS} runs each")
    print(f"  bare Python client, replay received:  median {median(bare):.3f}s {seconds(bare)}")
    print(f"  page, opened to every line held:      median {median(held):.3f}s {seconds(held)}")
    print(f"  ratio page / bare client:             {median(held) / median(bare):.2f}")
    for name, label in (
        ("longest", "longest main-thread task"),
        ("search", "search of every line"),
        ("jump", "jump to the middle, drawn"),
    ):
        values = [p[name] for p in pages]
        listing = " ".join(f"{v:.1f}" for v in values)
        print(f"  {label + ' (ms):':38s}median {median(values):.1f} [{listing}]")
