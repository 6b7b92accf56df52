"""The real ``ImagePusher``: push a local image to a registry through the Docker engine.

The image is tagged ``<repository>:<tag>`` on the engine and pushed with the registry's
credentials in the ``X-Registry-Auth`` header of that one request (``auth_config``; an
empty one for a registry without credentials): nothing is written to or read from a
docker config file (no ``docker login`` state), and concurrent deployments never see
each other's credentials.

The engine streams the push as JSON events. :class:`PushProgress` turns them into log
lines per layer, throttled: a line when a layer's state changes (Preparing, Waiting,
Pushing, Pushed, Layer already exists, Mounted from …), while it is Pushing at most one
line per ``interval`` with its percentage, and of the engine's own retries of a layer
("Retrying in 10 seconds", counting down each second) the first line of each attempt.
The pushed manifest's digest comes from the stream's end (``aux.Digest``, or the
``<tag>: digest: sha256:… size: N`` status).

The engine reports a registry's errors as text inside the stream; :func:`push_error`
sorts them: refused credentials (``unauthorized``, ``denied``, 401/403) are a
RegistryAuthError, never retried; an unreachable or failing registry (connection refused
or reset, timeouts, 5xx) a RegistryNetworkError, retried by the step like a fetch; the
rest a RegistryError. Messages name the registry and never hold the password.

A cancel shuts the push's HTTP connection down (:class:`ResponseInterrupter`); the engine
stops the push when its client goes away.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import requests
import urllib3.exceptions
from docker.errors import APIError, DockerException, ImageNotFound

from app.errors import RegistryAuthError, RegistryError, RegistryNetworkError
from app.http_streams import ResponseInterrupter, per_call_view
from app.masking import Masker
from app.registry.base import PushedImage
from app.types import CancelToken, LogFn, LogStream, RegistryTarget

PROGRESS_INTERVAL_S = 2.0  # a Pushing layer's line at most this often
_TRANSPORT_ERRORS = (
    DockerException,
    requests.exceptions.RequestException,
    urllib3.exceptions.HTTPError,
    OSError,
)
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_DIGEST_STATUS = re.compile(r"digest: (sha256:[0-9a-f]{64}) size: \d+")
# Checked first: retrying refused credentials cannot help (and may lock the account).
_AUTH = re.compile(
    r"unauthorized|authentication required|no basic auth credentials|denied|forbidden|"
    r"incorrect username or password|\b40[13]\b",
    re.IGNORECASE,
)
_NETWORK = re.compile(
    r"connection refused|connection reset|broken pipe|i/o timeout|timeout|timed out|"
    r"no such host|network is unreachable|server misbehaving|unexpected EOF|dial tcp|"
    r"\b50[0-4]\b|internal server error|bad gateway|service unavailable|gateway timeout|"
    r"toomanyrequests|too many requests|\b429\b",
    re.IGNORECASE,
)
_PLAIN_HTTP = re.compile(r"server gave HTTP response to HTTPS client", re.IGNORECASE)


class PushRefused(Exception):
    """An error the engine reported inside the push's progress stream."""


