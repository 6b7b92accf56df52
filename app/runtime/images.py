"""Pull an application's image from its registry and pin exactly what was pulled.

A tag can move; a deployment must record what it ran. After the pull the reference
becomes ``repo@sha256:...`` (the image's RepoDigest for that repository). An image that
exists only on this engine (built or loaded here, never pushed) has no registry digest:
it is released by its image ID, and nothing is pulled.

Credentials reach the engine only in the ``X-Registry-Auth`` header of the one request
that needs them, through a per-call view of the shared API client (:func:`authed_api`):
nothing is written to a docker config file, and concurrent deployments never see each
other's credentials.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

import requests
import urllib3.exceptions
from docker.auth import INDEX_NAME, AuthConfig, resolve_repository_name
from docker.errors import APIError, DockerException, NotFound
from docker.utils import parse_repository_tag

from app.errors import SourceError, SourceNetworkError
from app.http_streams import ResponseInterrupter, per_call_view
from app.masking import Masker
from app.runtime.base import PulledImage
from app.types import CancelToken, LogFn, LogStream, RegistryAuth

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 1.0  # "Downloading [==>  ]" lines: at most one a second, like git's
_TRANSPORT_ERRORS = (
    DockerException,
    requests.exceptions.RequestException,
    urllib3.exceptions.HTTPError,
    OSError,
)
# The engine's words for a registry it could not reach, as opposed to one that said no.
_NETWORK = re.compile(
    r"connection refused|i/o timeout|no such host|timeout exceeded|TLS handshake timeout|"
    r"connection reset|network is unreachable|server misbehaving|unexpected EOF|"
    r"Client\.Timeout|dial tcp",
    re.IGNORECASE,
)
_NOT_FOUND = re.compile(r"not found|manifest unknown|does not exist|name unknown", re.IGNORECASE)
_AUTH = re.compile(
    r"unauthorized|authentication required|no basic auth credentials|denied|"
    r"incorrect username or password|forbidden",
    re.IGNORECASE,
)


def canonical_repo(name: str) -> str:
    """``busybox`` -> ``docker.io/library/busybox``: comparable repository names."""
    registry, path = resolve_repository_name(name)
    if registry == INDEX_NAME and "/" not in path:
        path = f"library/{path}"
    return f"{registry}/{path}"


def registry_host(image: str) -> str:
    """The registry an image reference names ("docker.io" when it names none)."""
    return str(resolve_repository_name(parse_repository_tag(image)[0])[0])


def authed_api(api: Any, auth: RegistryAuth | None, image: str) -> Any:
    """``api``, or a per-call view of it that sends ``auth`` for ``image``'s registry.

    The view shares the client's connections but has its own auth configs and hooks,
    so the SDK's ``create_service``/``update_service``/``pull`` put ``X-Registry-Auth``
    on its requests only, and never read or write ``~/.docker/config.json`` for them.
    """
    if auth is None or registry_host(image) != auth.registry:
        return api
    view = per_call_view(api)
    view._auth_configs = AuthConfig({})
    view._auth_configs.add_auth(
        auth.registry,
        {"username": auth.username, "password": auth.password, "serveraddress": auth.registry},
    )
    return view


def pull_image(
    api: Any, image: str, *, auth: RegistryAuth | None, log: LogFn, cancel: CancelToken
) -> PulledImage:
    """Pull ``image`` and return its immutable reference (see the module docstring)."""
    try:
        repo, tag = parse_repository_tag(image)
        canonical_repo(parse_repository_tag(repo)[0])
    except DockerException as exc:
        raise SourceError(f"dockerImage {image!r} is not an image reference: {exc}") from exc
    local = _local_only(api, image, repo)
    if local is not None:
        return local
    mask = Masker([auth.password] if auth else [])
    registry = registry_host(image)
    cancel.check()
    where = f" as {auth.username}" if auth and auth.registry == registry else ""
    log(f"Pulling {image} from {registry}{where}", stream=LogStream.SYSTEM)
    if auth is not None and auth.registry != registry:
        log(
            f"The registry credentials were given for {auth.registry}: not sent to {registry}",
            stream=LogStream.SYSTEM,
        )
    try:
        _pull(api, image, repo, tag, auth=auth, log=log, cancel=cancel, mask=mask)
    except _Refused as exc:
        raise _explain(str(exc), image=image, registry=registry, auth=auth, mask=mask) from None
    except APIError as exc:
        reason = str(exc.explanation or exc)
        raise _explain(reason, image=image, registry=registry, auth=auth, mask=mask) from exc
    except _TRANSPORT_ERRORS as exc:
        cancel.check()
        raise SourceNetworkError(
            f"pulling {image}: lost the Docker engine: {mask(str(exc))}"
        ) from exc
    cancel.check()
    return _pinned(api, image, repo, tag)


class _Refused(Exception):
    """An error the engine reported inside the pull's progress stream."""


