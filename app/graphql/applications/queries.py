"""Application queries."""

from __future__ import annotations

import strawberry

from app.db.repos import applications
from app.graphql.applications.types import Application
from app.graphql.context import Info
from app.graphql.permissions import CanRead
from app.graphql.relay import Connection, connection, window


@strawberry.type
class ApplicationQueries:
    @strawberry.field(permission_classes=[CanRead])
    async def application(self, info: Info, id: strawberry.ID) -> Application | None:
        row = await info.context.db(applications.get, str(id))
        return Application.from_row(row) if row else None

    @strawberry.field(permission_classes=[CanRead], description="newest first")
    async def applications(
        self,
        info: Info,
        first: int | None = 50,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Application]:
        asked = window(info, first=first, after=after, last=last, before=before, default=50)
        page = await info.context.db(applications.page, window=asked)
        return connection(page, Application.from_row, lambda r: r.id)
