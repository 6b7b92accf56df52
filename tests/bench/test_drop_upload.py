"""Benchmark: a 200 MB, 10,000-file ZIP dropped on a real `slipway serve` (embedded mode).

Measured: the dropDeployment round trip (upload streamed to disk, linked into place,
central directory checked, deployment queued), the FETCH_SOURCE step (extraction by
FetchDrop, from the deployment's step record), and the server's memory: its peak RSS
over the upload and the extraction minus its RSS just before (``clear_refs`` resets
VmHWM, and a thread samples VmRSS every 10 ms as a cross-check). Baselines in the same
run: the same multipart POST to a bare Starlette app that parses it with ``request.form()``
(spooled temporary file) and copies the file into place, a plain copy of the archive
file, and ``zipfile.extractall`` of it. The archive
has no Dockerfile, so BUILD_IMAGE fails at once and nothing is sent to Docker.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import TERMINAL
from tests.e2e.harness import free_port
from tests.support.processes import SLIPWAY, Proc, start_serve
from tests.support.zips import random_zip

pytestmark = pytest.mark.docker  # embedded `slipway serve` connects to the Docker engine

FILES = 10_000
TOTAL = 200 * 1000 * 1000
MAX_GROWTH = 64 << 20
MB = 1e6
CREATE = """mutation {
  createApplication(input: {name: "bench-drop", sourceType: DROP}) { id appName } }"""
DROP = """mutation($id: ID!, $zip: Upload!) {
  dropDeployment(applicationId: $id, zip: $zip) { id } }"""
STEPS = """query($id: ID!) { deployment(id: $id) { status errorMessage
  steps { step outcome durationMs } } }"""


BARE_APP = """
import shutil, sys
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

async def upload(request):
    form = await request.form()
    with open(sys.argv[2], "wb") as out:
        shutil.copyfileobj(form["0"].file, out, 1 << 20)
    return PlainTextResponse("ok")

app = Starlette(routes=[Route("/", upload, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def bare_upload(tmp_path: Path, archive: Path) -> float:
    """Seconds for the same multipart POST to Starlette's own form parser, plus a copy."""
    port = free_port()
    argv = [sys.executable, "-c", BARE_APP, str(port), str(tmp_path / "bare.zip")]
    bare = Proc(argv, dict(os.environ), tmp_path / "bare.log")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, bare.tail()
                time.sleep(0.05)
        with archive.open("rb") as fh, httpx.Client(timeout=120) as http:
            t0 = time.monotonic()
            res = http.post(
                f"http://127.0.0.1:{port}/",
                data={"operations": "{}", "map": "{}"},
                files={"0": (archive.name, fh, "application/zip")},
            )
            elapsed = time.monotonic() - t0
        assert res.text == "ok", res.text
        return elapsed
    finally:
        bare.stop()


def proc_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"{field} not in /proc/{pid}/status")


class Sampler(threading.Thread):
    """The highest VmRSS seen, every 10 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.01):
            self.peak = max(self.peak, proc_kb(self.pid, "VmRSS"))


@pytest.fixture
def serve(tmp_path: Path, docker_client: Any) -> Iterator[tuple[Proc, str, int]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLIPWAY_")}
    env["SLIPWAY_DATA_DIR"] = str(tmp_path / "data")
    key = subprocess.run(
        [SLIPWAY, "api-key", "create", "--name", "bench", "--scope", "DEPLOY"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()[-1]
    port = free_port()
    proc = start_serve(env, tmp_path / "serve.log", port=port)
    try:
        yield proc, key, port
    finally:
        proc.stop()


def drop(http: httpx.Client, url: str, app_id: str, archive: Path) -> str:
    operations = {"query": DROP, "variables": {"id": app_id, "zip": None}}
    with archive.open("rb") as fh:
        res = http.post(
            url,
            data={
                "operations": json.dumps(operations),
                "map": json.dumps({"0": ["variables.zip"]}),
            },
            files={"0": (archive.name, fh, "application/zip")},
        )
    body = res.json()
    assert res.status_code == 200 and not body.get("errors"), res.text[:500]
    dep_id: str = body["data"]["dropDeployment"]["id"]
    return dep_id


def finished(http: httpx.Client, url: str, dep_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        res = http.post(url, json={"query": STEPS, "variables": {"id": dep_id}})
        dep: dict[str, Any] = res.json()["data"]["deployment"]
        if dep["status"] in TERMINAL:
            return dep
        assert time.monotonic() < deadline, dep
        time.sleep(0.05)


def test_drop_upload_of_200_mb(tmp_path: Path, serve: tuple[Proc, str, int]) -> None:
    proc, key, port = serve
    url = f"http://127.0.0.1:{port}/graphql"
    started = time.monotonic()
    archive = random_zip(tmp_path / "site.zip", files=FILES, total_bytes=TOTAL)
    made = time.monotonic() - started
    small = random_zip(tmp_path / "warm.zip", files=20, total_bytes=200_000)

    with httpx.Client(headers={"x-api-key": key}, timeout=120) as http:
        app = http.post(url, json={"query": CREATE}).json()["data"]["createApplication"]
        app_id = app["id"]
        finished(http, url, drop(http, url, app_id, small))  # warm every code path once

        before = proc_kb(proc.pid, "VmRSS")
        Path(f"/proc/{proc.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
        sampler = Sampler(proc.pid)
        sampler.start()
        t0 = time.monotonic()
        dep_id = drop(http, url, app_id, archive)
        upload_s = time.monotonic() - t0
        dep = finished(http, url, dep_id)
        sampler.done.set()
        sampler.join()
        hwm = proc_kb(proc.pid, "VmHWM")

    steps = {s["step"]: s for s in dep["steps"]}
    assert steps["FETCH_SOURCE"]["outcome"] == "DONE", dep
    assert "Dockerfile not found" in (dep["errorMessage"] or ""), dep
    extract_s = steps["FETCH_SOURCE"]["durationMs"] / 1000
    code = tmp_path / "data" / "work" / app["appName"] / "code"
    assert sum(1 for _ in code.rglob("*.bin")) == FILES

    bare_s = bare_upload(tmp_path, archive)
    copy_s = _timed(lambda: shutil.copyfile(archive, tmp_path / "copy.zip"))
    extractall_s = _timed(lambda: zipfile.ZipFile(archive).extractall(tmp_path / "plain"))
    growth = hwm - before
    sampled = sampler.peak - before
    size = archive.stat().st_size
    print(
        f"\nBENCH drop_upload: archive={size / MB:.1f}MB files={FILES} (built in {made:.2f}s)\n"
        f"  upload+validate (dropDeployment round trip) {upload_s:.3f}s "
        f"({size / MB / upload_s:.0f} MB/s)\n"
        f"    baseline: Starlette request.form() + copy into place {bare_s:.3f}s, "
        f"ratio {upload_s / bare_s:.2f}; plain file copy {copy_s:.3f}s\n"
        f"  extraction (FETCH_SOURCE step)              {extract_s:.3f}s; "
        f"baseline zipfile.extractall {extractall_s:.3f}s; ratio {extract_s / extractall_s:.2f}\n"
        f"  server memory: RSS before {before / MB:.1f}MB, peak growth {growth / MB:.1f}MB "
        f"(VmHWM), {sampled / MB:.1f}MB (sampled every 10 ms); limit {MAX_GROWTH / MB:.1f}MB"
    )
    assert growth < MAX_GROWTH, f"server memory grew {growth / MB:.1f}MB"


def _timed(fn: Any) -> float:
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0
