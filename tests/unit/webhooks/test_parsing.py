"""Every recorded sample parses into the one event model with the right ref, commit and files."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from app.webhooks.events import EventKind, PullRequestAction, WebhookEvent
from app.webhooks.providers import PROVIDERS
from tests.fixtures.webhooks.samples import (
    FORK_SAMPLES,
    event_name,
    load,
    pull_request,
    sample,
)
from tests.fixtures.webhooks.samples import PROVIDERS as NAMES

PUSH_SHA = {
    "github": "59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5",
    "gitlab": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
    "gitea": "bffeb74224043ba2feb48d137756c8a9331c449a",
    "bitbucket": "10f5b4a2f0c2daf86d429c22f6a8c34d8a6ab911",
}
PR = {
    "github": (
        42,
        "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
        "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
    ),
    "gitlab": (
        7,
        "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
        "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
    ),
    "gitea": (
        3,
        "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
        "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
    ),
    "bitbucket": (5, "ec26c3e57ca3", "f95f852bd8fc"),  # Bitbucket sends 12-digit hashes
}
FILES = frozenset({"src/pages/contact.py", "src/app.py", "src/templates/footer.html", "README.md"})


def parse(provider: str, kind: str, name: str | None = None) -> WebhookEvent:
    header = {
        "github": "X-GitHub-Event",
        "gitlab": "X-Gitlab-Event",
        "gitea": "X-Gitea-Event",
        "bitbucket": "X-Event-Key",
    }[provider]
    payload = load(provider, name) if name else sample(provider, kind)
    events = PROVIDERS[provider].parse(Headers({header: event_name(provider, kind)}), payload)
    assert len(events) == 1
    return events[0]


@pytest.mark.parametrize("provider", NAMES)
def test_push(provider: str) -> None:
    event = parse(provider, "push")
    assert event.kind is EventKind.PUSH
    assert (event.ref, event.sha, event.deleted) == ("main", PUSH_SHA[provider], False)
    assert event.message is not None and event.message.startswith("Fix the footer links")
    assert event.author
    # Bitbucket lists no files; the others list every commit's
    assert event.files == (None if provider == "bitbucket" else FILES)


@pytest.mark.parametrize("provider", NAMES)
def test_tag_push_builds_the_commit_not_the_tag_object(provider: str) -> None:
    event = parse(provider, "tag")
    assert event.kind is EventKind.TAG
    assert (event.ref, event.sha) == ("v1.2.0", PUSH_SHA[provider])
    assert not event.deleted


@pytest.mark.parametrize("provider", NAMES)
@pytest.mark.parametrize(
    ("kind", "action", "which"),
    [
        ("pr_open", PullRequestAction.OPEN, 1),
        ("pr_sync", PullRequestAction.SYNC, 2),
        ("pr_close", PullRequestAction.CLOSE, 2),
    ],
)
def test_pull_requests(provider: str, kind: str, action: PullRequestAction, which: int) -> None:
    event = parse(provider, kind)
    pr = event.pull_request
    assert event.kind is EventKind.PULL_REQUEST and pr is not None
    assert pr.number == PR[provider][0]
    assert pr.action is action
    assert (pr.head_ref, pr.base_ref) == ("feature/dark-mode", "main")
    assert pr.head_sha == PR[provider][which]
    assert pr.title == "Dark mode for the dashboard"
    assert pr.merged is (kind == "pr_close")


@pytest.mark.parametrize("provider", NAMES)
@pytest.mark.parametrize("kind", ["pr_open", "pr_sync", "pr_close"])
def test_a_pull_request_within_the_repository_is_not_a_fork(provider: str, kind: str) -> None:
    pr = parse(provider, kind).pull_request
    assert pr is not None and pr.same_repository


@pytest.mark.parametrize("provider", NAMES)
def test_a_pull_request_from_a_fork_is_recognised(provider: str) -> None:
    event = parse(provider, "pr_open", FORK_SAMPLES[provider])
    pr = event.pull_request
    assert event.kind is EventKind.PULL_REQUEST and pr is not None
    assert pr.action is PullRequestAction.OPEN and pr.head_ref == "feature/dark-mode"
    assert not pr.same_repository


def _parse_payload(provider: str, payload: dict[str, object]) -> WebhookEvent:
    header = {"github": "X-GitHub-Event", "gitlab": "X-Gitlab-Event", "gitea": "X-Gitea-Event"}
    headers = Headers({header.get(provider, "X-Event-Key"): event_name(provider, "pr_open")})
    return PROVIDERS[provider].parse(headers, payload)[0]


@pytest.mark.parametrize("provider", NAMES)
def test_a_pull_request_that_does_not_say_where_its_head_is_counts_as_a_fork(
    provider: str,
) -> None:
    """GitHub sends ``head.repo: null`` once the fork is deleted; a payload without the
    repository (or project) ids cannot prove the head is the base repository's own."""
    payload = pull_request(provider, "pr_open", number=1, head_ref="f", sha="a" * 40)
    if provider == "gitlab":
        del payload["object_attributes"]["source_project_id"]
    elif provider == "bitbucket":
        del payload["pullrequest"]["source"]["repository"]
    else:
        payload["pull_request"]["head"]["repo"] = None
        payload["pull_request"]["head"].pop("repo_id", None)
    pr = _parse_payload(provider, payload).pull_request
    assert pr is not None and not pr.same_repository