class PushProgress:
    """The engine's push events → throttled log lines per layer, and the pushed digest."""

    def __init__(
        self,
        log: LogFn,
        *,
        mask: Callable[[str], str] = str,
        interval: float = PROGRESS_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self._mask = mask
        self._interval = interval
        self._clock = clock
        self._logged: dict[str, tuple[str, str, float]] = {}  # layer → (state, line, at)
        self._retry_left: dict[str, int | None] = {}  # layer → seconds its countdown showed
        self.states: dict[str, str] = {}  # layer → its last status
        self.digest: str | None = None

    def feed(self, chunk: Mapping[str, Any]) -> None:
        """One event of the stream; raises :class:`PushRefused` on the engine's error."""
        if "error" in chunk or "errorDetail" in chunk:
            detail = chunk.get("errorDetail")
            message = detail.get("message") if isinstance(detail, Mapping) else None
            message = message or chunk.get("error")
            raise PushRefused(str(message or "the push failed"))
        aux = chunk.get("aux")
        if isinstance(aux, Mapping) and isinstance(aux.get("Digest"), str):
            self.digest = str(aux["Digest"])
        status = str(chunk.get("status") or "").strip()
        if not status:
            return
        layer = str(chunk.get("id") or "")
        if not layer:
            found = _DIGEST_STATUS.search(status)
            if found:
                self.digest = self.digest or found.group(1)
            else:
                self._log(self._mask(status))
            return
        self.states[layer] = status
        self._layer(layer, status, chunk.get("progressDetail"))

    def _layer(self, layer: str, status: str, detail: object) -> None:
        state = _state(status)
        line = f"{layer}: {_describe(state, status, detail)}"
        now = self._clock()
        last = self._logged.get(layer)
        if state == "Retrying":  # the engine's own retry counts down once a second
            left, before = _seconds(status), self._retry_left.get(layer)
            self._retry_left[layer] = left
            ticking = last is not None and last[0] == state
            if ticking and left is not None and before is not None and left < before:
                return  # the same countdown: only a new attempt's first line is logged
        elif last is not None:
            last_state, last_line, at = last
            if state == last_state and (line == last_line or now - at < self._interval):
                return
        self._logged[layer] = (state, line, now)
        self._log(self._mask(line))

    def summary(self) -> str:
        """``3 layers: 1 pushed, 2 already in the registry``."""
        pushed = sum(1 for s in self.states.values() if s == "Pushed")
        existing = sum(1 for s in self.states.values() if _already_there(s))
        return f"{len(self.states)} layers: {pushed} pushed, {existing} already in the registry"


def _already_there(status: str) -> bool:
    return status == "Layer already exists" or status.startswith("Mounted from")


def _state(status: str) -> str:
    """What a layer is doing, without its counters ("Retrying in 5 seconds" → Retrying)."""
    if status.startswith("Pushing"):
        return "Pushing"
    if status.startswith("Retrying"):
        return "Retrying"
    return status


def _seconds(status: str) -> int | None:
    found = re.search(r"(\d+) second", status)
    return int(found.group(1)) if found else None


def _describe(state: str, status: str, detail: object) -> str:
    if state != "Pushing" or not isinstance(detail, Mapping):
        return status
    current, total = detail.get("current"), detail.get("total")
    if not isinstance(current, int):
        return status
    if isinstance(total, int) and total > 0:
        pct = min(100, current * 100 // total)
        return f"Pushing {pct}% ({_mb(current)} of {_mb(total)})"
    return f"Pushing {_mb(current)}"


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


class DockerPusher:
    """:class:`~app.registry.base.ImagePusher` over the docker SDK's low-level API."""

    def __init__(self, client: Any, *, interval: float = PROGRESS_INTERVAL_S) -> None:
        """``client`` is a ``docker.DockerClient`` or a ``docker.APIClient``."""
        self._api: Any = getattr(client, "api", client)
        self._interval = interval

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
        if not repository.startswith(f"{target.host}/"):  # the credentials go to that host
            raise RegistryError(f"{repository} is not a repository of registry {target.host}")
        mask = Masker([target.auth.password] if target.auth else [])
        ref = f"{repository}:{tag}"
        cancel.check()
        self._tag(image, repository, tag, mask)
        progress = PushProgress(log, mask=mask, interval=self._interval)
        try:
            self._stream(repository, tag, target, progress, cancel)
        except PushRefused as exc:
            cancel.check()
            raise push_error(str(exc), target=target, ref=ref, mask=mask) from None
        except APIError as exc:
            cancel.check()
            reason = str(exc.explanation or exc)
            raise push_error(reason, target=target, ref=ref, mask=mask) from None
        except _TRANSPORT_ERRORS as exc:
            cancel.check()
            raise RegistryNetworkError(
                f"pushing {ref}: lost the Docker engine's push stream: {mask(str(exc))}"
            ) from None
        cancel.check()
        digest = progress.digest
        if digest is None or not _DIGEST.match(digest):
            raise RegistryError(f"the engine pushed {ref} but reported no digest for it")
        log(f"Pushed {ref} ({digest}); {progress.summary()}", stream=LogStream.SYSTEM)
        return PushedImage(repository=repository, tag=tag, digest=digest)

    def _tag(self, image: str, repository: str, tag: str, mask: Masker) -> None:
        try:
            self._api.tag(image, repository, tag, force=True)
        except ImageNotFound as exc:
            raise RegistryError(f"cannot push {image}: the engine has no such image") from exc
        except APIError as exc:
            reason = mask(str(exc.explanation or exc))
            raise RegistryError(f"cannot tag {image} as {repository}:{tag}: {reason}") from exc
        except _TRANSPORT_ERRORS as exc:
            raise RegistryNetworkError(
                f"cannot tag {image}: lost the Docker engine: {mask(str(exc))}"
            ) from exc

    def _stream(
        self,
        repository: str,
        tag: str,
        target: RegistryTarget,
        progress: PushProgress,
        cancel: CancelToken,
    ) -> None:
        view = per_call_view(self._api)  # its own hooks: the catcher sees this push only
        catcher = ResponseInterrupter(path_suffix="/push")
        view.hooks["response"] = [*view.hooks.get("response", []), catcher.catch]
        auth = target.auth
        # {} rather than None for a registry without credentials: None would make the SDK
        # read ~/.docker/config.json and send whatever login it holds for that host.
        auth_config: dict[str, str] = (
            {"username": auth.username, "password": auth.password, "serveraddress": target.host}
            if auth is not None
            else {}
        )
        try:
            chunks: Iterable[Mapping[str, Any]] = view.push(
                repository, tag=tag, stream=True, decode=True, auth_config=auth_config
            )
            cancel.on_cancel(catcher.interrupt)
            for chunk in chunks:
                cancel.check()
                progress.feed(chunk)
        finally:
            catcher.disarm()


def push_error(reason: str, *, target: RegistryTarget, ref: str, mask: Masker) -> RegistryError:
    """The engine's push error as a message that says who refused what (never a password)."""
    reason = mask(reason)
    registry = f"registry {target.name!r} ({target.host})"
    if _AUTH.search(reason):
        if target.auth is not None:
            return RegistryAuthError(
                f"{registry} refused the credentials of user {target.auth.username!r} "
                f"pushing {ref}: {reason}"
            )
        return RegistryAuthError(
            f"{registry} requires credentials to push {ref} (set the registry's username and "
            f"password): {reason}"
        )
    if _PLAIN_HTTP.search(reason):
        return RegistryError(
            f"{registry} serves plain http but the engine spoke https pushing {ref}: list "
            f"{target.host} in the engine's insecure-registries (loopback ones are by default)"
        )
    if _NETWORK.search(reason):
        return RegistryNetworkError(f"cannot reach {registry} to push {ref}: {reason}")
    return RegistryError(f"pushing {ref} to {registry} failed: {reason}")
