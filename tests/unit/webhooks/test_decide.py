"""The decision rules alone: branch, trigger type, autoDeploy, skip markers, watch paths,
pull requests."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from app.types import DeploymentTrigger
from app.webhooks.decide import Action, decide, first_line, watched
from app.webhooks.events import EventKind, PullRequest, PullRequestAction, WebhookEvent

SHA = "59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5"


@dataclass
class App:
    source_type: str = "GITHUB"
    branch: str | None = "main"
    auto_deploy: bool = True
    trigger_type: str = "PUSH"
    watch_paths: list[str] = field(default_factory=list)
    preview_enabled: bool = False
    preview_allow_forks: bool = False
    rollback_pinned_id: str | None = None


PUSH = WebhookEvent(
    kind=EventKind.PUSH,
    name="push",
    ref="main",
    sha=SHA,
    message="Fix the footer\n\nlonger text",
    author="monalisa",
    files=frozenset({"src/app.py", "README.md"}),
)
TAG = replace(PUSH, kind=EventKind.TAG, ref="v1.2.0", files=frozenset())


def test_push_to_the_branch_deploys_that_commit() -> None:
    d = decide(App(), PUSH, provider="github")
    assert d.action is Action.DEPLOY and d.outcome == "deployed"
    assert (d.trigger, d.sha, d.ref, d.ref_kind) == (DeploymentTrigger.PUSH, SHA, "main", "branch")
    assert d.title == "Fix the footer"
    assert d.description is not None and "monalisa" in d.description and SHA in d.description


def test_push_to_another_branch_is_ignored() -> None:
    d = decide(App(), replace(PUSH, ref="develop"), provider="github")
    assert (d.action, d.outcome) == (Action.NOTHING, "ignored")
    assert "develop" in d.reason and "main" in d.reason


def test_without_a_branch_the_repository_default_is_followed() -> None:
    event = replace(PUSH, default_branch="main")
    assert decide(App(branch=None), event, provider="github").action is Action.DEPLOY
    other = replace(PUSH, ref="dev", default_branch="main")
    assert decide(App(branch=None), other, provider="github").outcome == "ignored"


def test_branch_deletion_is_ignored() -> None:
    d = decide(App(), replace(PUSH, deleted=True, sha="0" * 40), provider="github")
    assert d.outcome == "ignored" and "deleted" in d.reason


def test_auto_deploy_off_acknowledges_only() -> None:
    d = decide(App(auto_deploy=False), PUSH, provider="github")
    assert (d.action, d.outcome) == (Action.NOTHING, "ignored")
    assert "autoDeploy" in d.reason


def test_tags_deploy_only_with_trigger_type_tag() -> None:
    assert decide(App(), TAG, provider="github").outcome == "ignored"
    d = decide(App(trigger_type="TAG"), TAG, provider="github")
    assert (d.trigger, d.sha, d.ref, d.ref_kind) == (DeploymentTrigger.TAG, SHA, "v1.2.0", "tag")
    # and with TAG, branch pushes no longer deploy
    assert decide(App(trigger_type="TAG"), PUSH, provider="github").outcome == "ignored"


def test_tags_ignore_watch_paths() -> None:
    d = decide(App(trigger_type="TAG", watch_paths=["docs/**"]), TAG, provider="github")
    assert d.action is Action.DEPLOY


@pytest.mark.parametrize(
    "marker", ["[skip ci]", "[ci skip]", "[no ci]", "[skip deploy]", "[SKIP CI]"]
)
def test_skip_markers_in_the_head_commit_skip(marker: str) -> None:
    d = decide(App(), replace(PUSH, message=f"Typo {marker}\n"), provider="github")
    assert (d.action, d.outcome) == (Action.NOTHING, "skipped")
    assert marker.lower() in d.reason


def test_skip_marker_applies_to_tags_too() -> None:
    event = replace(TAG, message="Release [skip deploy]")
    assert decide(App(trigger_type="TAG"), event, provider="github").outcome == "skipped"


@pytest.mark.parametrize(
    ("patterns", "files", "hit"),
    [
        (["src/**"], {"src/a/b/c.py"}, True),
        (["src/**"], {"srcx/a.py", "README.md"}, False),
        (["*.md"], {"README.md"}, True),
        (["*.md"], {"docs/guide.md"}, False),  # * stays in one folder
        (["**/*.md"], {"docs/guide.md"}, True),
        (["docs/*.txt"], {"docs/a.txt"}, True),
        (["docs/*.txt"], {"docs/deep/a.txt"}, False),
        (["api/**", "web/**"], {"web/index.html"}, True),
        (["src/**"], {"src/.env"}, True),  # dot files count
        (["src/**"], set(), False),
    ],
)
def test_watch_path_globs(patterns: list[str], files: set[str], hit: bool) -> None:
    assert watched(patterns, frozenset(files)) is hit


def test_no_changed_file_under_the_watch_paths_skips() -> None:
    d = decide(App(watch_paths=["api/**"]), PUSH, provider="github")
    assert (d.action, d.outcome) == (Action.NOTHING, "skipped")
    assert "watch paths" in d.reason


def test_a_changed_file_under_the_watch_paths_deploys() -> None:
    d = decide(App(watch_paths=["src/**"]), PUSH, provider="github")
    assert d.action is Action.DEPLOY and "watch paths" in d.reason


def test_removed_files_count_for_watch_paths() -> None:
    event = replace(PUSH, files=frozenset({"api/old.py"}))  # the parser merges removed files in
    assert decide(App(watch_paths=["api/**"]), event, provider="github").action is Action.DEPLOY


def test_unknown_files_deploy_and_say_so() -> None:
    d = decide(App(watch_paths=["api/**"]), replace(PUSH, files=None), provider="bitbucket")
    assert d.action is Action.DEPLOY
    assert "lists no changed files" in d.reason


def test_abbreviated_or_bad_shas_are_not_pinned() -> None:
    assert decide(App(), replace(PUSH, sha=SHA[:12]), provider="github").sha is None
    assert decide(App(), replace(PUSH, sha=SHA.upper()), provider="github").sha == SHA


@pytest.mark.parametrize("ref", ["-bad", "a..b", "a b", "x.lock", "a\x00", "refs/../x"])
def test_unusable_ref_names_are_ignored(ref: str) -> None:
    d = decide(App(branch=ref), replace(PUSH, ref=ref), provider="github")
    assert d.outcome == "ignored" and "ref" in d.reason


def test_ping_pongs_and_other_events_are_ignored() -> None:
    assert decide(App(), WebhookEvent(EventKind.PING, "ping"), provider="github").outcome == "pong"
    other = decide(App(), WebhookEvent(EventKind.OTHER, "issues"), provider="github")
    assert (other.outcome, other.action) == ("ignored", Action.NOTHING)


def test_long_titles_are_cut() -> None:
    title = first_line("x" * 500 + "\nbody")
    assert title is not None and len(title) == 120 and title.endswith("…")
    assert first_line("\n\n") is None


def pr_event(
    action: PullRequestAction,
    *,
    base: str = "main",
    sha: str | None = SHA,
    same_repository: bool = True,
) -> WebhookEvent:
    return WebhookEvent(
        kind=EventKind.PULL_REQUEST,
        name="pull_request",
        author="monalisa",
        pull_request=PullRequest(
            number=42,
            action=action,
            head_ref="feature/dark-mode",
            head_sha=sha,
            base_ref=base,
            title="Dark mode",
            merged=action is PullRequestAction.CLOSE,
            same_repository=same_repository,
        ),
    )


@pytest.mark.parametrize("action", [PullRequestAction.OPEN, PullRequestAction.SYNC])
def test_pull_request_open_or_sync_opens_a_preview(action: PullRequestAction) -> None:
    d = decide(App(preview_enabled=True), pr_event(action), provider="github")
    assert d.action is Action.OPEN_PREVIEW
    assert (d.trigger, d.sha, d.ref, d.number) == (
        DeploymentTrigger.PULL_REQUEST,
        SHA,
        "feature/dark-mode",
        42,
    )
    assert d.title == "PR #42: Dark mode"


def test_pull_request_with_previews_off_is_ignored() -> None:
    d = decide(App(), pr_event(PullRequestAction.OPEN), provider="github")
    assert (d.action, d.outcome) == (Action.NOTHING, "ignored")


def test_pull_request_into_another_branch_is_ignored() -> None:
    d = decide(
        App(preview_enabled=True), pr_event(PullRequestAction.OPEN, base="dev"), provider="x"
    )
    assert d.action is Action.NOTHING and "dev" in d.reason


def test_closing_always_closes_even_with_previews_off_now() -> None:
    d = decide(App(), pr_event(PullRequestAction.CLOSE), provider="github")
    assert (d.action, d.outcome, d.number) == (Action.CLOSE_PREVIEW, "closed", 42)
    assert "merged" in d.reason


def test_pull_request_edits_build_nothing() -> None:
    d = decide(App(preview_enabled=True), pr_event(PullRequestAction.OTHER), provider="github")
    assert d.action is Action.NOTHING


def test_bitbucket_short_pr_hash_builds_the_branch_head() -> None:
    d = decide(
        App(preview_enabled=True),
        pr_event(PullRequestAction.OPEN, sha="ec26c3e57ca3"),
        provider="bitbucket",
    )
    assert d.action is Action.OPEN_PREVIEW and d.sha is None and d.ref == "feature/dark-mode"


@pytest.mark.parametrize("source", ["DOCKER", "DROP"])
def test_non_git_applications_are_not_deployed(source: str) -> None:
    assert decide(App(source_type=source), PUSH, provider="github").outcome == "ignored"


@pytest.mark.parametrize("action", [PullRequestAction.OPEN, PullRequestAction.SYNC])
def test_a_fork_pull_request_is_not_built_unless_forks_are_allowed(
    action: PullRequestAction,
) -> None:
    fork = pr_event(action, same_repository=False)
    d = decide(App(preview_enabled=True), fork, provider="github")
    assert (d.action, d.outcome) == (Action.NOTHING, "ignored")
    assert "fork" in d.reason and "previewAllowForks" in d.reason
    allowed = decide(App(preview_enabled=True, preview_allow_forks=True), fork, provider="github")
    assert allowed.action is Action.OPEN_PREVIEW and allowed.fork
    assert "from a fork" in allowed.reason
    own = decide(App(preview_enabled=True), pr_event(action), provider="github")
    assert own.action is Action.OPEN_PREVIEW and not own.fork


def test_a_fork_pull_request_closing_still_closes_its_preview() -> None:
    d = decide(App(), pr_event(PullRequestAction.CLOSE, same_repository=False), provider="x")
    assert d.action is Action.CLOSE_PREVIEW


@pytest.mark.parametrize("event", [PUSH, TAG], ids=["push", "tag"])
def test_after_a_rollback_pushes_and_tags_are_skipped_saying_why(event: WebhookEvent) -> None:
    trigger = "TAG" if event is TAG else "PUSH"
    d = decide(App(trigger_type=trigger, rollback_pinned_id="01abc"), event, provider="github")
    assert (d.action, d.outcome) == (Action.NOTHING, "skipped")
    assert "rolled back (deployment 01abc)" in d.reason and "next manual deploy" in d.reason
    assert decide(App(trigger_type=trigger), event, provider="github").action is Action.DEPLOY


def test_a_rollback_does_not_stop_previews() -> None:
    pr = WebhookEvent(
        kind=EventKind.PULL_REQUEST,
        name="pull_request",
        ref=None,
        sha=SHA,
        pull_request=PullRequest(
            number=7,
            action=PullRequestAction.OPEN,
            head_ref="feature",
            head_sha=SHA,
            base_ref="main",
            title="t",
            same_repository=True,
        ),
    )
    d = decide(App(preview_enabled=True, rollback_pinned_id="01abc"), pr, provider="github")
    assert d.action is Action.OPEN_PREVIEW
