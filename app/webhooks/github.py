"""GitHub: ``X-Hub-Signature-256: sha256=<hex>``; push, pull_request and ping events.

The push and pull request readers are shared with Gitea, whose payloads have the same
shape (its pull request actions differ in name only).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.types import SourceType
from app.webhooks.base import Provider, signed_hex
from app.webhooks.events import (
    EventKind,
    PullRequest,
    PullRequestAction,
    WebhookEvent,
    changed_files,
    dig,
    is_deleted,
    same_repository,
    split_ref,
    text,
)

MAX_LISTED_COMMITS = 2048  # GitHub lists at most this many; past it the files are unknown
PR_ACTIONS = {
    "opened": PullRequestAction.OPEN,
    "reopened": PullRequestAction.OPEN,
    "synchronize": PullRequestAction.SYNC,
    "closed": PullRequestAction.CLOSE,
}


def parse_push(name: str, payload: dict[str, Any]) -> WebhookEvent:
    """A GitHub-shaped push: ``ref``, ``after``, ``head_commit``, ``commits[]``."""
    kind, ref = split_ref(text(payload.get("ref")))
    after = text(payload.get("after"))
    head = payload.get("head_commit") if isinstance(payload.get("head_commit"), dict) else {}
    # an annotated tag's ``after`` is the tag object: build the commit it points at
    sha = text(dig(head, "id")) if kind is EventKind.TAG else None
    commits = payload.get("commits")
    listed = commits if isinstance(commits, list) else []
    return WebhookEvent(
        kind=kind or EventKind.OTHER,
        name=name,
        ref=ref,
        sha=sha or after,
        deleted=payload.get("deleted") is True or is_deleted(after),
        message=text(dig(head, "message")),
        author=text(dig(payload, "pusher", "name"))
        or text(dig(payload, "pusher", "login"))
        or text(dig(head, "author", "name")),
        files=None if len(listed) >= MAX_LISTED_COMMITS else changed_files(listed),
        default_branch=text(dig(payload, "repository", "default_branch")),
    )


def parse_pull_request(
    name: str, payload: dict[str, Any], actions: Mapping[str, PullRequestAction]
) -> WebhookEvent:
    pr = payload.get("pull_request") if isinstance(payload.get("pull_request"), dict) else {}
    number = payload.get("number", dig(pr, "number"))
    head_ref = text(dig(pr, "head", "ref"))
    head_sha = text(dig(pr, "head", "sha"))
    # Gitea's head.repo_id/base.repo_id, else both hosts' head.repo/base.repo (GitHub sends
    # head.repo null once the fork is deleted: not the same repository, then)
    same = same_repository(dig(pr, "head"), dig(pr, "base"), "repo_id") or same_repository(
        dig(pr, "head", "repo"), dig(pr, "base", "repo"), "id", "full_name"
    )
    return WebhookEvent(
        kind=EventKind.PULL_REQUEST if isinstance(number, int) else EventKind.OTHER,
        name=name,
        ref=head_ref,
        sha=head_sha,
        default_branch=text(dig(payload, "repository", "default_branch")),
        author=text(dig(payload, "sender", "login")) or text(dig(pr, "user", "login")),
        pull_request=PullRequest(
            number=number if isinstance(number, int) else 0,
            action=actions.get(str(payload.get("action")), PullRequestAction.OTHER),
            head_ref=head_ref,
            head_sha=head_sha,
            base_ref=text(dig(pr, "base", "ref")),
            title=text(dig(pr, "title")),
            merged=dig(pr, "merged") is True,
            same_repository=same,
        ),
    )


class GitHub(Provider):
    name = "github"
    families = frozenset({SourceType.GITHUB, SourceType.GIT})
    delivery_headers = ("X-GitHub-Delivery",)
    signature_headers = ("X-Hub-Signature-256",)

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
        return signed_hex(headers.get("X-Hub-Signature-256"), secret, body, prefix="sha256=")

    def parse(self, headers: Mapping[str, str], payload: dict[str, Any]) -> list[WebhookEvent]:
        name = headers.get("X-GitHub-Event", "")
        if name == "ping":
            return [WebhookEvent(kind=EventKind.PING, name=name)]
        if name == "push":
            return [parse_push(name, payload)]
        if name == "pull_request":
            return [parse_pull_request(name, payload, PR_ACTIONS)]
        return [WebhookEvent(kind=EventKind.OTHER, name=name or "unknown")]
