"""Notification queries (ADMIN: where a team's alerts go, and how sending them went, is an
administrator's business; the URL is never shown to anyone)."""

from __future__ import annotations

import strawberry

from app.db.repos import notifications
from app.graphql.context import Info
from app.graphql.notifications.types import Notification
from app.graphql.permissions import IsAdmin


@strawberry.type
class NotificationQueries:
    @strawberry.field(permission_classes=[IsAdmin], description="by name")
    async def notifications(self, info: Info) -> list[Notification]:
        rows = await info.context.db(notifications.all_notifications)
        return [Notification.from_row(r) for r in rows]

    @strawberry.field(permission_classes=[IsAdmin])
    async def notification(self, info: Info, id: strawberry.ID) -> Notification | None:
        row = await info.context.db(notifications.get, str(id))
        return Notification.from_row(row) if row else None
