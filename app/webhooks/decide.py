"""What one event means for one application: deploy, open or close a preview, or not.

Pure: it reads the application's settings and the event, and writes nothing, so every
rule (branch, trigger type, autoDeploy, skip markers, watch paths) is tested alone.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Protocol

from wcmatch import glob

from app.types import GIT_SOURCES, DeploymentTrigger, SourceType, TriggerType
from app.webhooks.events import EventKind, PullRequestAction, WebhookEvent

SKIP_MARKERS = ("[skip ci]", "[ci skip]", "[no ci]", "[skip deploy]")
GLOB_FLAGS = glob.GLOBSTAR | glob.DOTMATCH  # `*` stays in one folder, `**` crosses them
_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_BAD_REF = re.compile(r"^-|\.\.|[\x00-\x20\x7f~^:?*\[\\]|@\{|\.lock$|/$|^/")
MAX_TITLE = 120


class AppSettings(Protocol):
    """The columns of ``applications`` a decision reads."""

    source_type: str
    branch: str | None
    auto_deploy: bool
    trigger_type: str
    watch_paths: list[str]
    preview_enabled: bool
    preview_allow_forks: bool
    rollback_pinned_id: str | None  # a rollback was asked for since the last manual deploy


class Action(enum.StrEnum):
    DEPLOY = "deploy"
    OPEN_PREVIEW = "open_preview"
    CLOSE_PREVIEW = "close_preview"
    NOTHING = "nothing"


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    outcome: str  # deployed | skipped | ignored | pong | closed (what the response says)
    reason: str
    trigger: DeploymentTrigger | None = None
    sha: str | None = None
    ref: str | None = None
    ref_kind: str = "branch"
    title: str | None = None
    description: str | None = None
    number: int | None = None  # the pull request's
    fork: bool = False  # the pull request's head is another repository's


def nothing(outcome: str, reason: str) -> Decision:
    return Decision(Action.NOTHING, outcome, reason)


def decide(app: AppSettings, event: WebhookEvent, *, provider: str) -> Decision:
    """The one thing to do about ``event`` (``provider`` names it in descriptions)."""
    if event.kind is EventKind.PING:
        return nothing("pong", "the hook works")
    if SourceType(app.source_type) not in GIT_SOURCES:
        return nothing("ignored", f"a {app.source_type} application is not built from git")
    if event.kind is EventKind.PULL_REQUEST:
        return _pull_request(app, event)
    if event.kind not in (EventKind.PUSH, EventKind.TAG):
        return nothing("ignored", f"{event.name!r} events do not deploy")
    if event.deleted:
        what = "tag" if event.kind is EventKind.TAG else "branch"
        return nothing("ignored", f"{what} {event.ref!r} was deleted")
    return _push(app, event, provider)


def _push(app: AppSettings, event: WebhookEvent, provider: str) -> Decision:
    is_tag = event.kind is EventKind.TAG
    wants_tags = app.trigger_type == TriggerType.TAG.value
    if is_tag != wants_tags:
        what = "tag" if is_tag else "branch"
        return nothing(
            "ignored", f"a {what} push; the application's triggerType is {app.trigger_type}"
        )
    followed = app.branch or event.default_branch  # no branch set: the repository's default
    if not is_tag and event.ref != followed:
        return nothing("ignored", f"push to {event.ref!r}; the application follows {followed!r}")
    if not app.auto_deploy:
        return nothing("ignored", "autoDeploy is off")
    if not event.ref or not valid_ref(event.ref):
        return nothing("ignored", f"the ref {event.ref!r} is not a usable git ref name")
    if app.rollback_pinned_id:
        return nothing(
            "skipped",
            f"the application was rolled back (deployment {app.rollback_pinned_id}): push and "
            "tag webhooks do not deploy over a rollback until the next manual deploy "
            "(deployApplication or redeployApplication)",
        )
    marker = skip_marker(event.message)
    if marker:
        return nothing("skipped", f"the head commit message says {marker}")
    reason = "pushed"
    if not is_tag and app.watch_paths:
        if event.files is None:
            reason = "the payload lists no changed files, so watch paths were not applied"
        elif not watched(app.watch_paths, event.files):
            return nothing("skipped", "no changed file matches the watch paths")
        else:
            reason = "a changed file matches the watch paths"
    sha = full_sha(event.sha)
    return Decision(
        Action.DEPLOY,
        "deployed",
        reason,
        trigger=DeploymentTrigger.TAG if is_tag else DeploymentTrigger.PUSH,
        sha=sha,
        ref=event.ref,
        ref_kind="tag" if is_tag else "branch",
        title=first_line(event.message) or f"{'Tag' if is_tag else 'Push to'} {event.ref}",
        description=f"{provider} {'tag' if is_tag else 'push'} by {event.author or 'unknown'}"
        f" at {event.sha or 'an unnamed commit'}",
    )


def _pull_request(app: AppSettings, event: WebhookEvent) -> Decision:
    pr = event.pull_request
    assert pr is not None
    if pr.action is PullRequestAction.CLOSE:  # even with previews off now: clean up
        how = "merged" if pr.merged else "closed"
        return Decision(
            Action.CLOSE_PREVIEW, "closed", f"pull request #{pr.number} {how}", number=pr.number
        )
    if pr.action is PullRequestAction.OTHER:
        return nothing("ignored", f"pull request #{pr.number}: nothing new to build")
    if not app.preview_enabled:
        return nothing("ignored", "preview deployments are off")
    followed = app.branch or event.default_branch
    if pr.base_ref and followed and pr.base_ref != followed:
        return nothing("ignored", f"pull request into {pr.base_ref!r}, not {followed!r}")
    if not pr.same_repository and not app.preview_allow_forks:
        return nothing(
            "ignored",
            f"pull request #{pr.number} comes from another repository (a fork); "
            "previewAllowForks is off, so it is not built",
        )
    if not pr.head_ref or not valid_ref(pr.head_ref):
        return nothing("ignored", f"pull request head {pr.head_ref!r} is not a usable branch")
    return Decision(
        Action.OPEN_PREVIEW,
        "deployed",
        f"pull request #{pr.number} {pr.action.value}"
        + ("" if pr.same_repository else " (from a fork: previewEnv only, no credentials)"),
        trigger=DeploymentTrigger.PULL_REQUEST,
        sha=full_sha(pr.head_sha),
        ref=pr.head_ref,
        title=f"PR #{pr.number}: {first_line(pr.title) or pr.head_ref}"[:MAX_TITLE],
        description=f"pull request #{pr.number} by {event.author or 'unknown'}"
        f" at {pr.head_sha or pr.head_ref}",
        number=pr.number,
        fork=not pr.same_repository,
    )


def skip_marker(message: str | None) -> str | None:
    lowered = (message or "").lower()
    return next((m for m in SKIP_MARKERS if m in lowered), None)


def watched(patterns: list[str], files: frozenset[str]) -> bool:
    """True if any changed file matches any pattern (glob: ``*`` within one folder)."""
    return any(glob.globmatch(f, patterns, flags=GLOB_FLAGS) for f in files)


def full_sha(sha: str | None) -> str | None:
    """The sha when it names one commit for sure; abbreviated ones are dropped."""
    return sha.lower() if sha and _FULL_SHA.fullmatch(sha.lower()) else None


def valid_ref(ref: str) -> bool:
    return len(ref) <= 255 and not _BAD_REF.search(ref)


def first_line(message: str | None) -> str | None:
    line = (message or "").strip().splitlines()[0:1]
    if not line or not line[0].strip():
        return None
    title = line[0].strip()
    return title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 1] + "…"
