"""Benchmark: 100 WebSocket subscribers follow a deployment that writes 100,000 lines.

The subscribers run in separate processes (tests/bench/log_client.py) so that their
work does not compete for the GIL with the server, which runs in a thread here.
Figures are printed; only correctness is asserted (every line exactly once).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from math import nan
from pathlib import Path
from typing import Any

import pytest

from app.engine.context import Adapters
from app.logs.files import last_seq
from app.runtime.fake import FakeRuntime
from app.settings import Settings
from app.sources.fake import FakeGitClient
from app.types import BuildType, Scope
from tests.bench.flood import FloodBuilder
from tests.bench.stats import median, percentile
from tests.e2e.conftest import GIT_APP, wait_finished
from tests.e2e.harness import Client, Server, running_server
from tests.e2e.queries import CREATE_APP, DEPLOY

LINES = 100_000
SUBSCRIBERS = 100
PROCESSES = 2
CLIENT_TIMEOUT = 120  # seconds from READY until every stream must have completed
ROOT = Path(__file__).resolve().parents[2]


def _adapters(source: Path, builders: dict[BuildType, FloodBuilder]) -> Any:
    def make(_: Settings) -> Adapters:
        return Adapters(
            git=FakeGitClient(source),
            builders=dict(builders),
            runtime=FakeRuntime(),
        )

    return make


def _deploy(client: Client, build_type: BuildType) -> dict[str, Any]:
    app = GIT_APP(name=f"flood-{build_type.value.lower()}", buildType=build_type.value)
    app_id = client(CREATE_APP, input=app)["createApplication"]["id"]
    deployment: dict[str, Any] = client(DEPLOY, id=app_id)["deployApplication"]
    return deployment


def _writer_alone(client: Client, builder: FloodBuilder) -> float:
    """The writer's rate with nobody following: the bound for everything downstream."""
    builder.go.set()
    dep = _deploy(client, BuildType.STATIC)
    assert wait_finished(client, dep["id"])["status"] == "DONE"
    return builder.rate


def _start_clients(server: Server, deployment_id: str) -> list[subprocess.Popen[str]]:
    """Clients offer permessage-deflate, as browsers do; the server decides."""
    key = server.key(Scope.READ)
    cmd = [sys.executable, "-m", "tests.bench.log_client", server.ws_url, key, deployment_id]
    cmd += ["--subscribers", str(SUBSCRIBERS // PROCESSES), "--timeout", str(CLIENT_TIMEOUT)]
    return [
        subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True) for _ in range(PROCESSES)
    ]


def _wait_ready(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()  # the client gives up after its own timeout
        assert line == "READY", f"a subscriber process did not get ready: {line[:500]!r}"


def _collect(procs: list[subprocess.Popen[str]]) -> tuple[list[dict[str, Any]], list[float]]:
    """Every subscriber's report, and each client process's CPU seconds."""
    reports: list[dict[str, Any]] = []
    cpu: list[float] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=CLIENT_TIMEOUT + 60)
        assert proc.returncode == 0, f"subscriber process exited with {proc.returncode}"
        result = json.loads(out.strip().splitlines()[-1])
        reports.extend(result["reports"])
        cpu.append(result["cpu_s"])
    return reports, cpu


def _print_report(
    reports: list[dict[str, Any]],
    builder: FloodBuilder,
    alone_rate: float,
    final: int,
    elapsed: float,
    client_cpu: list[float],
    *,
    deflate: bool,
) -> None:
    rates = [
        r["count"] / (r["last_receipt"] - builder.first_write) if r["count"] else 0.0
        for r in reports
    ]
    latencies = [lat for r in reports for lat in r["latencies"]]
    lost = sum(max(0, final - r["unique"]) for r in reports)
    duplicated = sum(r["count"] - r["unique"] for r in reports)
    frames = [r["frames"] for r in reports]
    print(
        f"\nBENCH log_streaming[{'compressed' if deflate else 'default'}]: {LINES} lines, "
        f"{SUBSCRIBERS} subscribers in {PROCESSES} processes "
        f"(server SLIPWAY_WS_COMPRESSION={'on' if deflate else 'off'}), final seq {final}, "
        f"wall {elapsed:.1f}s\n"
        f"  writer rate          {builder.rate:,.0f} lines/s while followed "
        f"({builder.last_write - builder.first_write:.2f}s for {LINES} lines); "
        f"{alone_rate:,.0f} lines/s with no subscriber\n"
        f"  delivered per sub    min={min(rates):,.0f} median={median(rates):,.0f} lines/s"
        f"  (target >= 5,000)\n"
        f"  latency write->recv  p50={percentile(latencies, 50) * 1000:.1f}ms "
        f"p99={percentile(latencies, 99) * 1000:.1f}ms "
        f"max={max(latencies, default=nan) * 1000:.1f}ms "
        f"(n={len(latencies)}, target p99 < 500ms)\n"
        f"  last receipt after last write: median="
        f"{median([r['last_receipt'] - builder.last_write for r in reports]):.2f}s "
        f"max={max(r['last_receipt'] for r in reports) - builder.last_write:.2f}s\n"
        f"  frames per sub       min={min(frames)} median={median(frames):.0f} max={max(frames)} "
        f"(lines per frame median {final / median(frames):.1f})\n"
        f"  client processes     CPU {' '.join(f'{c:.1f}s' for c in client_cpu)} "
        f"(a client short of CPU inflates the latency)\n"
        f"  lost={lost} duplicated={duplicated} (target 0/0)"
    )


@pytest.mark.parametrize("deflate", [False, True], ids=["default", "compressed"])
def test_100_subscribers_follow_100k_lines(tmp_path: Path, deflate: bool) -> None:
    """``deflate``: the server accepts the permessage-deflate the clients offer."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "Dockerfile").write_text("FROM busybox:1.36\n")
    builder, alone = FloodBuilder(LINES), FloodBuilder(LINES)
    builders = {BuildType.DOCKERFILE: builder, BuildType.STATIC: alone}
    started = time.monotonic()
    adapters = _adapters(source, builders)
    # One address and one key for every subscriber: the WebSocket caps raised to fit them.
    room = {
        "ws_max_pending_per_address": SUBSCRIBERS,
        "ws_max_connections_per_key": SUBSCRIBERS,
        "ws_max_subscriptions_per_key": SUBSCRIBERS,
    }
    with running_server(tmp_path / "data", adapters, ws_compression=deflate, **room) as server:
        client = server.client(Scope.DEPLOY)
        alone_rate = _writer_alone(client, alone)
        dep = _deploy(client, BuildType.DOCKERFILE)
        assert builder.started.wait(30), "the build did not start"
        procs = _start_clients(server, dep["id"])
        try:
            _wait_ready(procs)
            builder.go.set()
            reports, client_cpu = _collect(procs)
        finally:
            builder.go.set()
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        final = last_seq(Path(dep["logPath"]))
        elapsed = time.monotonic() - started
        _print_report(reports, builder, alone_rate, final, elapsed, client_cpu, deflate=deflate)
        assert wait_finished(client, dep["id"])["status"] == "DONE"
    assert final > LINES
    errors = [r["error"] for r in reports if r["error"]]
    assert not errors, f"{len(errors)} subscribers failed, e.g. {errors[0]}"
    for n, rep in enumerate(reports):
        assert rep["completed"], f"subscriber {n}: the stream did not complete"
        assert rep["in_order"], f"subscriber {n}: seqs out of order, duplicated or skipped"
        assert rep["count"] == rep["unique"] == rep["max_seq"] == final, f"subscriber {n}: {rep}"
