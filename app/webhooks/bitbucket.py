"""Bitbucket Cloud: ``X-Hub-Signature: sha256=<hex>`` (its webhook secret), ``repo:push``
and ``pullrequest:*`` events. Its pushes carry no file lists, so watch paths cannot
apply; one push may name several refs (``push.changes[]``)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from app.types import SourceType
from app.webhooks.base import Provider, signed_hex
from app.webhooks.events import (
    EventKind,
    PullRequest,
    PullRequestAction,
    WebhookEvent,
    dig,
    same_repository,
    text,
)

PR_ACTIONS = {
    "pullrequest:created": PullRequestAction.OPEN,
    "pullrequest:updated": PullRequestAction.SYNC,
    "pullrequest:fulfilled": PullRequestAction.CLOSE,
    "pullrequest:rejected": PullRequestAction.CLOSE,
}
REF_KINDS = {"branch": EventKind.PUSH, "tag": EventKind.TAG}


def _change(name: str, change: Any, actor: str | None) -> WebhookEvent:
    new = dig(change, "new")
    side = new if isinstance(new, dict) else dig(change, "old")  # deleted: only ``old``
    kind = REF_KINDS.get(str(dig(side, "type")), EventKind.OTHER)
    return WebhookEvent(
        kind=kind,
        name=name,
        ref=text(dig(side, "name")),
        sha=text(dig(new, "target", "hash")),
        deleted=not isinstance(new, dict),
        message=text(dig(new, "target", "message")),
        author=actor or text(dig(new, "target", "author", "raw")),
        files=None,
    )


def _pull_request(name: str, payload: dict[str, Any], actor: str | None) -> WebhookEvent:
    pr = payload.get("pullrequest") if isinstance(payload.get("pullrequest"), dict) else {}
    number = dig(pr, "id")
    head_ref = text(dig(pr, "source", "branch", "name"))
    head_sha = text(dig(pr, "source", "commit", "hash"))  # often abbreviated (12 digits)
    return WebhookEvent(
        kind=EventKind.PULL_REQUEST if isinstance(number, int) else EventKind.OTHER,
        name=name,
        ref=head_ref,
        sha=head_sha,
        author=actor,
        pull_request=PullRequest(
            number=number if isinstance(number, int) else 0,
            action=PR_ACTIONS[name],
            head_ref=head_ref,
            head_sha=head_sha,
            base_ref=text(dig(pr, "destination", "branch", "name")),
            title=text(dig(pr, "title")),
            merged=name == "pullrequest:fulfilled",
            same_repository=same_repository(
                dig(pr, "source", "repository"),
                dig(pr, "destination", "repository"),
                "uuid",
                "full_name",
            ),
        ),
    )


class Bitbucket(Provider):
    name = "bitbucket"
    families = frozenset({SourceType.BITBUCKET, SourceType.GIT})
    delivery_headers = ("X-Request-UUID", "X-Request-Id")
    signature_headers = ("X-Hub-Signature",)

    def delivery_id(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """X-Request-UUID; else X-Hook-UUID, which names the hook, not the delivery, so it
        only tells deliveries apart together with the body."""
        given = super().delivery_id(headers, body)
        hook = headers.get("X-Hook-UUID", "").strip()
        if given is None and hook:
            return "hook:" + hashlib.sha256(hook.encode() + b"\n" + body).hexdigest()
        return given

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
        return signed_hex(headers.get("X-Hub-Signature"), secret, body, prefix="sha256=")

    def parse(self, headers: Mapping[str, str], payload: dict[str, Any]) -> list[WebhookEvent]:
        name = headers.get("X-Event-Key", "") or "unknown"
        actor = text(dig(payload, "actor", "display_name")) or text(
            dig(payload, "actor", "nickname")
        )
        if name == "repo:push":
            changes = dig(payload, "push", "changes")
            events = [_change(name, c, actor) for c in changes or [] if isinstance(c, dict)]
            return events or [WebhookEvent(kind=EventKind.OTHER, name=name)]
        if name in PR_ACTIONS:
            return [_pull_request(name, payload, actor)]
        return [WebhookEvent(kind=EventKind.OTHER, name=name)]
