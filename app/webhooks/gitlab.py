"""GitLab: ``X-Gitlab-Token`` carries the secret itself; push, tag push, merge requests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.types import SourceType
from app.webhooks.base import Provider, same
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

KINDS = {"Push Hook": "push", "Tag Push Hook": "tag_push", "Merge Request Hook": "merge_request"}
MR_ACTIONS = {
    "open": PullRequestAction.OPEN,
    "reopen": PullRequestAction.OPEN,
    "update": PullRequestAction.SYNC,
    "close": PullRequestAction.CLOSE,
    "merge": PullRequestAction.CLOSE,
}


def _push(name: str, payload: dict[str, Any]) -> WebhookEvent:
    kind, ref = split_ref(text(payload.get("ref")))
    after = text(payload.get("after"))
    # checkout_sha is the commit (a tag push's ``after`` may be the tag object)
    sha = text(payload.get("checkout_sha")) or after
    listed = payload.get("commits")
    commits: list[Any] = listed if isinstance(listed, list) else []
    head = next((c for c in commits if dig(c, "id") == sha), None)
    total = payload.get("total_commits_count")
    # GitLab lists at most 20 commits: past that the changed files are unknown
    complete = not isinstance(total, int) or total <= len(commits)
    return WebhookEvent(
        kind=kind or EventKind.OTHER,
        name=name,
        ref=ref,
        sha=sha,
        deleted=is_deleted(after),
        message=text(dig(head, "message")),
        author=text(payload.get("user_username")) or text(payload.get("user_name")),
        files=changed_files(commits) if complete else None,
        default_branch=text(dig(payload, "project", "default_branch")),
    )


def _target_ids(attrs: dict[str, Any]) -> dict[str, Any]:
    """The target project id under the source's key, for :func:`same_repository`."""
    return {"source_project_id": attrs.get("target_project_id")}


def _merge_request(name: str, payload: dict[str, Any]) -> WebhookEvent:
    attrs = payload.get("object_attributes")
    attrs = attrs if isinstance(attrs, dict) else {}
    action = MR_ACTIONS.get(str(attrs.get("action")), PullRequestAction.OTHER)
    if action is PullRequestAction.SYNC and not text(attrs.get("oldrev")):
        action = PullRequestAction.OTHER  # an update without new commits: title, labels ...
    number = attrs.get("iid")
    head_ref = text(attrs.get("source_branch"))
    head_sha = text(dig(attrs, "last_commit", "id"))
    return WebhookEvent(
        kind=EventKind.PULL_REQUEST if isinstance(number, int) else EventKind.OTHER,
        name=name,
        ref=head_ref,
        sha=head_sha,
        default_branch=text(dig(payload, "project", "default_branch")),
        author=text(dig(payload, "user", "username")),
        pull_request=PullRequest(
            number=number if isinstance(number, int) else 0,
            action=action,
            head_ref=head_ref,
            head_sha=head_sha,
            base_ref=text(attrs.get("target_branch")),
            title=text(attrs.get("title")),
            merged=attrs.get("action") == "merge" or attrs.get("state") == "merged",
            same_repository=same_repository(attrs, _target_ids(attrs), "source_project_id"),
        ),
    )


class GitLab(Provider):
    name = "gitlab"
    families = frozenset({SourceType.GITLAB, SourceType.GIT})
    delivery_headers = ("X-Gitlab-Event-UUID", "Idempotency-Key", "X-Gitlab-Webhook-UUID")
    signature_headers = ("X-Gitlab-Token",)

    def verify(self, headers: Mapping[str, str], body: bytes, secret: str) -> bool:  # noqa: ARG002
        return same(secret, headers.get("X-Gitlab-Token"))

    def parse(self, headers: Mapping[str, str], payload: dict[str, Any]) -> list[WebhookEvent]:
        header = headers.get("X-Gitlab-Event", "")
        kind = KINDS.get(header) or str(payload.get("object_kind") or "")
        name = header or kind or "unknown"
        if kind in ("push", "tag_push"):
            return [_push(name, payload)]
        if kind == "merge_request":
            return [_merge_request(name, payload)]
        return [WebhookEvent(kind=EventKind.OTHER, name=name)]