@pytest.mark.parametrize("provider", NAMES)
def test_the_fork_helper_makes_any_pull_request_a_fork(provider: str) -> None:
    for kind in ("pr_open", "pr_sync", "pr_close"):
        payload = pull_request(provider, kind, number=1, head_ref="f", sha="a" * 40, fork=True)
        pr = _parse_payload(provider, payload).pull_request
        assert pr is not None and not pr.same_repository, (provider, kind)


def test_gitea_and_github_compare_repository_ids_before_names() -> None:
    """A fork renamed to the parent's full name (another owner's, so never equal in
    practice) is still told apart by its id."""
    payload = pull_request("github", "pr_open", number=1, head_ref="f", sha="a" * 40, fork=True)
    payload["pull_request"]["head"]["repo"]["full_name"] = "acme/web"
    pr = _parse_payload("github", payload).pull_request
    assert pr is not None and not pr.same_repository


def test_github_ping() -> None:
    events = PROVIDERS["github"].parse(Headers({"X-GitHub-Event": "ping"}), load("github", "ping"))
    assert [e.kind for e in events] == [EventKind.PING]


def test_gitlab_falls_back_on_object_kind_without_the_header() -> None:
    events = PROVIDERS["gitlab"].parse(Headers({}), sample("gitlab", "tag"))
    assert events[0].kind is EventKind.TAG and events[0].ref == "v1.2.0"


def test_gitlab_update_without_new_commits_is_not_a_sync() -> None:
    payload = sample("gitlab", "pr_sync")
    del payload["object_attributes"]["oldrev"]
    event = PROVIDERS["gitlab"].parse(Headers({"X-Gitlab-Event": "Merge Request Hook"}), payload)[0]
    assert event.pull_request is not None
    assert event.pull_request.action is PullRequestAction.OTHER


def test_gitlab_files_are_unknown_when_commits_were_cut_short() -> None:
    payload = sample("gitlab", "push")
    payload["total_commits_count"] = 35  # GitLab lists 20 at most
    event = PROVIDERS["gitlab"].parse(Headers({"X-Gitlab-Event": "Push Hook"}), payload)[0]
    assert event.files is None


@pytest.mark.parametrize("provider", ["github", "gitea", "gitlab"])
def test_branch_deletion(provider: str) -> None:
    payload = sample(provider, "push")
    payload["after"] = "0" * 40
    if provider == "gitlab":
        payload |= {"checkout_sha": None, "commits": [], "total_commits_count": 0}
    else:
        payload |= {"deleted": True, "head_commit": None, "commits": []}
    header = {"github": "X-GitHub-Event", "gitea": "X-Gitea-Event", "gitlab": "X-Gitlab-Event"}
    name = "Push Hook" if provider == "gitlab" else "push"
    event = PROVIDERS[provider].parse(Headers({header[provider]: name}), payload)[0]
    assert event.kind is EventKind.PUSH and event.deleted


def test_bitbucket_branch_deletion_has_only_old() -> None:
    payload = sample("bitbucket", "push")
    payload["push"]["changes"][0] |= {"new": None, "closed": True}
    event = PROVIDERS["bitbucket"].parse(Headers({"X-Event-Key": "repo:push"}), payload)[0]
    assert (event.kind, event.ref, event.deleted) == (EventKind.PUSH, "main", True)


def test_bitbucket_push_of_several_refs_gives_one_event_each() -> None:
    payload = sample("bitbucket", "push")
    tag = sample("bitbucket", "tag")["push"]["changes"][0]
    payload["push"]["changes"].append(tag)
    events = PROVIDERS["bitbucket"].parse(Headers({"X-Event-Key": "repo:push"}), payload)
    assert [(e.kind, e.ref) for e in events] == [
        (EventKind.PUSH, "main"),
        (EventKind.TAG, "v1.2.0"),
    ]


@pytest.mark.parametrize(
    ("provider", "headers", "payload"),
    [
        ("github", {"X-GitHub-Event": "issues"}, {"action": "opened"}),
        ("gitea", {"X-Gitea-Event": "create"}, {"ref": "v1.2.0", "ref_type": "tag"}),
        ("gitlab", {"X-Gitlab-Event": "Note Hook"}, {"object_kind": "note"}),
        ("bitbucket", {"X-Event-Key": "repo:fork"}, {}),
        ("github", {"X-GitHub-Event": "push"}, {"ref": 5, "commits": "nope"}),  # garbage
        ("github", {"X-GitHub-Event": "pull_request"}, {"action": "opened"}),  # no number
    ],
)
def test_other_events_and_garbage_are_other(
    provider: str, headers: dict[str, str], payload: dict[str, object]
) -> None:
    events = PROVIDERS[provider].parse(Headers(headers), payload)
    assert [e.kind for e in events] == [EventKind.OTHER]
