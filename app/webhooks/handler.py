"""One verified delivery, from its bytes to what was done about it.

Order matters: the secret is checked before anything about the application is revealed
(unknown id, no secret and a bad signature all answer the same 401); the delivery id
is recorded in the same transaction that decides, so a replay, or the same delivery
arriving twice at once, is acknowledged and starts nothing (the unique constraint
decides the race); so is the body's sha256 per application, so a signed body replayed
under a new delivery id (or as another provider's delivery) starts nothing either; a
claim whose action then fails is dropped so a redelivery retries.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy.exc import IntegrityError

from app import strict_json
from app.crypto import Cipher
from app.db.repos import applications, webhooks
from app.db.session import Database
from app.engine import previews
from app.errors import SlipwayError, Unavailable
from app.logs.bus.base import Bus
from app.queue.actors import DeploymentQueue
from app.queue.submit import SourceOverride, submit
from app.runtime.base import Runtime
from app.settings import Settings
from app.webhooks.base import Provider
from app.webhooks.decide import Action, Decision, decide
from app.webhooks.events import WebhookEvent
from app.webhooks.providers import PROVIDERS

log = logging.getLogger(__name__)
UNAUTHORIZED = "signature missing or invalid"
MAX_DELIVERY_ID = 128
_DECOY_SECRET = secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Services:
    """What handling a delivery needs from the running app."""

    settings: Settings
    db: Database
    cipher: Cipher
    bus: Bus
    queue: DeploymentQueue
    runtime: Runtime | None = None  # for removing closed previews at once; else the sweep


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]
    after: Callable[[], object] | None = None  # work to run once the answer is sent


def answer(
    outcome: str, reason: str, *, deployment_id: str | None = None, status: int = 200
) -> Reply:
    body = {"outcome": outcome, "reason": reason, "deploymentId": deployment_id}
    return Reply(status, body)


def error(status: int, reason: str) -> Reply:
    return Reply(status, {"error": reason})


def handle(
    services: Services,
    provider: Provider,
    application_id: str,
    headers: Mapping[str, str],
    body: bytes,
) -> Reply:
    """Verify, parse, record and act; every outcome is a :class:`Reply`."""
    try:
        return _handle(services, provider, application_id, headers, body)
    except Unavailable as exc:
        log.warning("webhook for %s not handled: %s", application_id, exc)
        return error(503, "the service is unavailable; deliver again later")


def _handle(
    services: Services,
    provider: Provider,
    application_id: str,
    headers: Mapping[str, str],
    body: bytes,
) -> Reply:
    found = _secret(services, application_id)
    # an unknown id is checked against a decoy secret, so its 401 takes as long as a forgery's
    valid = provider.verify(headers, body, found[1] if found else _DECOY_SECRET)
    if found is None or not valid:
        return error(401, UNAUTHORIZED)
    source_type = found[0]
    if not provider.serves(source_type):
        expected = " or ".join(p.name for p in PROVIDERS.values() if p.serves(source_type))
        return error(
            400,
            f"the application's source is {source_type}: it takes "
            f"{expected or 'no'} webhooks, not {provider.name}",
        )
    payload = _payload(headers, body)
    if payload is None:
        return error(400, "the body is not a JSON object")
    events = provider.parse(headers, payload)
    delivery = _delivery_id(provider, headers, body)
    digest = hashlib.sha256(body).hexdigest()
    claimed = _claim(services, provider, application_id, events, delivery, digest)
    if isinstance(claimed, str):
        return answer("duplicate", claimed)
    delivery_pk, decision = claimed
    return _act(services, application_id, delivery_pk, decision)


def _secret(services: Services, application_id: str) -> tuple[str, str] | None:
    """(source type, webhook secret) of the application, or None for no such or none."""
    if len(application_id) > 64:
        return None
    with services.db.session() as session:
        app = applications.get(session, application_id)
        if app is None or not app.webhook_secret_enc:
            return None
        source_type, token = app.source_type, app.webhook_secret_enc
    secret = services.cipher.decrypt_json(token)
    return (source_type, secret) if isinstance(secret, str) and secret else None


def _payload(headers: Mapping[str, str], body: bytes) -> dict[str, Any] | None:
    """The JSON body (GitHub may also send it form-encoded as ``payload=``)."""
    try:
        if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            body = parse_qs(body.decode()).get("payload", [""])[0].encode()
        data = strict_json.loads(body)  # also refuses deep nesting and unpaired surrogates
    except ValueError:  # JSONRefused, UnicodeDecodeError
        return None
    return data if isinstance(data, dict) else None


def _delivery_id(provider: Provider, headers: Mapping[str, str], body: bytes) -> str:
    """The provider's delivery id, or the body's sha256 when it sends none."""
    given = provider.delivery_id(headers, body)
    if given is None:
        return "sha256:" + hashlib.sha256(body).hexdigest()
    if len(given) > MAX_DELIVERY_ID or not given.isprintable():
        return "sha256:" + hashlib.sha256(given.encode()).hexdigest()
    return given


def _claim(
    services: Services,
    provider: Provider,
    application_id: str,
    events: list[WebhookEvent],
    delivery: str,
    digest: str,
) -> tuple[int, Decision] | str:
    """Decide and record the delivery in one transaction; when it (or its body, under
    another delivery id) was seen before, the reason it is a duplicate instead."""
    replayed = "a delivery with this exact body was already handled"
    try:
        with services.db.session(locking=True) as session:
            app = applications.require(session, application_id)
            if webhooks.body_seen(session, application_id=application_id, body_sha256=digest):
                return replayed
            decisions = [decide(app, e, provider=provider.name) for e in events]
            decision = next((d for d in decisions if d.action is not Action.NOTHING), decisions[0])
            row = webhooks.record(
                session,
                application_id=application_id,
                provider=provider.name,
                delivery_id=delivery,
                event=events[0].name,
                outcome=f"{decision.outcome}: {decision.reason}",
                body_sha256=digest,
            )
            return row.id, decision
    except IntegrityError:  # the same delivery, or body, at the same moment
        return f"delivery {delivery} was already handled"


def _act(services: Services, application_id: str, delivery_pk: int, decision: Decision) -> Reply:
    try:
        if decision.action is Action.DEPLOY:
            reply = _deploy(services, application_id, decision)
        elif decision.action is Action.OPEN_PREVIEW:
            reply = _open_preview(services, application_id, decision)
        elif decision.action is Action.CLOSE_PREVIEW:
            reply = _close_preview(services, application_id, decision)
        else:
            return answer(decision.outcome, decision.reason)
    except SlipwayError as exc:  # the application went away, or a backing service is down
        with services.db.session() as session:
            webhooks.forget(session, delivery_pk)
        if isinstance(exc, Unavailable):
            raise
        return answer("ignored", str(exc))
    except Exception:
        with services.db.session() as session:
            webhooks.forget(session, delivery_pk)
        raise
    with services.db.session() as session:
        webhooks.finish(
            session,
            delivery_pk,
            outcome=f"{reply.body['outcome']}: {reply.body['reason']}",
            deployment_id=reply.body.get("deploymentId"),
        )
    return reply


def _deploy(services: Services, application_id: str, decision: Decision) -> Reply:
    assert decision.trigger is not None
    submitted = submit(
        settings=services.settings,
        db=services.db,
        bus=services.bus,
        queue=services.queue,
        application_id=application_id,
        trigger=decision.trigger,
        title=decision.title,
        description=decision.description,
        source=SourceOverride(sha=decision.sha, ref=decision.ref, ref_kind=decision.ref_kind),
    )
    reason = decision.reason
    if submitted.duplicate:
        reason += "; an equal deployment was already queued"
    return answer("deployed", reason, deployment_id=submitted.deployment.id, status=202)


def _open_preview(services: Services, parent_id: str, decision: Decision) -> Reply:
    number = _pr_number(decision)
    preview = previews.open_preview(
        services.db,
        services.cipher,
        parent_id=parent_id,
        number=number,
        head_ref=decision.ref,
        title=decision.title,
        fork=decision.fork,
    )
    if preview is None:
        return answer("ignored", "preview deployments are off or their limit is reached")
    return _deploy(services, preview.id, decision)


def _close_preview(services: Services, parent_id: str, decision: Decision) -> Reply:
    closed = previews.close_preview(services.db, parent_id=parent_id, number=_pr_number(decision))
    if closed is None:
        return answer("closed", f"{decision.reason}; it had no preview")

    def sweep() -> None:
        try:
            previews.sweep_closed(services.db, services.runtime, services.bus)
        except Exception:  # the periodic sweep tries again
            log.exception("sweeping closed previews after a webhook failed")

    reply = answer("closed", f"{decision.reason}; its preview {closed} is being removed")
    return Reply(reply.status, reply.body, after=sweep)


def _pr_number(decision: Decision) -> int:
    assert decision.number is not None
    return decision.number
