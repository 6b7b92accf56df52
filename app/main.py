"""The ASGI application: GraphQL at /graphql, /healthz, the pages at /ui/; the lifespan owns
every client."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from app.auth.gate import admit
from app.auth.keys import key_from_headers
from app.auth.throttle import AuthThrottle
from app.crypto import Cipher, load_or_create_key
from app.db.repos import applications
from app.db.session import Database
from app.engine.adapters import real_adapters
from app.engine.context import Adapters
from app.engine.retention import PointRemover
from app.engine.runner import Engine
from app.errors import RateLimited
from app.filemodes import secure_data_dir
from app.graphql.context import AppState
from app.graphql.graphiql import graphiql_routes
from app.graphql.schema import build_schema
from app.graphql.view import SlipwayGraphQL
from app.logs.bus.factory import make_bus
from app.logs.hub import Hub
from app.metrics import instruments as metrics
from app.metrics.endpoint import MetricsEndpoint, metrics_route
from app.notify.deliver import Deliverer
from app.notify.dispatch import Notifier
from app.notify.transport import AppriseTransport
from app.queue.actors import declare
from app.queue.broker import make_broker
from app.queue.notifications import declare_notifications
from app.queue.worker import Watchdog, Worker
from app.readiness import Readiness
from app.registry.client import registry_client
from app.runtime.stats import StatsStreams
from app.settings import Settings
from app.web.routes import ui_routes
from app.webhooks.routes import receive_webhook

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
        ws_max_size=settings.ws_max_message_bytes,  # JSON-decoded before any key check
        log_level=log_level,
        # The failure limit counts the peer address: X-Forwarded-For only from named proxies.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or None,
    )


async def rate_limited(conn: Request | WebSocket, exc: Exception) -> Response | None:
    """RateLimited raised before any work: 429 with Retry-After, or a 4429 close."""
    assert isinstance(exc, RateLimited)
    if isinstance(conn, WebSocket):
        await conn.close(code=4429, reason=str(exc)[:120])
        return None
    body = {"data": None, "errors": [{"message": str(exc), "extensions": exc.extensions}]}
    headers = {"Retry-After": str(exc.retry_after)}
    return JSONResponse(body, status_code=429, headers=headers)


# Starlette calls one handler for HTTP and WebSocket scopes; its types name only one each.
EXCEPTION_HANDLERS: dict[Any, Any] = {RateLimited: rate_limited}


def create_app(settings: Settings, *, adapters: AdaptersFactory = real_adapters) -> Starlette:
    """In embedded mode (no Redis URL) the app also runs the deployment worker."""
    view = SlipwayGraphQL(
        schema=build_schema(),
        graphql_ide="graphiql",  # Slipway's own page (app.graphql.graphiql), unless turned off
        multipart_uploads_enabled=True,
        allowed_origins=settings.cors_origin_list,  # WebSocket Origin; same origin always
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        secure_data_dir(settings)  # 0700 dirs, 0600 database files and secret.key
        metrics.configure(settings.metrics_dir)  # before any metric is recorded
        db = Database(settings.effective_database_url, stall_timeout=settings.db_stall_timeout)
        hub = Hub(make_bus(settings), wakeups_per_second=settings.log_wakeups_per_second)
        await hub.start()
        broker = make_broker(settings)
        queue = declare(broker)
        notifications = declare_notifications(broker)
        cipher = Cipher(load_or_create_key(settings))
        view.state = app.state.slipway = AppState(
            settings=settings,
            db=db,
            cipher=cipher,
            hub=hub,
            queue=queue,
            throttle=AuthThrottle(
                limit=settings.auth_failure_limit, window=settings.auth_failure_window
            ),
            registry=registry_client(settings.registry_timeout),
        )
        with db.session() as session:  # build args stored in clear before migration 0004
            sealed = applications.seal_all_build_args(session, view.state.cipher)
        if sealed:
            log.info("encrypted the clear build arguments of %d applications", sealed)
        worker: Worker | None = None
        watchdog: Watchdog | None = None
        engine_link = None
        if not settings.embedded:  # workers sweep too; this covers "every worker is gone"
            watchdog = Watchdog(
                db=db,
                bus=hub.bus,
                queue=queue,
                settings=settings,
                # no engine here: registry tags of pruned rollback points (workers sweep images)
                points=PointRemover(cipher=view.state.cipher, registry=view.state.registry),
                notifications=notifications,
                notifier=Notifier(db=db, cipher=cipher, settings=settings, queue=notifications),
            )
            await run_in_threadpool(watchdog.start)
        else:
            made = adapters(settings)
            transport = made.notify or AppriseTransport()
            view.state.notify = transport
            engine = Engine(
                settings=settings,
                db=db,
                bus=hub.bus,
                cipher=cipher,
                adapters=made,
                notifier=Notifier(db=db, cipher=cipher, settings=settings, queue=notifications),
            )
            view.state.runtime = engine.adapters.runtime
            view.state.registry = engine.adapters.registry or view.state.registry
            engine_link = engine.adapters.engine
            view.state.engine = engine_link
            if engine_link is not None:
                view.state.stats = StatsStreams(engine_link)
            worker = Worker(
                engine=engine,
                queue=queue,
                threads=settings.worker_threads,
                poll_ms=100,
                notifications=notifications,
                deliverer=Deliverer(db=db, cipher=cipher, settings=settings, transport=transport),
            )
            worker.start()
        app.state.metrics = MetricsEndpoint(db=db, token=settings.metrics_token)
        readiness = app.state.readiness = Readiness.build(
            db=db, redis_url=settings.redis_url, engine=engine_link, cache_s=settings.readyz_cache
        )
        if engine_link is not None:
            status = await run_in_threadpool(engine_link.status)
            if not status.up:  # serve runs without it; each deployment tries again
                log.warning("%s; deployments fail until it answers", status.reason)
        # Everything built so far lives as long as the process: keep it out of the cyclic
        # GC's full collections, which otherwise pause every request now and then (~100 ms).
        gc.freeze()
        try:
            yield
        finally:
            if watchdog is not None:
                watchdog.stop()
            if worker is not None:
                await run_in_threadpool(worker.stop)
            await hub.stop()
            readiness.close()
            metrics.process_exiting()
            db.dispose()

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        """Each dependency's state (a reason as observed only for a valid key): 200 or 503."""
        state: AppState = request.app.state.slipway
        key = key_from_headers(request.headers)
        address = request.client.host if request.client else None
        principal = await admit(state.db, state.throttle, key=key, address=address)
        readiness: Readiness = request.app.state.readiness
        ready, body = await run_in_threadpool(readiness.report, details=principal is not None)
        return JSONResponse(body, status_code=200 if ready else 503)

    return Starlette(
        routes=[
            Route("/graphql", view, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", view),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_route),
            Route("/webhooks/{provider}/{application_id}", receive_webhook, methods=["POST"]),
            *ui_routes(),
            *graphiql_routes(settings),
        ],
        middleware=[cors(settings)],
        lifespan=lifespan,
        exception_handlers=EXCEPTION_HANDLERS,
    )


def cors(settings: Settings) -> Middleware:
    """CORS for ``SLIPWAY_CORS_ORIGINS``: a preflight is answered here, before any key check
    or route (400 for an origin not listed); an allowed origin may send the key headers."""
    return Middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origin_list),
        allow_methods=["GET", "POST"],
        allow_headers=["x-api-key", "authorization", "content-type", "last-event-id"],
        expose_headers=["retry-after", "www-authenticate"],
        max_age=600,
    )