def _pull(
    api: Any,
    image: str,
    repo: str,
    tag: str | None,
    *,
    auth: RegistryAuth | None,
    log: LogFn,
    cancel: CancelToken,
    mask: Masker,
) -> None:
    view = per_call_view(api)  # its own hooks: the catcher sees this pull's response only
    catcher = ResponseInterrupter(path_suffix="/images/create")
    view.hooks["response"] = [*view.hooks.get("response", []), catcher.catch]
    auth_config = None
    if auth is not None and auth.registry == registry_host(image):
        auth_config = {
            "username": auth.username,
            "password": auth.password,
            "serveraddress": auth.registry,
        }
    chunks = view.pull(repo, tag=tag or "latest", stream=True, decode=True, auth_config=auth_config)
    cancel.on_cancel(catcher.interrupt)
    try:
        _follow(chunks, log=log, cancel=cancel, mask=mask)
    finally:
        catcher.disarm()


def _follow(
    chunks: Iterable[Mapping[str, Any]], *, log: LogFn, cancel: CancelToken, mask: Masker
) -> None:
    """Log the pull's progress (download bars throttled); raise _Refused on its error."""
    last_progress = float("-inf")
    for chunk in chunks:
        cancel.check()
        if "error" in chunk or "errorDetail" in chunk:
            detail = chunk.get("errorDetail") or {}
            raise _Refused(str(chunk.get("error") or detail.get("message") or "pull failed"))
        if chunk.get("progress"):
            if time.monotonic() - last_progress < PROGRESS_INTERVAL_S:
                continue
            last_progress = time.monotonic()
        line = " ".join(
            str(part)
            for part in (
                f"{chunk['id']}:" if chunk.get("id") else "",
                chunk.get("status", ""),
                chunk.get("progress", ""),
            )
            if part
        )
        if line:
            log(mask(line))


def _explain(
    reason: str, *, image: str, registry: str, auth: RegistryAuth | None, mask: Masker
) -> SourceError:
    """The engine's pull error as a message that says who refused what (never a password)."""
    reason = mask(reason)
    if _NETWORK.search(reason):
        return SourceNetworkError(f"cannot reach registry {registry} to pull {image}: {reason}")
    if _NOT_FOUND.search(reason):
        return SourceError(f"image {image} not found in registry {registry}: {reason}")
    if _AUTH.search(reason):
        if auth is not None and auth.registry == registry:
            return SourceError(
                f"registry {registry} refused the credentials for user {auth.username!r} "
                f"pulling {image}: {reason}"
            )
        return SourceError(
            f"registry {registry} requires authentication to pull {image} "
            f"(set registryUsername and registryPassword): {reason}"
        )
    return SourceError(f"could not pull {image} from {registry}: {reason}")


def _local_only(api: Any, image: str, repo: str) -> PulledImage | None:
    """The image, when this engine has it and no registry digest for its repository."""
    try:
        attrs = api.inspect_image(image)
    except NotFound:
        return None
    except _TRANSPORT_ERRORS as exc:
        raise SourceNetworkError(f"cannot reach the Docker engine: {exc}") from exc
    if _repo_digest(attrs, repo) is not None:
        return None  # it came from a registry: pull, the tag may have moved
    image_id = str(attrs["Id"])
    return PulledImage(ref=image_id, image_id=image_id, digest=None)


def _pinned(api: Any, image: str, repo: str, tag: str | None) -> PulledImage:
    try:
        attrs = api.inspect_image(image)
    except _TRANSPORT_ERRORS as exc:
        raise SourceError(f"pulled {image}, but cannot inspect it: {exc}") from exc
    image_id = str(attrs["Id"])
    if tag is not None and tag.startswith("sha256:"):
        return PulledImage(ref=image, image_id=image_id, digest=tag)
    pinned = _repo_digest(attrs, repo)
    if pinned is None:
        return PulledImage(ref=image_id, image_id=image_id, digest=None)
    return PulledImage(ref=pinned, image_id=image_id, digest=pinned.split("@", 1)[1])


def _repo_digest(attrs: Mapping[str, Any], repo: str) -> str | None:
    """The ``repo@sha256:...`` entry of the image's RepoDigests for ``repo``, if any."""
    wanted = canonical_repo(parse_repository_tag(repo)[0])  # "name:tag" (of name:tag@sha256)
    for entry in attrs.get("RepoDigests") or []:
        name, _, digest = str(entry).partition("@")
        if digest and canonical_repo(name) == wanted:
            return str(entry)
    return None
