"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, against a real server.

Chromium is never downloaded (no `playwright install`): scripts/services installs Debian's
package. Without it these tests skip locally and fail under CI=true.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.builders.fake import FAKE_IMAGE_ID
from app.engine.context import Adapters
from app.runtime.fake import FakeRuntime
from app.settings import Settings
from app.sources.fake import FakeGitClient
from app.types import BuildSpec, BuildType, CancelToken, LogFn, Scope
from tests.e2e.harness import Server, running_server
from tests.services import missing

CHROMIUM = os.environ.get("SLIPWAY_TEST_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps trying hosts this closed network
# refuses; a fresh profile per browser comes from Playwright.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per test module. Not per session: Playwright's sync API keeps an asyncio
    loop running on the main thread while it is started, and every asyncio test after it
    (asyncio.run, pytest-asyncio) would fail with "cannot be called from a running loop"."""
    if not (shutil.which(CHROMIUM) or os.access(CHROMIUM, os.X_OK)):
        missing(f"Chromium ({CHROMIUM}; scripts/services up chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the playwright Python package")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 800})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on(
        "console",
        lambda msg: errors.append(msg.text) if msg.type == "error" else None,
    )
    tab.errors = errors
    try:
        yield tab
    finally:
        context.close()


class ScriptedBuilder:
    """A builder that logs the lines a test gives it, after ``gate`` opens, ``pace_s`` apart."""

    def __init__(self) -> None:
        self.lines: list[str] = ["Step 1/1 : scripted build"]
        self.gate = threading.Event()
        self.gate.set()
        self.pace_s = 0.0
        self.started = threading.Event()

    def build(self, spec: BuildSpec, *, log: LogFn, cancel: CancelToken) -> str:
        self.started.set()
        while not self.gate.wait(0.05):
            cancel.check()
        for line in self.lines:
            cancel.check()
            log(line)
            if self.pace_s:
                cancel.wait(self.pace_s)
        cancel.check()
        return FAKE_IMAGE_ID


class Scripted:
    def __init__(self, source: Path) -> None:
        self.git = FakeGitClient(source)
        self.builder = ScriptedBuilder()
        self.runtime = FakeRuntime()

    def adapters(self, _: Settings) -> Adapters:
        return Adapters(
            git=self.git, builders={BuildType.DOCKERFILE: self.builder}, runtime=self.runtime
        )


@pytest.fixture
def scripted(tmp_path: Path) -> Scripted:
    src = tmp_path / "src"
    src.mkdir()
    (src / "Dockerfile").write_text("FROM busybox:1.36\n")
    return Scripted(src)


@pytest.fixture
def server(tmp_path: Path, scripted: Scripted) -> Iterator[Server]:
    with running_server(tmp_path / "data", scripted.adapters) as srv:
        yield srv


def open_with_key(page: Any, url: str, key: str) -> None:
    """Open ``url`` and give the page ``key`` through its form, as a user does."""
    page.goto(url)
    page.fill("#key-input", key)
    page.click("#key-form button[type=submit]")


def screenshot(page: Any, name: str) -> Path:
    """Kept under tests/artifacts/ (ignored by git) for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.png"
    page.screenshot(path=str(path))
    return path


def read_key(server: Server) -> str:
    return server.key(Scope.READ)
