"""``slipway worker`` with fake adapters, for tests that need a worker process of its own.

    SLIPWAY_REDIS_URL=... SLIPWAY_DATABASE_URL=... SLIPWAY_DATA_DIR=... \\
        python -m tests.support.fake_worker

Runs exactly what ``slipway worker`` runs (:func:`app.queue.worker.run_worker`), with a
:class:`FakeGitClient` copying ``SLIPWAY_FAKE_SOURCE`` (default: tests/apps/static-ok),
the fake builder for every build type, a :class:`FakeRuntime` and a :class:`FakePusher`.
environment as for the real worker. ``SLIPWAY_FAKE_STEP_SECONDS`` makes each build take
that long (so tests can make deployments overlap). Stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from app.builders.fake import FakeBuilder
from app.engine.context import Adapters
from app.queue.worker import run_until_signalled
from app.registry.fake_push import FakePusher
from app.runtime.fake import FakeRuntime
from app.settings import Settings
from app.sources.fake import FakeGitClient
from app.types import BuildType

DEFAULT_SOURCE = Path(__file__).resolve().parents[1] / "apps" / "static-ok"
BUILD_LINES = 3


def fake_adapters(source: Path, step_seconds: float) -> Adapters:
    """One fake builder for every build type; the build sleeps ``step_seconds`` in all."""
    builder = FakeBuilder(lines=BUILD_LINES, delay_s=step_seconds / BUILD_LINES)
    return Adapters(
        git=FakeGitClient(source),
        builders={build_type: builder for build_type in BuildType},
        runtime=FakeRuntime(),
        pusher=FakePusher(),
    )


def main() -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings()
    if settings.embedded:
        sys.stderr.write("the fake worker needs SLIPWAY_REDIS_URL, as `slipway worker` does\n")
        return 2
    source = Path(os.environ.get("SLIPWAY_FAKE_SOURCE") or DEFAULT_SOURCE)
    step_seconds = float(os.environ.get("SLIPWAY_FAKE_STEP_SECONDS") or 0)
    adapters = fake_adapters(source, step_seconds)
    run_until_signalled(settings, lambda _: adapters)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
