"""The typed request context and the process-wide state it carries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.types import Info as StrawberryInfo

from app.auth.keys import Principal
from app.auth.throttle import AuthThrottle
from app.crypto import Cipher
from app.db.session import Database
from app.errors import Unauthenticated
from app.graphql.sharing import SharedResults
from app.graphql.streams import last_event_id
from app.graphql.ws_limits import SocketRegistry
from app.logs.hub import Hub
from app.notify.transport import Transport
from app.queue.actors import DeploymentQueue
from app.registry.base import RegistryClient
from app.runtime.base import Runtime
from app.runtime.connection import EngineConnection
from app.runtime.stats import StatsStreams
from app.settings import Settings

T = TypeVar("T")


@dataclass
class AppState:
    """Built once in the app lifespan; shared by every request."""

    settings: Settings
    db: Database
    cipher: Cipher
    hub: Hub
    queue: DeploymentQueue
    shared: SharedResults = field(default_factory=SharedResults)
    sockets: SocketRegistry = field(default_factory=SocketRegistry)  # open WebSockets
    throttle: AuthThrottle = field(default_factory=AuthThrottle)  # failed-key limits
    runtime: Runtime | None = None  # the local engine, where this process also deploys
    registry: RegistryClient | None = None  # testRegistry's client (the engine's, embedded)
    engine: EngineConnection | None = None  # that engine's connection (embedded mode)
    stats: StatsStreams | None = None  # applicationStats's engine streams (embedded mode)
    notify: Transport | None = None  # checks and test sends of notification URLs (apprise)


@dataclass
class Context:
    state: AppState
    request: Request | WebSocket
    response: Response | WebSocket | None
    principal: Principal | None = None
    connection_params: dict[str, Any] | None = None
    loaders: dict[str, Any] = field(default_factory=dict)
    stream_position: int | None = None  # the SSE event id of what the operation sends next

    def resume_position(self) -> int:
        """Where an HTTP stream's client asks to resume (``Last-Event-ID``; 0: anywhere)."""
        if isinstance(self.request, Request):
            return last_event_id(self.request.headers)
        return 0

    async def db(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn(session, *args, **kwargs)`` in a worker thread, in one transaction."""

        def call() -> T:
            with self.state.db.session() as session:
                return fn(session, *args, **kwargs)

        return await run_in_threadpool(call)

    def who(self) -> Principal:
        if self.principal is None:
            raise Unauthenticated("an API key is required (x-api-key or Authorization: Bearer)")
        return self.principal

    def loader(self, name: str, factory: Callable[[], T]) -> T:
        """One dataloader per request and name."""
        if name not in self.loaders:
            self.loaders[name] = factory()
        loader: T = self.loaders[name]
        return loader


Info = StrawberryInfo[Context, None]
__all__ = ["AppState", "Context", "Info", "Session"]
