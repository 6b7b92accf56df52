"""Inputs of notification mutations, and their validation into table columns.

On update an omitted (or null) field is kept. The URL must be one apprise can parse (its
own parser, through the process's transport); it is encrypted before it is stored and
never read back. ``applicationIds`` must name applications that exist.
"""

from __future__ import annotations

from typing import Any

import strawberry
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.crypto import Cipher
from app.db.models import Application
from app.errors import BadInput
from app.graphql.enums import NotificationEvent
from app.graphql.limits import NAME_MAX, check_display_name, check_items
from app.notify.transport import ParsedUrl

APPLICATIONS_MAX = 1000


@strawberry.input(description="Where to send messages, and which")
class CreateNotificationInput:
    name: str = strawberry.field(description="unique; 1-100 characters")
    url: str = strawberry.field(
        description="an apprise URL (json://host/path, slack://…, discord://…, mailto://…); "
        "write-only, stored encrypted"
    )
    events: list[NotificationEvent] = strawberry.field(description="at least one")
    application_ids: list[strawberry.ID] | None = strawberry.field(
        default_factory=list,
        description="empty (or null): every application, those created later too",
    )


@strawberry.input(description="Changes to a notification; an omitted field is kept")
class UpdateNotificationInput:
    name: str | None = None
    url: str | None = strawberry.field(
        default=None, description="a new apprise URL replaces the stored one"
    )
    events: list[NotificationEvent] | None = None
    application_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="[]: every application"
    )


def check_events(events: list[NotificationEvent]) -> list[str]:
    if not events:
        raise BadInput(
            "events must name at least one of " + ", ".join(e.value for e in NotificationEvent)
        )
    return list(dict.fromkeys(e.value for e in events))


def check_application_ids(session: Session, ids: list[strawberry.ID]) -> list[str]:
    check_items(ids, "applicationIds", APPLICATIONS_MAX)
    wanted = list(dict.fromkeys(str(i) for i in ids))
    if not wanted:
        return []
    found = set(session.scalars(select(Application.id).where(Application.id.in_(wanted))).all())
    unknown = [i for i in wanted if i not in found]
    if unknown:
        shown = ", ".join(repr(i[:40]) for i in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise BadInput(f"applicationIds: no application {shown}{more}")
    return wanted


def notification_columns(
    session: Session,
    data: CreateNotificationInput | UpdateNotificationInput,
    cipher: Cipher,
    parsed: ParsedUrl | None,
) -> dict[str, Any]:
    """Checked columns for what ``data`` gives; ``parsed`` is its URL checked by apprise."""
    cols: dict[str, Any] = {}
    if data.name is not None:
        cols["name"] = check_display_name(data.name, "name", NAME_MAX)
    if data.url is not None:
        assert parsed is not None
        cols["url_enc"] = cipher.encrypt_json(data.url)
        cols["service"], cols["scheme"] = parsed.service, parsed.scheme
    if data.events is not None:
        cols["events"] = check_events(data.events)
    if data.application_ids is not None:
        cols["application_ids"] = check_application_ids(session, data.application_ids)
    elif isinstance(data, CreateNotificationInput):
        cols["application_ids"] = []
    return cols
