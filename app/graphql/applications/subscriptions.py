"""``applicationHealth``: the application as it is, then again each time the runtime
monitor changes its health (or anything else selected changes)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from app.db.repos import applications
from app.engine.events import application_topic
from app.graphql.applications.types import Application
from app.graphql.context import Info
from app.graphql.permissions import CanRead


@strawberry.type
class ApplicationSubscriptions:
    @strawberry.subscription(
        permission_classes=[CanRead],
        description="the application now, then after each change of its health (the "
        "monitor's announcements); ends when the application is deleted",
    )
    async def application_health(
        self, info: Info, application_id: strawberry.ID
    ) -> AsyncGenerator[Application, None]:
        ctx = info.context
        sub = await ctx.state.hub.subscribe(application_topic(str(application_id)))
        try:
            current = Application.from_row(await ctx.db(applications.require, str(application_id)))
            ctx.loaders.clear()
            yield current
            while True:
                announced = await sub.next(timeout=30.0)
                row = await ctx.db(applications.get, str(application_id))
                if row is None:
                    return
                latest = Application.from_row(row)
                if announced or latest != current:  # app.graphql.distinct drops equal ones
                    ctx.loaders.clear()
                    yield latest
                current = latest
        finally:
            await sub.close()
