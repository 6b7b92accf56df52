"""Plain types shared by every layer: enums, specs, log lines, cancellation."""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from app.errors import Cancelled


class ApplicationStatus(enum.StrEnum):
    IDLE = "IDLE"
    RUNNING = "RUNNING"
    DONE = "DONE"
    ERROR = "ERROR"


class ApplicationHealth(enum.StrEnum):
    """How a DONE application runs, as the runtime monitor last saw it (``app/monitor``)."""

    HEALTHY = "HEALTHY"
    UNHEALTHY = "UNHEALTHY"  # its health check keeps failing
    DOWN = "DOWN"  # a task exited, failed or was rejected outside a deployment
    UNKNOWN = "UNKNOWN"  # not watched yet (never DONE, or no engine watched it)


class DeploymentStatus(enum.StrEnum):
    QUEUED = "QUEUED"
    SCHEDULED = "SCHEDULED"
    RUNNING = "RUNNING"
    DONE = "DONE"
    ERROR = "ERROR"
    CANCELLED = "CANCELLED"

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({DeploymentStatus.DONE, DeploymentStatus.ERROR, DeploymentStatus.CANCELLED})


class SourceType(enum.StrEnum):
    GIT = "GIT"
    GITHUB = "GITHUB"
    GITLAB = "GITLAB"
    BITBUCKET = "BITBUCKET"
    GITEA = "GITEA"
    DOCKER = "DOCKER"
    DROP = "DROP"


GIT_SOURCES = frozenset(
    {SourceType.GIT, SourceType.GITHUB, SourceType.GITLAB, SourceType.BITBUCKET, SourceType.GITEA}
)


class BuildType(enum.StrEnum):
    NIXPACKS = "NIXPACKS"
    DOCKERFILE = "DOCKERFILE"
    HEROKU_BUILDPACKS = "HEROKU_BUILDPACKS"
    PAKETO_BUILDPACKS = "PAKETO_BUILDPACKS"
    RAILPACK = "RAILPACK"
    STATIC = "STATIC"


class DeploymentTrigger(enum.StrEnum):
    MANUAL = "MANUAL"
    PUSH = "PUSH"
    TAG = "TAG"
    PULL_REQUEST = "PULL_REQUEST"
    REBUILD = "REBUILD"
    DROP = "DROP"
    ROLLBACK = "ROLLBACK"
    SCHEDULE = "SCHEDULE"


class TriggerType(enum.StrEnum):
    """Which webhook pushes deploy: commits to the branch, or new tags."""

    PUSH = "PUSH"
    TAG = "TAG"


class LogStream(enum.StrEnum):
    STDOUT = "STDOUT"
    STDERR = "STDERR"
    SYSTEM = "SYSTEM"


class PublishMode(enum.StrEnum):
    INGRESS = "INGRESS"
    HOST = "HOST"


class Step(enum.StrEnum):
    FETCH_SOURCE = "FETCH_SOURCE"
    BUILD_IMAGE = "BUILD_IMAGE"
    PUSH_IMAGE = "PUSH_IMAGE"
    RELEASE = "RELEASE"
    VERIFY_HEALTH = "VERIFY_HEALTH"
    RESTORE = "RESTORE"  # after a failed VERIFY_HEALTH: the previous release put back
    ROLLBACK_POINT = "ROLLBACK_POINT"  # a ROLLBACK's first step, instead of fetch and build
    ROLLBACK_COPY = "ROLLBACK_COPY"  # after VERIFY_HEALTH: a copy to the rollback registry


class Scope(enum.StrEnum):
    READ = "READ"
    DEPLOY = "DEPLOY"
    ADMIN = "ADMIN"


class NotificationEvent(enum.StrEnum):
    """What a notification can be sent for (app/notify/)."""

    DEPLOY_SUCCEEDED = "DEPLOY_SUCCEEDED"
    DEPLOY_FAILED = "DEPLOY_FAILED"
    APP_DOWN = "APP_DOWN"
    HEALTH_CHECK_FAILED = "HEALTH_CHECK_FAILED"
    RECOVERED = "RECOVERED"


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of a deployment's log; ``seq`` is 1, 2, 3 ... per deployment."""

    seq: int
    timestamp: datetime
    stream: LogStream
    step: str | None
    message: str


@dataclass(frozen=True, slots=True)
class PortSpec:
    published_port: int
    target_port: int
    publish_mode: PublishMode = PublishMode.INGRESS
    protocol: str = "tcp"


