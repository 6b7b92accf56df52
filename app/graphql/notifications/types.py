"""GraphQL type of notifications. The URL is write-only: only its service shows."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.db.models import Notification as NotificationRow
from app.graphql.enums import NotificationEvent


@strawberry.type(
    description="Where messages about deployments and running applications go (an apprise "
    "URL, write-only: it holds the service's tokens)"
)
class Notification:
    id: strawberry.ID
    name: str
    events: list[NotificationEvent]
    application_ids: list[strawberry.ID] = strawberry.field(
        description="the applications it is about; empty: every application, those created "
        "later included"
    )
    service: str = strawberry.field(
        description='the apprise service the URL names ("Slack", "Discord", "JSON"); the '
        "URL itself is never shown"
    )
    scheme: str = strawberry.field(description="the URL's scheme (slack, discord, json, …)")
    last_sent_at: datetime | None = strawberry.field(
        description="when a message (or testNotification) last got through"
    )
    last_error: str | None = strawberry.field(
        description="why the last attempt failed (null once one succeeds after it); never "
        "the URL or a part of it"
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: NotificationRow) -> Notification:
        return cls(
            id=strawberry.ID(row.id),
            name=row.name,
            events=[NotificationEvent(e) for e in row.events or []],
            application_ids=[strawberry.ID(i) for i in row.application_ids or []],
            service=row.service,
            scheme=row.scheme,
            last_sent_at=row.last_sent_at,
            last_error=row.last_error,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
