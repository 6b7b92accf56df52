"""Gitea (and Forgejo): ``X-Gitea-Signature: <hex>``, payloads shaped like GitHub's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.types import SourceType
from app.webhooks.base import Provider, signed_hex
from app.webhooks.events import EventKind, PullRequestAction, WebhookEvent
from app.webhooks.github import parse_pull_request, parse_push

PR_ACTIONS = {
    "opened": PullRequestAction.OPEN,
    "reopened": PullRequestAction.OPEN,
    "synchronized": PullRequestAction.SYNC,
    "closed": PullRequestAction.CLOSE,
}


class Gitea(Provider):
    name = "gitea"
    families = frozenset({SourceType.GITEA, SourceType.GIT})
    delivery_headers = ("X-Gitea-Delivery", "X-Gogs-Delivery", "X-GitHub-Delivery")
    signature_headers = ("X-Gitea-Signature", "X-Hub-Signature-256")

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
        if "X-Gitea-Signature" in headers:
            return signed_hex(headers.get("X-Gitea-Signature"), secret, body)
        return signed_hex(headers.get("X-Hub-Signature-256"), secret, body, prefix="sha256=")

    def parse(self, headers: Mapping[str, str], payload: dict[str, Any]) -> list[WebhookEvent]:
        # A tag push also arrives as a "create" event: only the push one deploys.
        name = headers.get("X-Gitea-Event") or headers.get("X-GitHub-Event", "")
        if name == "push":
            return [parse_push(name, payload)]
        if name == "pull_request":
            return [parse_pull_request(name, payload, PR_ACTIONS)]
        return [WebhookEvent(kind=EventKind.OTHER, name=name or "unknown")]
