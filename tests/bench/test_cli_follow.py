"""Benchmark: `slipway logs --follow` of a 100,000-line log to a pipe, against the same
subscription through the bench's raw client (tests/bench/log_client.py), in the same run.

    scripts/bench tests/bench/test_cli_follow.py

The server runs in a thread here with a builder that floods the log (tests/bench/flood.py).
Both followers are child processes: the CLI as a pipeline runs it, ``slipway logs ID
--follow | wc -l`` (SLIPWAY_URL and SLIPWAY_API_KEY in its environment, plain lines into the
pipe, counted by wc), and the raw client selecting the same LogLine fields the CLI does
(``seq timestamp stream step message``) and keeping only counts. Each figure is a whole
command, from its start to its exit: the interpreter's start and imports, the CLI's two
HTTP queries, the subscription, printing.

- replay: the deployment has ended, so the subscription replays its log file and completes;
  RUNS runs of each, alternating which goes first; lines/s medians and their ratio.
- live: both follow one deployment while it writes, started before its first line; lines/s
  from the first write to each follower's exit, and the writer's own rate.

Figures are printed; only correctness is asserted (every line exactly once, exit 0). Target:
CLI/raw >= 0.8 on the replay medians.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from app.engine.context import Adapters
from app.logs.files import last_seq
from app.runtime.fake import FakeRuntime
from app.settings import Settings
from app.sources.fake import FakeGitClient
from app.types import BuildType, Scope
from tests.bench.flood import FloodBuilder
from tests.bench.stats import median, seconds
from tests.e2e.cli_support import SLIPWAY, cli_env, server_root
from tests.e2e.conftest import GIT_APP, wait_finished
from tests.e2e.harness import Client, Server, running_server
from tests.e2e.queries import CREATE_APP, DEPLOY

LINES = 100_000
RUNS = 7
TIMEOUT = 300
ROOT = Path(__file__).resolve().parents[2]
FIELDS = "seq timestamp stream step message"  # what app/client/follow.py selects


def _adapters(source: Path, builder: FloodBuilder) -> Any:
    def make(_: Settings) -> Adapters:
        return Adapters(
            git=FakeGitClient(source),
            builders={BuildType.DOCKERFILE: builder},
            runtime=FakeRuntime(),
        )

    return make


def _deploy(client: Client, name: str) -> dict[str, Any]:
    app_id = client(CREATE_APP, input=GIT_APP(name=name))["createApplication"]["id"]
    deployment: dict[str, Any] = client(DEPLOY, id=app_id)["deployApplication"]
    return deployment


class CliPipeline:
    """``slipway logs DEPLOYMENT --follow | wc -l``: the CLI's stdout a pipe into another
    process, as in a shell pipeline (read here, the pipe would compete with the server's
    thread for this process's GIL)."""

    def __init__(self, server: Server, key: str, dep_id: str) -> None:
        self.cli = subprocess.Popen(
            [SLIPWAY, "logs", dep_id, "--follow"],
            cwd=ROOT,
            env=cli_env(server_root(server.url), key),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.cli.stdout is not None
        self.wc = subprocess.Popen(["wc", "-l"], stdin=self.cli.stdout, stdout=subprocess.PIPE)
        self.cli.stdout.close()  # wc holds the reading end now

    def finish(self) -> tuple[int, float]:
        """The lines wc counted, and when the CLI exited."""
        assert self.cli.stderr is not None and self.wc.stdout is not None
        err = self.cli.stderr.read().decode(errors="replace")
        code = self.cli.wait(timeout=TIMEOUT)
        ended = time.monotonic()
        lines = int(self.wc.stdout.read().split()[0])
        self.wc.wait(timeout=30)
        assert code == 0, f"slipway logs --follow exited {code}: {err[-2000:]}"
        return lines, ended

    def kill(self) -> None:
        for proc in (self.cli, self.wc):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _start_raw(server: Server, key: str, dep_id: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "tests.bench.log_client", server.ws_url, key, dep_id]
    cmd += ["--subscribers", "1", "--fields", FIELDS, "--timeout", str(TIMEOUT)]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)


def _finish_raw(proc: subprocess.Popen[str]) -> tuple[int, float]:
    out, _ = proc.communicate(timeout=TIMEOUT + 60)
    ended = time.monotonic()
    assert proc.returncode == 0, f"log_client exited {proc.returncode}"
    [report] = json.loads(out.strip().splitlines()[-1])["reports"]
    assert report["error"] is None and report["completed"], report
    assert report["in_order"] and report["count"] == report["unique"], report
    return int(report["count"]), ended


def _timed_cli(server: Server, key: str, dep_id: str, final: int) -> float:
    started = time.monotonic()
    lines, ended = CliPipeline(server, key, dep_id).finish()
    assert lines == final, f"the CLI printed {lines} lines of {final}"
    return ended - started


def _timed_raw(server: Server, key: str, dep_id: str, final: int) -> float:
    started = time.monotonic()
    count, ended = _finish_raw(_start_raw(server, key, dep_id))
    assert count == final, f"the raw client got {count} lines of {final}"
    return ended - started


def _live(server: Server, client: Client, key: str, builder: FloodBuilder) -> dict[str, float]:
    dep = _deploy(client, "live")
    assert builder.started.wait(30), "the build did not start"
    cli, raw = CliPipeline(server, key, dep["id"]), _start_raw(server, key, dep["id"])
    time.sleep(3.0)  # both subscribed (their interpreters started) before the first line
    go = time.monotonic()
    builder.go.set()
    try:
        cli_lines, cli_end = cli.finish()
        raw_lines, raw_end = _finish_raw(raw)
    finally:
        cli.kill()
        if raw.poll() is None:
            raw.kill()
            raw.wait()
    assert wait_finished(client, dep["id"], timeout=TIMEOUT)["status"] == "DONE"
    final = last_seq(Path(dep["logPath"]))
    assert cli_lines == raw_lines == final, (cli_lines, raw_lines, final)
    return {
        "cli": final / (cli_end - go),
        "raw": final / (raw_end - go),
        "writer": builder.rate,
        "final": final,
    }


def test_cli_follow_to_a_pipe_against_the_raw_client(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "Dockerfile").write_text("FROM busybox:1.36\n")
    builder = FloodBuilder(LINES)
    with running_server(tmp_path / "data", _adapters(source, builder)) as server:
        client = server.client(Scope.DEPLOY)
        key = server.key(Scope.READ)
        live = _live(server, client, key, builder)

        builder.started.clear()  # the replayed deployment: written at once, then followed
        dep = _deploy(client, "replay")
        assert wait_finished(client, dep["id"], timeout=TIMEOUT)["status"] == "DONE"
        final = last_seq(Path(dep["logPath"]))
        assert final > LINES
        cli_s: list[float] = []
        raw_s: list[float] = []
        for run in range(RUNS):
            if run % 2 == 0:
                cli_s.append(_timed_cli(server, key, dep["id"], final))
                raw_s.append(_timed_raw(server, key, dep["id"], final))
            else:
                raw_s.append(_timed_raw(server, key, dep["id"], final))
                cli_s.append(_timed_cli(server, key, dep["id"], final))

    cli_rate, raw_rate = final / median(cli_s), final / median(raw_s)
    print(
        f"\nBENCH cli_follow: `slipway logs --follow` to a pipe vs the raw client "
        f"(tests/bench/log_client.py, same subscription and fields), {final} lines\n"
        f"  replay (ended deployment), {RUNS} runs each, alternating:\n"
        f"    slipway logs --follow  {seconds(cli_s)}  median {median(cli_s):.3f}s "
        f"= {cli_rate:,.0f} lines/s\n"
        f"    raw client             {seconds(raw_s)}  median {median(raw_s):.3f}s "
        f"= {raw_rate:,.0f} lines/s\n"
        f"    ratio CLI/raw          {cli_rate / raw_rate:.2f}  (target >= 0.8)\n"
        f"  live (both following while {live['final']:.0f} lines are written, once):\n"
        f"    writer {live['writer']:,.0f} lines/s; slipway {live['cli']:,.0f} lines/s, "
        f"raw {live['raw']:,.0f} lines/s (first write to exit); ratio "
        f"{live['cli'] / live['raw']:.2f}"
    )
