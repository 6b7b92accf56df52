"""A stand-in for :class:`Builder`, for fast unit tests of the pipeline."""

from __future__ import annotations

import threading

from app.errors import BuildError
from app.types import BuildSpec, CancelToken, LogFn

FAKE_IMAGE_ID = "sha256:" + "fa4e" * 16


class FakeBuilder:
    """Logs ``lines`` lines and returns ``image_id``.

    ``fail`` raises :class:`BuildError` after the lines; ``block`` waits until the
    token is cancelled and raises :class:`Cancelled`. ``started`` is set once a
    build begins and ``builds`` records every spec, so tests can synchronise.
    """

    def __init__(
        self,
        *,
        lines: int = 3,
        image_id: str = FAKE_IMAGE_ID,
        fail: str | None = None,
        block: bool = False,
        delay_s: float = 0.0,
    ) -> None:
        self.lines = lines
        self.image_id = image_id
        self.fail = fail
        self.block = block
        self.delay_s = delay_s
        self.started = threading.Event()
        self.builds: list[BuildSpec] = []

    def build(self, spec: BuildSpec, *, log: LogFn, cancel: CancelToken) -> str:
        """Pretend to build ``spec.tag``."""
        self.builds.append(spec)
        self.started.set()
        for number in range(1, self.lines + 1):
            cancel.check()
            log(f"Step {number}/{self.lines} : fake build of {spec.tag}")
            if self.delay_s and cancel.wait(self.delay_s):
                break
        if self.block:
            while not cancel.wait(0.05):
                pass
        cancel.check()
        if self.fail is not None:
            raise BuildError(self.fail)
        return self.image_id
