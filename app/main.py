"""The ASGI application: GraphQL at /graphql, /healthz; the lifespan owns every client."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute

from app.crypto import Cipher, load_or_create_key
from app.db.session import Database
from app.engine.adapters import real_adapters
from app.engine.context import Adapters
from app.engine.runner import Engine
from app.graphql.context import AppState
from app.graphql.schema import build_schema
from app.graphql.view import SlipwayGraphQL
from app.logs.bus.base import Bus
from app.logs.bus.memory import MemoryBus
from app.logs.bus.redis import RedisBus
from app.logs.hub import Hub
from app.queue.actors import declare
from app.queue.broker import make_broker
from app.queue.worker import Worker
from app.settings import Settings

log = logging.getLogger(__name__)
AdaptersFactory = Callable[[Settings], Adapters]


def server_config(
    app: Starlette, settings: Settings, *, host: str, port: int, log_level: str = "info"
) -> uvicorn.Config:
    """How `slipway serve` (and the tests' servers) run the app under uvicorn."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        ws="websockets-sansio",
        ws_per_message_deflate=settings.ws_compression,
        log_level=log_level,
    )


def make_bus(settings: Settings) -> Bus:
    return RedisBus(settings.redis_url) if settings.redis_url else MemoryBus()


def create_app(settings: Settings, *, adapters: AdaptersFactory = real_adapters) -> Starlette:
    """In embedded mode (no Redis URL) the app also runs the deployment worker."""
    view = SlipwayGraphQL(schema=build_schema(), graphql_ide="graphiql")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.effective_database_url)
        hub = Hub(make_bus(settings))
        await hub.start()
        queue = declare(make_broker(settings))
        view.state = app.state.slipway = AppState(
            settings=settings,
            db=db,
            cipher=Cipher(load_or_create_key(settings)),
            hub=hub,
            queue=queue,
        )
        worker = None
        if settings.embedded:
            engine = Engine(
                settings=settings,
                db=db,
                bus=hub.bus,
                cipher=view.state.cipher,
                adapters=adapters(settings),
            )
            worker = Worker(engine=engine, queue=queue, threads=settings.worker_threads)
            worker.start()
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            await hub.stop()
            db.dispose()

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/graphql", view, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", view),
            Route("/healthz", healthz),
        ],
        lifespan=lifespan,
    )
