"""An in-memory ``ImagePusher`` for fast unit and e2e tests of the pipeline (never of a push)."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field

from app.errors import Cancelled, RegistryAuthError, RegistryNetworkError
from app.registry.base import PushedImage
from app.types import CancelToken, LogFn, LogStream, RegistryAuth, RegistryTarget


@dataclass
class FakePusher:
    """Records each push and answers a digest made from ``repository:tag``.

    ``network_failures``: that many pushes fail first as network errors (the step retries);
    ``auth_error``: every push is refused with this message; ``block``: a push waits until
    cancelled. ``started`` is set once a push begins.
    """

    network_failures: int = 0
    auth_error: str | None = None
    block: bool = False
    pushes: list[tuple[str, str, RegistryAuth | None]] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)

    def push(
        self,
        image: str,
        *,
        target: RegistryTarget,
        repository: str,
        tag: str,
        log: LogFn,
        cancel: CancelToken,
    ) -> PushedImage:
        cancel.check()
        self.pushes.append((image, f"{repository}:{tag}", target.auth))
        self.started.set()
        if self.network_failures > 0:
            self.network_failures -= 1
            raise RegistryNetworkError(f"cannot reach registry {target.host}: connection refused")
        if self.auth_error is not None:
            raise RegistryAuthError(self.auth_error)
        if self.block:
            cancel.wait(60)
            raise Cancelled(cancel.reason)
        log("fake0layer0: Pushed")
        digest = "sha256:" + hashlib.sha256(f"{repository}:{tag}".encode()).hexdigest()
        log(f"Pushed {repository}:{tag} ({digest})", stream=LogStream.SYSTEM)
        return PushedImage(repository=repository, tag=tag, digest=digest)
