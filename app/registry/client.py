"""The real ``RegistryClient``: a registry's HTTP API (distribution API v2) over httpx.

``check`` answers in four steps, stopping at the first that fails, each in words a person
can act on: does ``GET /v2/`` answer (connection refused, no such host, TLS, a timeout)?
Is it a registry (the ``Docker-Distribution-API-Version`` header, or a Bearer challenge)?
Are the credentials accepted (Basic, or the Bearer token flow)? May the repository be
pushed to: a blob upload is started (``POST /v2/<repo>/blobs/uploads/``) and cancelled at
once (``DELETE`` of its Location), so nothing is written. ``delete`` removes a manifest by
digest, and with it every tag on it. No answer body is ever quoted, only statuses and the
distribution API's error codes, so the check cannot be used to read another service.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import httpx

from app.errors import RegistryAuthError, RegistryError, RegistryNetworkError
from app.registry.address import COMPONENT, REPOSITORY_MAX
from app.registry.base import RegistryCheckResult
from app.registry.session import Answer, RegistrySession
from app.types import RegistryTarget

log = logging.getLogger(__name__)

CHECK_REPOSITORY = "slipway-check"  # the name testRegistry checks push rights on
DEFAULT_TIMEOUT_S = 10.0
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,200}$")
_VERSION_HEADER = "Docker-Distribution-API-Version"


class HttpRegistryClient:
    """Every call opens its own connection and ends within a few times ``timeout``."""

    def __init__(
        self, *, timeout: float = DEFAULT_TIMEOUT_S, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.timeout = timeout
        self.transport = transport  # httpx.MockTransport in unit tests

    def _session(self, target: RegistryTarget) -> RegistrySession:
        return RegistrySession(target, timeout=self.timeout, transport=self.transport)

    def check(self, target: RegistryTarget, *, repository: str) -> RegistryCheckResult:
        steps = _Steps()
        try:
            repo = repository_path(target, repository)
            with self._session(target) as session:
                return _check(session, repo, steps)
        except RegistryNetworkError as exc:
            if steps.reachable is None:  # no answer to the first request
                steps.reachable = False
            return steps.result(str(exc))
        except RegistryAuthError as exc:  # the token server refused, or would be sent over http
            steps.credentials_accepted = False
            return steps.result(str(exc))
        except RegistryError as exc:
            return steps.result(str(exc))

    def delete(self, target: RegistryTarget, *, repository: str, digest: str) -> bool:
        repo = repository_path(target, repository)
        if not _DIGEST.match(digest):
            raise RegistryError(f"{digest[:80]!r} is not a manifest digest (sha256:...)")
        with self._session(target) as session:
            url = session.url(f"/v2/{repo}/manifests/{digest}")
            answer = session.send("DELETE", url, scope=f"repository:{repo}:delete")
        return _deleted(answer, session, f"{repo}@{digest}")


def repository_path(target: RegistryTarget, repository: str) -> str:
    """``repository`` without ``target.host/``, checked against the distribution grammar."""
    path = repository.removeprefix(f"{target.host}/")
    if len(path) > REPOSITORY_MAX or not all(COMPONENT.match(p) for p in path.split("/")):
        raise RegistryError(f"{repository[:100]!r} is not a repository name")
    return path


@dataclass
class _Steps:
    """How far ``check`` got (see ``RegistryCheckResult``)."""

    reachable: bool | None = None
    is_registry: bool | None = None
    credentials_accepted: bool | None = None
    push_allowed: bool | None = None

    def result(self, message: str, *, ok: bool = False) -> RegistryCheckResult:
        return RegistryCheckResult(
            ok=ok,
            message=message,
            reachable=self.reachable,
            is_registry=self.is_registry,
            credentials_accepted=self.credentials_accepted,
            push_allowed=self.push_allowed,
        )


def _check(session: RegistrySession, repo: str, steps: _Steps) -> RegistryCheckResult:
    ping = session.url("/v2/")
    first = session.send("GET", ping, anonymous=True)
    steps.reachable = True
    steps.is_registry = _is_registry(first)
    if not steps.is_registry:
        return steps.result(
            f"not a registry (no {_VERSION_HEADER} header at {ping}, HTTP {first.status})"
        )
    if first.status == 401:
        if session.target.auth is None:
            steps.credentials_accepted = False
            return steps.result(f"{session.host} requires credentials: set username and password")
        login = session.send("GET", ping)
        if login.status in (401, 403):
            steps.credentials_accepted = False
            return steps.result(
                f"credentials refused by {session.host} (user {session.username!r})"
            )
        if login.status != 200:
            return steps.result(
                f"{session.host} answered HTTP {login.status} to GET /v2/ after login"
            )
        steps.credentials_accepted = True
    elif first.status != 200:
        return steps.result(f"{session.host} answered HTTP {first.status} to GET /v2/")
    return _push_allowed(session, repo, steps, needs_login=first.status == 401)


def _is_registry(answer: Answer) -> bool:
    if _VERSION_HEADER in answer.headers:
        return True
    challenge = answer.headers.get("www-authenticate", "")
    return answer.status == 401 and challenge.lower().startswith("bearer ")


def _push_allowed(
    session: RegistrySession, repo: str, steps: _Steps, *, needs_login: bool
) -> RegistryCheckResult:
    uploads = session.url(f"/v2/{repo}/blobs/uploads/")
    scope = f"repository:{repo}:pull,push"
    answer = session.send("POST", uploads, scope=scope)
    who = f"user {session.username!r}" if session.username else "anonymous"
    if answer.status == 202:
        _cancel_upload(session, answer, scope)
        steps.push_allowed = True
        login = f"credentials of {who} accepted" if needs_login else "no login needed"
        return steps.result(
            f"{session.host} is a registry; {login}; push to {repo} allowed", ok=True
        )
    codes = _codes(answer)
    steps.push_allowed = False
    if answer.status == 401 and session.username is None:
        steps.credentials_accepted = False
        return steps.result(f"{session.host} requires credentials to push to {repo}{codes}")
    if answer.status in (401, 403):
        return steps.result(f"{who} may pull but not push to {repo} at {session.host}{codes}")
    if answer.status in (404, 405):
        return steps.result(
            f"{session.host} does not take pushes to {repo} (HTTP {answer.status}{codes})"
        )
    return steps.result(f"{session.host} answered HTTP {answer.status} to POST {uploads}{codes}")


def _cancel_upload(session: RegistrySession, answer: Answer, scope: str) -> None:
    """Nothing was written; the upload session is dropped (it would expire anyway)."""
    location = answer.headers.get("location")
    if not location:
        return
    url = session.url(location) if location.startswith("/") else location
    if not session.same_origin(url):  # credentials go to the registry's host only
        return
    try:
        session.send("DELETE", url, scope=scope)
    except RegistryNetworkError as exc:
        log.debug("cancelling the check's upload on %s failed: %s", session.host, exc)


def _deleted(answer: Answer, session: RegistrySession, what: str) -> bool:
    status, host = answer.status, session.host
    if status in (200, 202, 204):
        return True
    if status == 404:
        return False
    if status == 405:
        raise RegistryError(
            f"{host} has deletes disabled (HTTP 405 deleting {what}): enable them in the "
            "registry (distribution: storage.delete.enabled: true)"
        )
    if status == 401:
        if session.username is None:
            raise RegistryAuthError(f"{host} requires credentials to delete {what}")
        raise RegistryAuthError(f"credentials refused by {host} deleting {what}")
    if status == 403:
        raise RegistryAuthError(f"user {session.username!r} may not delete {what} at {host}")
    if status == 429 or status >= 500:
        raise RegistryNetworkError(f"{host} answered HTTP {status} deleting {what}")
    raise RegistryError(f"{host} answered HTTP {status} deleting {what}{_codes(answer)}")


def _codes(answer: Answer) -> str:
    codes = answer.error_codes()
    return f" ({', '.join(codes)})" if codes else ""


def registry_client(timeout: float = DEFAULT_TIMEOUT_S) -> HttpRegistryClient:
    """The client the API (testRegistry) and the engine (retention) use."""
    return HttpRegistryClient(timeout=timeout)
