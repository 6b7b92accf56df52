"""What a running step sees: its inputs, the log writer, the cancel token, its results."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from app.builders.base import Builder
from app.engine.release_spec import ReleasedSpec
from app.engine.snapshot import DeploymentSnapshot
from app.logs.writer import LogWriter
from app.notify.transport import Transport
from app.registry.base import ImagePusher, RegistryClient
from app.runtime.base import Release, Runtime
from app.runtime.connection import EngineConnection
from app.sources.base import GitClient
from app.types import BuildType, CancelToken, LogStream, RegistryAuth, ServiceSpec


@dataclass
class Adapters:
    """The external systems one deployment talks to (real ones, or fakes in unit tests)."""

    git: GitClient
    builders: dict[BuildType, Builder]
    runtime: Runtime
    pusher: ImagePusher | None = None  # PUSH_IMAGE and rollback copies (app/registry/push.py)
    registry: RegistryClient | None = None  # registry HTTP API (app/registry/client.py)
    engine: EngineConnection | None = None  # the real engine's connection (readiness)
    notify: Transport | None = None  # how notifications are sent; None: apprise


@dataclass
class Workspace:
    """Where an application's source lives between deployments (rebuilds reuse it)."""

    root: Path

    @property
    def code(self) -> Path:
        return self.root / "code"

    @property
    def build_cache_ledger(self) -> Path:
        """The images this application's classic builds created (``builders/cache.py``)."""
        return self.root / "build-cache.ids"

    def incoming(self, deployment_id: str) -> Path:
        return self.root / f"incoming-{deployment_id}"


@dataclass
class RunContext:
    deployment: DeploymentSnapshot
    writer: LogWriter
    cancel: CancelToken
    adapters: Adapters
    workspace: Workspace
    health_timeout: float
    endpoint_mode: str
    fetch_retries: int = 0
    instance: str | None = None  # this installation's id, on the images it builds
    commit_sha: str | None = None
    known_hosts: str | None = None  # ssh host keys FETCH_SOURCE accepted on first use
    image_ref: str | None = None
    registry_id: str | None = None  # PUSH_IMAGE: the registry image_ref was pushed to
    registry_auth: RegistryAuth | None = field(default=None, repr=False)  # ... and its login
    service: ServiceSpec | None = None
    release: Release | None = None
    previous_health_path: str | None = None  # the replaced release's healthCheckPath, if known
    restored_image: str | None = None  # RESTORE put this previous image back
    rollback: ReleasedSpec | None = None  # ROLLBACK: the snapshot RELEASE releases again
    rollback_copy: tuple[str, str] | None = None  # ROLLBACK_COPY: (registry id, repo:tag@digest)
    extra: dict[str, str] = field(default_factory=dict)
    build_proxy: dict[str, str] = field(default_factory=dict)  # HTTP(S)_PROXY build args

    def log(self, message: str, *, stream: LogStream = LogStream.STDOUT) -> None:
        """A LogFn for adapters: lines go to the current step."""
        self.writer.write(message, stream=stream)

    def say(self, message: str) -> None:
        self.writer.system(message)
