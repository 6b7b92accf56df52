"""Builds an image from a Dockerfile through the Engine API, streaming every line.

Cancellation shuts the build's HTTP connection down; the daemon then stops the
build (and the container of a running ``RUN`` step) because its client went away.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import docker.errors
import requests
import urllib3.exceptions

from app.builders.buildkit import BuildKitCli
from app.builders.cache import BuildSteps, CacheLedger
from app.builders.limits import allow_engine_limits, classic_limits, describe_limits
from app.errors import BadInput, BuildError
from app.http_streams import ResponseInterrupter
from app.sources.validate import validate_env_key, validate_relative_path
from app.types import BuildSpec, CancelToken, LogFn, LogStream

logger = logging.getLogger(__name__)

_TRANSPORT_ERRORS = (
    docker.errors.DockerException,
    requests.exceptions.RequestException,
    urllib3.exceptions.HTTPError,
    OSError,
)


class DockerfileBuilder:
    """Builder for ``BuildType.DOCKERFILE``: ``docker build`` with the classic builder."""

    def __init__(
        self, client: Any, *, docker_host: str | None = None, docker_cli: str = "docker"
    ) -> None:
        """``client`` is a ``docker.DockerClient`` or a ``docker.APIClient``; builds with
        secrets go through the ``docker_cli`` (BuildKit) to ``docker_host``, the same engine."""
        self._api: Any = getattr(client, "api", client)
        self._buildkit = BuildKitCli(docker_host=docker_host, cli=docker_cli)
        _install_response_capture(self._api)
        allow_engine_limits()

    def build(self, spec: BuildSpec, *, log: LogFn, cancel: CancelToken) -> str:
        """Build ``spec.tag`` from ``spec.dockerfile`` in ``spec.context_path``; return its id."""
        context_dir, dockerfile = resolve_build_paths(spec)
        return self.build_context(
            context_dir=context_dir, dockerfile=dockerfile, spec=spec, log=log, cancel=cancel
        )

    def build_context(
        self,
        *,
        context_dir: Path,
        dockerfile: Path,
        spec: BuildSpec,
        log: LogFn,
        cancel: CancelToken,
    ) -> str:
        """Build from already-checked absolute paths (``dockerfile`` may lie outside)."""
        build_args = spec.proxy | checked_build_args(spec)
        target = checked_target(spec.target)
        cancel.check()
        stage = f" (stage {target})" if target else ""
        log(f"Building {spec.tag} from {dockerfile.name}{stage}", stream=LogStream.SYSTEM)
        if spec.secrets:  # the classic builder cannot mount secrets (builders/buildkit.py)
            return self._buildkit.build(
                context_dir=context_dir,
                dockerfile=dockerfile,
                spec=spec,
                build_args=build_args,
                target=target,
                log=log,
                cancel=cancel,
            )
        limits = describe_limits(spec.memory_limit, spec.cpu_limit)
        if limits:
            log(f"Build limits: {limits} for each step", stream=LogStream.SYSTEM)
        seen, ok = BuildSteps(log), False
        ledger = CacheLedger(spec.cache_ledger) if spec.cache_ledger is not None else None
        _captured.response = None
        try:
            chunks = self._api.build(
                path=str(context_dir),
                dockerfile=str(dockerfile),
                tag=spec.tag,
                buildargs=build_args,
                labels=dict(spec.labels),
                rm=True,
                forcerm=True,
                decode=True,
                nocache=spec.no_cache,
                pull=spec.no_cache,  # cleanCache: base images fresh too
                target=target,
                # the application's own cache only (builders/cache.py)
                cache_from=ledger.sources() if ledger is not None and not spec.no_cache else None,
                container_limits=classic_limits(spec.memory_limit, spec.cpu_limit),
                timeout=None,
            )
            response = _take_captured_response()
            image_id = self._consume(chunks, response, spec=spec, log=seen, cancel=cancel)
            ok = True
            return image_id
        except _TRANSPORT_ERRORS as exc:
            cancel.check()
            raise BuildError(f"docker build of {spec.tag} failed: {_explain(exc)}") from exc
        finally:
            if ledger is not None:  # failed builds leave images too
                ledger.record(seen, ok=ok)

    def _consume(
        self,
        chunks: Iterable[dict[str, Any]],
        response: requests.Response | None,
        *,
        spec: BuildSpec,
        log: LogFn,
        cancel: CancelToken,
    ) -> str:
        guard = ResponseInterrupter(response)
        cancel.on_cancel(guard.interrupt)
        try:
            image_id = follow_build(chunks, log=log, check=cancel.check)
        finally:
            guard.disarm()
        cancel.check()
        if image_id is None:
            image_id = str(self._api.inspect_image(spec.tag)["Id"])
        log(f"Built {spec.tag} ({image_id})", stream=LogStream.SYSTEM)
        return image_id


def resolve_context_dir(spec: BuildSpec) -> Path:
    """The build context directory of ``spec``, checked to be inside the checkout."""
    root = spec.source_dir.resolve()
    context_rel = _relative(spec.context_path, "context path")
    context_dir = (root / context_rel).resolve()
    if not context_dir.is_relative_to(root):
        raise BuildError(f"context path escapes the repository: {spec.context_path!r}")
    if not context_dir.is_dir():
        raise BuildError(f"build context not found at {context_rel}")
    return context_dir


def resolve_build_paths(spec: BuildSpec) -> tuple[Path, Path]:
    """The context directory and Dockerfile of ``spec``, both checked to be inside the checkout.

    Problems surface as :class:`BuildError` (a failed deployment), symlinks included.
    """
    root = spec.source_dir.resolve()
    dockerfile_rel = _relative(spec.dockerfile, "Dockerfile path")
    dockerfile = (root / dockerfile_rel).resolve()
    if not dockerfile.is_relative_to(root):
        raise BuildError(f"Dockerfile path escapes the repository: {spec.dockerfile!r}")
    if not dockerfile.is_file():
        raise BuildError(f"Dockerfile not found at {dockerfile_rel}")
    return resolve_context_dir(spec), dockerfile


def _relative(path: str, what: str) -> str:
    try:
        return validate_relative_path(path, what)
    except BadInput as exc:
        raise BuildError(str(exc)) from exc


def follow_build(
    chunks: Iterable[Mapping[str, Any]], *, log: LogFn, check: Callable[[], None]
) -> str | None:
    """Log each build message as it arrives; return the image id the daemon reported."""
    lines = LineBuffer(log)
    image_id: str | None = None
    for chunk in chunks:
        check()
        if "error" in chunk or "errorDetail" in chunk:
            lines.flush()
            detail = chunk.get("errorDetail") or {}
            raise BuildError(f"docker build failed: {chunk.get('error') or detail.get('message')}")
        if "stream" in chunk:
            lines.feed(str(chunk["stream"]))
        elif "status" in chunk:
            lines.flush()
            log(_status_line(chunk))
        aux = chunk.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            image_id = str(aux["ID"])
    lines.flush()
    return image_id


class LineBuffer:
    """Turns arbitrary text chunks into whole, non-empty lines sent to ``log``."""

    def __init__(self, log: LogFn) -> None:
        self._log = log
        self._partial = ""

    def feed(self, text: str) -> None:
        *complete, self._partial = (self._partial + text).split("\n")
        for line in complete:
            self._emit(line)

    def flush(self) -> None:
        partial, self._partial = self._partial, ""
        self._emit(partial)

    def _emit(self, line: str) -> None:
        line = line.rstrip()
        if line:
            # a \r-redrawn progress line: keep what the terminal would finally show
            self._log(line.rsplit("\r", 1)[-1])


def checked_build_args(spec: BuildSpec) -> dict[str, str]:
    """``spec.build_args``, each name checked to be a valid variable name."""
    try:
        return {validate_env_key(key): value for key, value in spec.build_args.items()}
    except BadInput as exc:
        raise BuildError(f"invalid build argument: {exc}") from exc


STAGE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$")


def checked_target(target: str | None) -> str | None:
    """The target stage (``--target``), checked to be a stage name Docker accepts."""
    if not target:
        return None
    if not STAGE.fullmatch(target):
        raise BuildError(f"build stage {target[:60]!r} is not a valid stage name")
    return target


def _status_line(chunk: Mapping[str, Any]) -> str:
    parts = [f"{chunk['id']}:" if chunk.get("id") else "", str(chunk["status"])]
    if chunk.get("progress"):
        parts.append(str(chunk["progress"]))
    return " ".join(part for part in parts if part)


def _explain(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc) or exc.__class__.__name__


# -- interrupting a streaming build --------------------------------------------------------
# APIClient.build hides its HTTP response inside a generator; a response hook on the
# client's requests session hands it to the thread that started the build.

_captured = threading.local()
_HOOK_MARK = "_slipway_build_capture"


def _capture(response: requests.Response, *_args: object, **_kwargs: object) -> None:
    if response.request.path_url.split("?", 1)[0].endswith("/build"):
        _captured.response = response


def _install_response_capture(api: Any) -> None:
    hooks = getattr(api, "hooks", None)
    if isinstance(hooks, dict) and not getattr(api, _HOOK_MARK, False):
        hooks.setdefault("response", []).append(_capture)
        setattr(api, _HOOK_MARK, True)


def _take_captured_response() -> requests.Response | None:
    response: requests.Response | None = getattr(_captured, "response", None)
    _captured.response = None
    return response
