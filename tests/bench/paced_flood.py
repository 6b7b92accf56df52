"""A worker process whose builds write log lines at a steady rate, for the fan-out benchmarks.

    SLIPWAY_REDIS_URL=... SLIPWAY_DATABASE_URL=... SLIPWAY_DATA_DIR=... \\
        SLIPWAY_BENCH_CONTROL=DIR python -m tests.bench.paced_flood
    SLIPWAY_DATA_DIR=... SLIPWAY_BENCH_CONTROL=DIR python -m tests.bench.paced_flood serve PORT

Runs what ``slipway worker`` runs (:func:`app.queue.worker.run_worker`), as
tests/support/fake_worker.py does, with a :class:`PacedFloodBuilder` for every build
type; with ``serve PORT`` (embedded mode) what ``slipway serve`` runs instead, the API and
its in-process worker, with the same builder. The benchmark drives each build through
files in ``DIR``:

* the build creates ``started`` when it begins, then waits for ``go``;
* ``go`` holds ``{"lines": N, "rate": R}`` (written atomically by the benchmark); the
  build removes both files and writes N lines, line n at ``n / R`` s after the first;
* at the end it writes ``done.json``: ``{"first_write", "last_write", "lines",
  "max_behind_s"}`` (``time.time()`` values; ``max_behind_s`` is how late the writer ever
  ran behind its schedule).

Each line starts with ``t=<time.time() of the write>`` like tests/bench/flood.py, so
receivers (tests/bench/log_client.py) can tell the write-to-receipt latency.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

from app.builders.fake import FAKE_IMAGE_ID
from app.engine.context import Adapters
from app.errors import BuildError
from app.queue.worker import run_until_signalled
from app.runtime.fake import FakeRuntime
from app.settings import Settings
from app.sources.fake import FakeGitClient
from app.types import BuildSpec, BuildType, CancelToken, LogFn
from tests.bench.flood import LINE_WIDTH
from tests.support.fake_worker import DEFAULT_SOURCE

RELEASE_TIMEOUT = 180.0  # seconds a build waits for ``go``
POLL = 0.005
TICK = 0.005  # seconds: the writer wakes at most every 5 ms (a build's output comes in
# chunks too); each line's time is still taken as it is written


def paced_line(number: int) -> str:
    """Line ``number`` as FloodBuilder writes it: ``t=<now> line NNNNNN xxx...``."""
    head = f"t={time.time():.6f} line {number:06d} "
    return head + "x" * (LINE_WIDTH - len(head))


class PacedFloodBuilder:
    """Waits for ``control/go``, then writes its lines on a fixed schedule (not a burst)."""

    def __init__(self, control: Path) -> None:
        self.control = control

    def build(self, spec: BuildSpec, *, log: LogFn, cancel: CancelToken) -> str:
        started, go = self.control / "started", self.control / "go"
        started.write_text(spec.tag)
        deadline = time.monotonic() + RELEASE_TIMEOUT
        while not go.exists():
            if time.monotonic() > deadline:
                raise BuildError(f"the benchmark never released the build of {spec.tag}")
            cancel.check()
            time.sleep(POLL)
        params = json.loads(go.read_text())
        go.unlink()
        started.unlink()
        lines, rate = int(params["lines"]), float(params["rate"])
        report = self.write(log, cancel, lines=lines, rate=rate)
        tmp = self.control / "done.json.tmp"
        tmp.write_text(json.dumps(report))
        tmp.rename(self.control / "done.json")
        return FAKE_IMAGE_ID

    @staticmethod
    def write(log: LogFn, cancel: CancelToken, *, lines: int, rate: float) -> dict[str, float]:
        """Line n (1-based) is due ``(n - 1) / rate`` s after the start; late lines catch up.

        The writer sleeps at least ``TICK`` between bursts: at 5,000 lines/s, waking for
        each line would spend the writing process's time (the server's, in embedded mode)
        on thousands of wake-ups a second, which no real build causes."""
        start = time.monotonic()
        first_write = time.time()
        written, max_behind = 0, 0.0
        while written < lines:
            now = time.monotonic()
            due = min(lines, int((now - start) * rate) + 1)
            max_behind = max(max_behind, now - (start + written / rate))
            while written < due:
                written += 1
                log(paced_line(written))
            cancel.check()
            if written < lines:  # what is due in the next TICK goes out together
                time.sleep(max(TICK, start + written / rate - time.monotonic()))
        return {
            "first_write": first_write,
            "last_write": time.time(),
            "lines": lines,
            "max_behind_s": max_behind,
        }


def adapters(control: Path) -> Adapters:
    builder = PacedFloodBuilder(control)
    return Adapters(
        git=FakeGitClient(DEFAULT_SOURCE),
        builders={build_type: builder for build_type in BuildType},
        runtime=FakeRuntime(),
    )


def serve(settings: Settings, made: Adapters, port: int) -> int:
    """``slipway serve`` in embedded mode with ``made`` for the in-process worker."""
    import uvicorn

    from app.db.migrate import upgrade
    from app.main import create_app, server_config

    upgrade(settings.effective_database_url)
    settings = settings.model_copy(update={"host": "127.0.0.1", "port": port})
    app = create_app(settings, adapters=lambda _: made)
    uvicorn.Server(server_config(app, settings, host="127.0.0.1", port=port)).run()
    return 0


def main() -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings()
    control = os.environ.get("SLIPWAY_BENCH_CONTROL")
    if sys.argv[1:2] == ["serve"] and control and settings.embedded:
        return serve(settings, adapters(Path(control)), int(sys.argv[2]))
    if settings.embedded or not control:
        sys.stderr.write("needs SLIPWAY_REDIS_URL and SLIPWAY_BENCH_CONTROL\n")
        return 2
    made = adapters(Path(control))
    run_until_signalled(settings, lambda _: made)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
