"""Interrupting a streaming Engine API response (a build, a pull, a push) when a deployment is
cancelled; a per-call view of the API client for its hooks."""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

import requests

logger = logging.getLogger(__name__)


class ResponseInterrupter:
    """Shuts a streaming response's socket down, so a read blocked on a long ``RUN`` or a
    stalled registry sees end-of-stream.

    The response is given at once or caught by :meth:`catch`, a requests response hook
    (only responses whose path ends with ``path_suffix``). Once disarmed it does nothing:
    the pooled connection may by then serve another request.
    """

    def __init__(
        self, response: requests.Response | None = None, *, path_suffix: str | None = None
    ) -> None:
        self._response = response
        self._path_suffix = path_suffix
        self._armed = True
        self._lock = threading.Lock()

    def catch(self, response: requests.Response, *_args: object, **_kwargs: object) -> None:
        path = response.request.path_url.split("?", 1)[0]
        if self._path_suffix is None or path.endswith(self._path_suffix):
            with self._lock:
                if self._armed:
                    self._response = response

    def interrupt(self) -> None:
        with self._lock:
            if not self._armed or self._response is None:
                return
            sock = getattr(getattr(self._response.raw, "connection", None), "sock", None)
            if isinstance(sock, socket.socket):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    logger.debug("shutting down a streaming connection failed", exc_info=True)

    def disarm(self) -> None:
        with self._lock:
            self._armed = False
            if self._response is not None:
                self._response.close()
            self._response = None


def per_call_view(api: Any) -> Any:
    """A view of a docker ``APIClient`` for one call: it shares the client's connections
    but has its own hooks (and may have its own auth configs), so a response hook or
    credentials set on it never reach another thread's requests."""
    view = object.__new__(type(api))
    view.__dict__.update(api.__dict__)
    view.hooks = {event: list(hooks) for event, hooks in api.hooks.items()}
    return view
