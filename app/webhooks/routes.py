"""``POST /webhooks/<provider>/<applicationId>``: the HTTP edge of webhook handling."""

from __future__ import annotations

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.metrics import instruments as metrics
from app.webhooks.handler import UNAUTHORIZED, Services, handle
from app.webhooks.providers import PROVIDERS, provider


async def read_body(request: Request, limit: int) -> bytes | None:
    """The raw body, read once; None as soon as it is longer than ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


# what slipway_webhook_deliveries_total{outcome} says of an answer without an outcome
STATUS_OUTCOMES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 413: "too_large"}


async def receive_webhook(request: Request) -> Response:
    name = request.path_params["provider"].lower()  # a label: one per provider
    found = provider(name)
    if found is None:
        metrics.webhook_delivered("unknown", "unknown_provider")  # never the URL's text
        names = ", ".join(PROVIDERS)
        return JSONResponse({"error": f"unknown provider; use one of {names}"}, 404)
    if not found.signed(request.headers):  # no signature: nothing to verify, nothing read
        metrics.webhook_delivered(name, "unauthorized")
        return JSONResponse({"error": UNAUTHORIZED}, 401)
    state = request.app.state.slipway
    limit = state.settings.webhook_max_body
    body = await read_body(request, limit)
    if body is None:
        metrics.webhook_delivered(name, "too_large")
        return JSONResponse({"error": f"the body is larger than {limit} bytes"}, 413)
    services = Services(
        settings=state.settings,
        db=state.db,
        cipher=state.cipher,
        bus=state.hub.bus,
        queue=state.queue,
        runtime=state.runtime,  # closed previews go at once where this process deploys
    )
    reply = await run_in_threadpool(
        handle, services, found, request.path_params["application_id"], request.headers, body
    )
    outcome = reply.body.get("outcome") or STATUS_OUTCOMES.get(reply.status, "unavailable")
    metrics.webhook_delivered(name, str(outcome))
    task = BackgroundTask(reply.after) if reply.after is not None else None
    return JSONResponse(reply.body, status_code=reply.status, background=task)
