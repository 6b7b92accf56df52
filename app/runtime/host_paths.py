"""Which host paths an application may bind-mount.

A bind mount hands the container a piece of the host. Mounting ``/``, the Docker
engine's socket, ``/proc`` or Slipway's data dir (``secret.key``, the database) gives
whatever runs in the container the host itself, whatever scope the key that asked for
it had. So, for every key and every deployment:

* a source must be absolute and normalised (no ``..``, no ``//``, no control characters);
* it is refused when it is, lies inside, or is a parent of a *protected* path: the
  engine's socket (``/var/run/docker.sock``, ``/run/docker.sock``, containerd's, the unix path of
  ``DOCKER_HOST`` / ``SLIPWAY_DOCKER_HOST``), ``/proc``, ``/sys``, ``/dev``, ``/etc``,
  ``/boot``, ``/root``, ``/var/lib/docker``, the data dir and the SQLite file; being a
  parent covers ``/`` and ``/var/run``. Both the path as written and its
  ``os.path.realpath`` on this host are checked, so a symlink to ``/`` is ``/``.

Beyond that, binding a host path is ADMIN work: a DEPLOY key may bind only under the
prefixes the operator lists in ``SLIPWAY_ALLOWED_BIND_PREFIXES`` (default none). The
same checks run again when a deployment starts (:meth:`HostPathPolicy.check_release`),
so a row written before these rules, or straight into the database, is refused there.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import BadInput, Forbidden, ReleaseError
from app.settings import Settings
from app.types import MountSpec

ENGINE_SOCKETS = (  # Docker's, and containerd's beneath it: either runs anything as root
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/containerd",
    "/var/run/containerd",
)
SYSTEM_PATHS = (
    "/proc",
    "/sys",
    "/dev",
    "/etc",
    "/boot",
    "/root",
    "/var/lib/docker",
    "/var/lib/containerd",
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
ADMIN_MARK = "admin"  # on a stored bind mount: an ADMIN key set it


class BindRefused(BadInput):
    """The path can never be bind-mounted, whoever asks."""


def normalised(source: str, field: str = "bind mount source") -> str:
    """``source`` if it is an absolute, normalised host path; BindRefused otherwise."""
    if not source.startswith("/"):
        raise BindRefused(f"{field} must be an absolute host path, got {source[:200]!r}")
    if _CONTROL.search(source) or ".." in source.split("/"):
        raise BindRefused(f"{field} must not contain '..' or control characters: {source[:200]!r}")
    clean = posixpath.normpath(source)
    return "/" + clean.lstrip("/")  # normpath keeps a leading "//"


def resolved(path: str) -> str:
    """``os.path.realpath`` on this host; a path it cannot follow is refused."""
    try:
        return os.path.realpath(path)
    except (OSError, RuntimeError) as exc:
        raise BindRefused(
            f"bind mount source {path} cannot be resolved on this host: {exc}"
        ) from exc


def _written_then_resolved(clean: str) -> Iterator[str]:
    """The path as written, then (only once that passed) as resolved, when it differs."""
    yield clean
    real = resolved(clean)
    if real != clean:
        yield real


def _related(path: str, protected: str) -> bool:
    """``path`` is ``protected``, lies inside it, or is one of its parents."""
    return path == protected or _inside(path, protected) or _inside(protected, path)


def _inside(path: str, parent: str) -> bool:
    return parent == "/" or path.startswith(parent.rstrip("/") + "/")


def _socket_paths(docker_host: str | None) -> list[str]:
    paths = list(ENGINE_SOCKETS)
    for value in (docker_host, os.environ.get("DOCKER_HOST")):
        if value and value.startswith("unix://"):
            paths.append(value.removeprefix("unix://"))
    return paths


def _sqlite_file(url: str) -> str | None:
    return url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else None


@dataclass(frozen=True)
class HostPathPolicy:
    protected: tuple[str, ...]
    allowed_prefixes: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> HostPathPolicy:
        """The protected paths of this host (as configured and as resolved)."""
        raw = [
            *_socket_paths(settings.docker_host),
            *SYSTEM_PATHS,
            str(Path(settings.data_dir).absolute()),
            _sqlite_file(settings.effective_database_url),
        ]
        protected = {p for path in raw if path for p in (path, os.path.realpath(path))}
        prefixes = tuple(
            os.path.realpath(normalised(p, "SLIPWAY_ALLOWED_BIND_PREFIXES entry"))
            for p in settings.bind_prefixes
        )
        return cls(protected=tuple(sorted(protected)), allowed_prefixes=prefixes)

    def refusal(self, source: str) -> str | None:
        """Why ``source`` may never be bound (None when it may, for someone)."""
        clean = normalised(source)
        for path in _written_then_resolved(clean):
            for protected in self.protected:
                if _related(path, protected):
                    what = "is" if path == protected else "contains or lies inside"
                    via = "" if path == clean else f" (it resolves to {path})"
                    return (
                        f"bind mount source {clean}{via} {what} {protected}, which gives the "
                        "container the host (engine socket, system or Slipway data)"
                    )
        return None

    def allowed_for_deploy(self, source: str) -> bool:
        """Inside an operator-configured prefix (as written and as resolved)."""
        clean = normalised(source)
        real = resolved(clean)
        return any(
            _inside(clean, p) and _inside(real, p) or clean == p == real
            for p in self.allowed_prefixes
        )

    def authorize(self, source: str, *, admin: bool) -> str:
        """The normalised source if this key may bind it: BindRefused for protected paths,
        Forbidden for a non-ADMIN key outside the allowed prefixes."""
        clean = normalised(source)
        reason = self.refusal(clean)
        if reason:
            raise BindRefused(reason)
        if not admin and not self.allowed_for_deploy(clean):
            where = (
                "under " + ", ".join(self.allowed_prefixes)
                if self.allowed_prefixes
                else "anywhere (SLIPWAY_ALLOWED_BIND_PREFIXES is empty)"
            )
            raise Forbidden(
                f"bind mount of host path {clean} needs an ADMIN key; a DEPLOY key may bind "
                f"only {where}. Named volumes need no ADMIN key."
            )
        return clean

    def check_release(self, mounts: Iterable[MountSpec], admin_binds: Iterable[str]) -> None:
        """At deploy time: every bind is still allowed; ReleaseError saying which is not."""
        approved = set(admin_binds)
        for mount in mounts:
            if mount.type == "volume":
                continue
            try:
                if mount.type != "bind":
                    raise BindRefused(f"mount type {mount.type!r} is not allowed")
                self.authorize(mount.source, admin=mount.source in approved)
            except BindRefused as exc:
                raise ReleaseError(f"refusing to deploy mount {mount.target}: {exc}") from exc
            except Forbidden as exc:
                raise ReleaseError(
                    f"refusing to deploy mount {mount.target}: host path {mount.source} was "
                    "not set by an ADMIN key and is outside SLIPWAY_ALLOWED_BIND_PREFIXES; an "
                    "ADMIN key must set the application's mounts again"
                ) from exc


def admin_binds(mounts: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """Sources of the stored binds an ADMIN key set (see ``ADMIN_MARK``)."""
    return frozenset(
        str(m["source"]) for m in mounts if m.get("type") == "bind" and m.get(ADMIN_MARK)
    )