@dataclass(frozen=True, slots=True)
class MountSpec:
    """A bind mount (``source`` is a host path) or a named volume."""

    type: str  # "bind" | "volume"
    source: str
    target: str
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class HealthCheckSpec:
    """A Docker health check run inside the container."""

    test: tuple[str, ...]
    interval_s: float = 5.0
    timeout_s: float = 3.0
    retries: int = 3
    start_period_s: float = 0.0


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """What the runtime makes true: one Swarm service."""

    name: str
    image: str
    env: dict[str, str] = field(default_factory=dict)
    ports: tuple[PortSpec, ...] = ()
    mounts: tuple[MountSpec, ...] = ()
    replicas: int = 1
    cpu_limit: float | None = None  # cores
    memory_limit: int | None = None  # bytes
    health_check: HealthCheckSpec | None = None
    health_check_path: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    command: tuple[str, ...] | None = None
    networks: tuple[str, ...] = ()
    endpoint_mode: str = "vip"
    # Sent to the engine per request (X-Registry-Auth) so every node can pull; never part
    # of the service's spec or labels, never shown, never compared.
    registry_auth: RegistryAuth | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class GitSourceSpec:
    """Where to clone from; credentials travel separately and are never persisted.

    ``tag`` (instead of ``branch``) and ``commit_sha`` (an exact commit on that ref, or
    anywhere the server lets us fetch it) narrow what is checked out. ``ssh_key`` is a
    private key in OpenSSH/PEM text; ``known_hosts`` pins the server's host keys (empty:
    trust on first use, and the caller records what was seen).
    """

    repository: str
    branch: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    provider: SourceType = SourceType.GIT
    tag: str | None = None
    commit_sha: str | None = None
    ssh_key: str | None = field(default=None, repr=False)
    known_hosts: str | None = None
    submodules: bool = False


@dataclass(frozen=True, slots=True)
class RegistryAuth:
    """Credentials for one registry; the password never leaves memory unencrypted."""

    username: str
    password: str = field(repr=False)
    registry: str  # host[:port], as in the image reference; "docker.io" for Docker Hub


@dataclass(frozen=True, slots=True)
class RegistryTarget:
    """A registry images are pushed to: ``<host>/<image_prefix>/<appName>:<tag>``.

    ``auth`` is None for a registry without credentials; ``secure`` False means plain
    http (loopback registries, or an ``http://`` URL).
    """

    id: str
    name: str
    host: str  # host[:port], as in image references
    image_prefix: str | None = None
    auth: RegistryAuth | None = field(default=None, compare=False, repr=False)
    secure: bool = True

    def repository(self, app_name: str) -> str:
        """``host/prefix/appName``: where this application's images go."""
        parts = [self.host, *(p for p in (self.image_prefix or "").split("/") if p), app_name]
        return "/".join(parts)


@dataclass(frozen=True, slots=True)
class BuildSpec:
    """An image build: ``context_dir`` is the checkout, paths inside it are relative."""

    source_dir: Path
    tag: str
    dockerfile: str = "Dockerfile"
    context_path: str = "."
    build_args: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False  # cleanCache: no layer cache, and base images pulled fresh
    target: str | None = None  # dockerBuildStage: the stage to build (``--target``)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)  # BuildKit secret mounts
    memory_limit: int | None = None  # bytes, for the build's containers
    cpu_limit: float | None = None  # cores
    proxy: dict[str, str] = field(default_factory=dict)  # HTTP_PROXY, HTTPS_PROXY, NO_PROXY
    cache_ledger: Path | None = None  # where the classic builder notes the images it created


class LogFn(Protocol):
    """Where adapters send their output lines."""

    def __call__(self, message: str, *, stream: LogStream = LogStream.STDOUT) -> None: ...


class CancelToken:
    """Set once when a deployment must stop; steps check it between units of work."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._callbacks: list[Callable[[], None]] = []
        self.reason = "cancelled"
        self.fails = False  # a kill or a timeout: the deployment ends in ERROR, not CANCELLED
        # Someone else already ended the row (the watchdog took this worker for lost): stop
        # without writing, undoing or recording anything more.
        self.abandoned = False

    def cancel(
        self, reason: str = "cancelled", *, fails: bool = False, abandoned: bool = False
    ) -> None:
        if self._event.is_set():
            return
        self.reason = reason
        self.fails = fails
        self.abandoned = abandoned
        self._event.set()
        for callback in list(self._callbacks):
            callback()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if cancellation was requested."""
        if self._event.is_set():
            raise Cancelled(self.reason)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if cancelled meanwhile."""
        return self._event.wait(seconds)

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` at cancellation (at once if already cancelled)."""
        self._callbacks.append(callback)
        if self._event.is_set():
            callback()
