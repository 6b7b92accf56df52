"""Child processes that a deployment's cancellation must end, with everything they forked."""

from __future__ import annotations

import os
import signal
import subprocess
from collections import deque
from collections.abc import Callable, Iterator
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


def run_streaming(
    command: list[str],
    *,
    log: Callable[[str], object],
    cancel: CancelToken,
    env: dict[str, str] | None = None,
    keep: int = 3,
) -> tuple[int, list[str]]:
    """Run ``command`` (no shell, in its own process group), pass each non-empty output
    line to ``log``, kill the group on cancel; return the exit code and the last ``keep``
    lines. OSError if it cannot start; Cancelled when cancelled."""
    proc = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True, env=env,
    )  # fmt: skip
    tail: deque[str] = deque(maxlen=keep)
    try:
        with killed_on_cancel(proc, cancel):
            for raw in proc.stdout or ():
                line = raw.decode("utf-8", "replace").rstrip()
                if line:
                    tail.append(line)
                    log(line)
            code = proc.wait()
    finally:
        if proc.stdout is not None:
            proc.stdout.close()
    cancel.check()
    return code, list(tail)
