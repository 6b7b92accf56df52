"""Child processes that a deployment's cancellation must end, with everything they forked."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from app.types import CancelToken


@contextmanager
def killed_on_cancel(proc: subprocess.Popen[Any], cancel: CancelToken) -> Iterator[None]:
    """Kill ``proc``'s process group on cancellation, and on leaving while it still runs.

    The child must lead its own group (``start_new_session=True``) so that helpers it
    forked (git's remote-https, a CLI's docker calls) end with it.
    """

    def kill() -> None:
        if proc.poll() is None:  # once reaped, its pid may be someone else's
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    cancel.on_cancel(kill)
    try:
        yield
    finally:
        kill()  # a no-op unless we are leaving on an exception
