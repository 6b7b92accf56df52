"""The fake worker (:mod:`tests.support.fake_worker`) with a build that logs as much as asked.

    SLIPWAY_REDIS_URL=... SLIPWAY_DATABASE_URL=... SLIPWAY_DATA_DIR=... \\
    SLIPWAY_FAKE_BUILD_LINES=2000 SLIPWAY_FAKE_STEP_SECONDS=8 \\
        python -m tests.support.chatty_worker

Runs :func:`app.queue.worker.run_worker` like ``slipway worker``; every build logs
``SLIPWAY_FAKE_BUILD_LINES`` lines (default 3) spread over ``SLIPWAY_FAKE_STEP_SECONDS``
(default 0). Stops on SIGTERM or SIGINT.

``SLIPWAY_FAKE_FREEZE_IN_CLAIM=<path>``: once that file holds a deployment id, the next claim
of that deployment (with the application row and the build server's lock taken) deletes it
and SIGSTOPs this process, as a stall would (a VM or GC pause, a partition): its transaction
stays open, its locks held.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.builders.fake import FakeBuilder
from app.engine.context import Adapters
from app.queue.worker import run_until_signalled
from app.runtime.fake import FakeRuntime
from app.settings import Settings
from app.sources.fake import FakeGitClient
from app.types import BuildType
from tests.support.fake_worker import DEFAULT_SOURCE


def chatty_adapters(source: Path, *, lines: int, step_seconds: float) -> Adapters:
    """One fake builder for every build type: ``lines`` lines over ``step_seconds``."""
    builder = FakeBuilder(lines=lines, delay_s=step_seconds / lines)
    return Adapters(
        git=FakeGitClient(source),
        builders={build_type: builder for build_type in BuildType},
        runtime=FakeRuntime(),
    )


def _take(trigger: Path, deployment_id: str | None) -> bool:
    """True once: when ``trigger`` names ``deployment_id`` (it is then deleted)."""
    try:
        if deployment_id is None or trigger.read_text().strip() != deployment_id:
            return False
        trigger.unlink()
    except FileNotFoundError:
        return False
    return True


def freeze_in_claim(trigger: Path) -> None:
    """SIGSTOP this process inside the claim of the deployment whose id ``trigger`` holds."""
    from app.db.repos import deployments

    claiming = threading.local()
    real_claim, real_limit = deployments.claim, deployments.build_limit

    def claim(session: Session, *, deployment_id: str, **options: Any) -> Any:
        claiming.id = deployment_id
        return real_claim(session, deployment_id=deployment_id, **options)

    def build_limit(session: Session, build_server_id: str | None, default: int) -> int:
        if _take(trigger, getattr(claiming, "id", None)):
            os.kill(os.getpid(), signal.SIGSTOP)
            # This thread may run on briefly before the stop reaches it (and commit, and
            # release the locks): wait here until it does; after SIGCONT, carry on.
            time.sleep(0.5)
        return real_limit(session, build_server_id, default)

    deployments.claim = claim  # the engine calls deployments.claim(...)
    deployments.build_limit = build_limit  # called by claim() with its locks held


def main() -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings()
    if settings.embedded:
        sys.stderr.write("the fake worker needs SLIPWAY_REDIS_URL, as `slipway worker` does\n")
        return 2
    adapters = chatty_adapters(
        Path(os.environ.get("SLIPWAY_FAKE_SOURCE") or DEFAULT_SOURCE),
        lines=max(1, int(os.environ.get("SLIPWAY_FAKE_BUILD_LINES") or 3)),
        step_seconds=float(os.environ.get("SLIPWAY_FAKE_STEP_SECONDS") or 0),
    )
    if trigger := os.environ.get("SLIPWAY_FAKE_FREEZE_IN_CLAIM"):
        freeze_in_claim(Path(trigger))
    run_until_signalled(settings, lambda _: adapters)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
