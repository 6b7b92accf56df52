"""Notification mutations (ADMIN): create, update, delete, and testNotification.

A notification URL holds a service's tokens and every send is an outbound request to
where it points, so all of them need ADMIN: a weaker key can neither read nor move where
alerts go, nor use a test send to probe the network.
"""

from __future__ import annotations

import strawberry
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.crypto import Cipher
from app.db.models import Notification as NotificationRow
from app.db.repos import notifications
from app.errors import Conflict
from app.graphql.context import AppState, Info
from app.graphql.notifications.inputs import (
    CreateNotificationInput,
    UpdateNotificationInput,
    notification_columns,
)
from app.graphql.notifications.types import Notification
from app.graphql.permissions import IsAdmin
from app.notify.deliver import Deliverer
from app.notify.transport import AppriseTransport, ParsedUrl, Transport


def transport(state: AppState) -> Transport:
    """The process's transport (the engine adapters' in embedded mode), made on first use."""
    if state.notify is None:
        state.notify = AppriseTransport()
    return state.notify


def _unique_name(session: Session, name: str, notification_id: str | None = None) -> None:
    other = notifications.by_name(session, name)
    if other is not None and other.id != notification_id:
        raise Conflict(f"a notification named {name!r} already exists")


def _flush(session: Session, name: str) -> None:
    try:
        session.flush()
    except IntegrityError as exc:  # another request took the name meanwhile
        raise Conflict(f"a notification named {name!r} already exists") from exc


def _create(
    session: Session, data: CreateNotificationInput, cipher: Cipher, parsed: ParsedUrl
) -> NotificationRow:
    cols = notification_columns(session, data, cipher, parsed)
    _unique_name(session, cols["name"])
    row = NotificationRow(**cols)
    session.add(row)
    _flush(session, row.name)
    return row


def _update(
    session: Session,
    notification_id: str,
    data: UpdateNotificationInput,
    cipher: Cipher,
    parsed: ParsedUrl | None,
) -> NotificationRow:
    row = notifications.require(session, notification_id)
    cols = notification_columns(session, data, cipher, parsed)
    if "name" in cols:
        _unique_name(session, cols["name"], row.id)
    for column, value in cols.items():
        setattr(row, column, value)
    _flush(session, row.name)
    return row


def _delete(session: Session, notification_id: str) -> None:
    notifications.delete(session, notifications.require(session, notification_id))


async def _parse(state: AppState, url: str) -> ParsedUrl:
    return await run_in_threadpool(transport(state).parse, url)


@strawberry.type
class NotificationMutations:
    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="BAD_USER_INPUT when apprise cannot parse the URL or an application id "
        "is unknown; CONFLICT when the name is taken",
    )
    async def create_notification(self, info: Info, input: CreateNotificationInput) -> Notification:
        state = info.context.state
        parsed = await _parse(state, input.url)
        row = await info.context.db(_create, input, state.cipher, parsed)
        return Notification.from_row(row)

    @strawberry.mutation(permission_classes=[IsAdmin])
    async def update_notification(
        self, info: Info, id: strawberry.ID, input: UpdateNotificationInput
    ) -> Notification:
        state = info.context.state
        parsed = await _parse(state, input.url) if input.url is not None else None
        row = await info.context.db(_update, str(id), input, state.cipher, parsed)
        return Notification.from_row(row)

    @strawberry.mutation(
        permission_classes=[IsAdmin], description="Its messages not yet sent are dropped"
    )
    async def delete_notification(self, info: Info, id: strawberry.ID) -> bool:
        await info.context.db(_delete, str(id))
        return True

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Send a test message now: true when the service accepted it; false when "
        "not, and lastError says why",
    )
    async def test_notification(self, info: Info, id: strawberry.ID) -> bool:
        state = info.context.state
        deliverer = Deliverer(
            db=state.db, cipher=state.cipher, settings=state.settings, transport=transport(state)
        )
        attempt = await run_in_threadpool(deliverer.test, str(id))
        return attempt.sent
