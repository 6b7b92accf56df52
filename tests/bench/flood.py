"""A builder that floods the deployment log as fast as it can, once released."""

from __future__ import annotations

import threading
import time

from app.builders.fake import FAKE_IMAGE_ID
from app.errors import BuildError
from app.types import BuildSpec, CancelToken, LogFn

LINE_WIDTH = 80


class FloodBuilder:
    """Waits for ``go``, then logs ``lines`` lines of ``LINE_WIDTH`` chars.

    Each line starts with ``t=<time.time() of the write>`` so a receiver can tell the
    latency; ``started`` is set when the build begins, ``first_write``/``last_write``
    record the writer's own span.
    """

    def __init__(self, lines: int, *, release_timeout: float = 120) -> None:
        self.lines = lines
        self.release_timeout = release_timeout
        self.started = threading.Event()
        self.go = threading.Event()
        self.first_write = 0.0
        self.last_write = 0.0

    def build(self, spec: BuildSpec, *, log: LogFn, cancel: CancelToken) -> str:
        self.started.set()
        if not self.go.wait(self.release_timeout):
            raise BuildError(f"the benchmark never released the build of {spec.tag}")
        self.first_write = time.time()
        for number in range(1, self.lines + 1):
            head = f"t={time.time():.6f} line {number:06d} "
            log(head + "x" * (LINE_WIDTH - len(head)))
        self.last_write = time.time()
        cancel.check()
        return FAKE_IMAGE_ID

    @property
    def rate(self) -> float:
        """Lines written per second."""
        return self.lines / max(1e-9, self.last_write - self.first_write)
