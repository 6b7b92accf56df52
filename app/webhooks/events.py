"""What a webhook delivery says, whatever provider sent it: one small event model."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class EventKind(enum.StrEnum):
    PUSH = "push"  # commits pushed to a branch
    TAG = "tag"  # a tag pushed
    PULL_REQUEST = "pull_request"  # a pull or merge request changed
    PING = "ping"  # the provider checking the hook
    OTHER = "other"  # anything else: acknowledged, ignored


class PullRequestAction(enum.StrEnum):
    OPEN = "open"  # opened or reopened
    SYNC = "sync"  # new commits on its head branch
    CLOSE = "close"  # closed or merged
    OTHER = "other"  # edited, labelled, approved ...: nothing to build


@dataclass(frozen=True, slots=True)
class PullRequest:
    number: int
    action: PullRequestAction
    head_ref: str | None
    head_sha: str | None
    base_ref: str | None
    title: str | None
    merged: bool = False
    # the head branch lives in the base repository itself; False for a fork, or when the
    # payload does not say (a pull request not proven to be the repository's own is a fork's)
    same_repository: bool = False


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One delivery, parsed. ``ref`` is a branch or tag name (no ``refs/...`` prefix);
    ``files`` is every path added, modified or removed by the pushed commits, or None
    when the provider does not say (Bitbucket) or the list is cut short."""

    kind: EventKind
    name: str  # the provider's own event name, for the record
    ref: str | None = None
    sha: str | None = None
    deleted: bool = False
    message: str | None = None  # the head commit's message
    author: str | None = None
    files: frozenset[str] | None = None
    default_branch: str | None = None  # the repository's, when the payload says
    pull_request: PullRequest | None = None


ZERO_SHA = "0" * 40


def dig(data: Any, *path: str | int) -> Any:
    """``data[p0][p1]...`` or None where any step is missing or of the wrong type."""
    for key in path:
        if isinstance(key, int):
            if not isinstance(data, list) or not -len(data) <= key < len(data):
                return None
        elif not isinstance(data, dict):
            return None
        data = data[key] if isinstance(key, int) else data.get(key)
    return data


def text(value: Any) -> str | None:
    """A non-empty string, or None."""
    return value if isinstance(value, str) and value else None


def split_ref(ref: str | None) -> tuple[EventKind | None, str | None]:
    """``refs/heads/main`` -> (PUSH, "main"); ``refs/tags/v1`` -> (TAG, "v1")."""
    if not ref:
        return None, None
    if ref.startswith("refs/heads/"):
        return EventKind.PUSH, ref.removeprefix("refs/heads/")
    if ref.startswith("refs/tags/"):
        return EventKind.TAG, ref.removeprefix("refs/tags/")
    return None, ref


def is_deleted(sha: str | None) -> bool:
    return sha is not None and set(sha) == {"0"}


def changed_files(commits: Any) -> frozenset[str]:
    """Every path named in the commits' ``added``/``modified``/``removed`` lists."""
    files: set[str] = set()
    for commit in commits if isinstance(commits, list) else []:
        for key in ("added", "modified", "removed"):
            paths = dig(commit, key)
            files.update(p for p in paths or [] if isinstance(p, str))
    return frozenset(files)


def same_repository(head: Any, base: Any, *keys: str) -> bool:
    """True when ``head`` and ``base`` (repository objects) name the same repository by the
    first of ``keys`` both carry; False when either is missing or no key is in both."""
    if not isinstance(head, dict) or not isinstance(base, dict):
        return False
    for key in keys:
        mine, theirs = head.get(key), base.get(key)
        if isinstance(mine, str | int) and isinstance(theirs, str | int) and mine != "":
            return mine == theirs and type(mine) is type(theirs)
    return False
