"""The handler on a real database (SQLite and PostgreSQL): verify, record once, act."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select
from starlette.datastructures import Headers

from app.crypto import Cipher, load_or_create_key
from app.db.migrate import upgrade
from app.db.models import Application, Deployment, WebhookDelivery
from app.db.session import Database
from app.ids import new_id
from app.settings import Settings
from app.webhooks import handler
from app.webhooks.handler import UNAUTHORIZED, Reply, Services, handle
from app.webhooks.providers import PROVIDERS
from tests.fixtures.webhooks.samples import encode, pull_request, push, signed_headers

SECRET = "unit-secret-" + "k" * 20
SHA = "59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5"


class FakeQueue:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, deployment_id: str) -> None:
        self.sent.append(deployment_id)


class NullBus:
    def publish(self, topic: str, message: object) -> None:
        pass


class Env:
    def __init__(self, tmp_path: Path, database_url: str) -> None:
        settings = Settings(data_dir=tmp_path / "data", database_url=database_url, _env_file=None)  # type: ignore[call-arg]
        upgrade(settings.effective_database_url)
        self.db = Database(settings.effective_database_url)
        self.cipher = Cipher(load_or_create_key(settings))
        self.queue = FakeQueue()
        self.services = Services(
            settings=settings,
            db=self.db,
            cipher=self.cipher,
            bus=NullBus(),  # type: ignore[arg-type]
            queue=self.queue,  # type: ignore[arg-type]
        )

    def app(self, *, secret: str | None = SECRET, **fields: Any) -> str:
        with self.db.session() as session:
            row = Application(
                id=new_id(),
                name="web",
                app_name=f"web-{new_id()[-8:]}",
                source_type=fields.pop("source_type", "GITHUB"),
                repository="https://example.invalid/acme/web.git",
                branch="main",
                webhook_secret_enc=self.cipher.encrypt_json(secret) if secret else None,
                **fields,
            )
            session.add(row)
            session.flush()
            return row.id

    def send(
        self,
        app_id: str,
        payload: dict[str, Any],
        *,
        provider: str = "github",
        kind: str = "push",
        secret: str | None = SECRET,
        delivery: str | None = "d-1",
        body: bytes | None = None,
    ) -> Reply:
        raw = body if body is not None else encode(payload)
        headers = Headers(signed_headers(provider, kind, raw, secret, delivery=delivery))
        return handle(self.services, PROVIDERS[provider], app_id, headers, raw)

    def rows(self, model: type[Any]) -> list[Any]:
        with self.db.session() as session:
            return list(session.scalars(select(model)).all())


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> Iterator[Env]:
    env = Env(tmp_path, database_url)
    yield env
    env.db.dispose()


def test_push_queues_the_payload_commit_and_records_the_delivery(env: Env) -> None:
    app_id = env.app()
    reply = env.send(app_id, push("github", sha=SHA, message="Fix it\n\nbody"))
    assert reply.status == 202
    assert reply.body["outcome"] == "deployed"
    [dep] = env.rows(Deployment)
    assert reply.body["deploymentId"] == dep.id
    assert (dep.application_id, dep.trigger, dep.requested_sha) == (app_id, "PUSH", SHA)
    assert (dep.source_ref, dep.source_ref_kind, dep.title) == ("main", "branch", "Fix it")
    assert env.queue.sent == [dep.id]
    [delivery] = env.rows(WebhookDelivery)
    assert (delivery.provider, delivery.delivery_id, delivery.deployment_id) == (
        "github",
        "d-1",
        dep.id,
    )
    assert delivery.outcome.startswith("deployed")


def test_a_replay_is_acknowledged_and_starts_nothing(env: Env) -> None:
    app_id = env.app()
    payload = push("github", sha=SHA)
    assert env.send(app_id, payload).status == 202
    again = env.send(app_id, payload)
    assert (again.status, again.body["outcome"]) == (200, "duplicate")
    assert len(env.rows(Deployment)) == 1 and len(env.queue.sent) == 1


def test_without_a_delivery_header_the_body_hash_dedups(env: Env) -> None:
    app_id = env.app()
    payload = push("github", sha=SHA)
    assert env.send(app_id, payload, delivery=None).status == 202
    assert env.send(app_id, payload, delivery=None).body["outcome"] == "duplicate"
    [delivery] = env.rows(WebhookDelivery)
    assert delivery.delivery_id.startswith("sha256:")


def test_two_identical_deliveries_at_once_deploy_once(env: Env) -> None:
    app_id = env.app()
    payload = push("github", sha=SHA)
    barrier = threading.Barrier(4)
    replies: list[Reply] = []

    def deliver() -> None:
        barrier.wait()
        replies.append(env.send(app_id, payload, delivery="same"))

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(r.body["outcome"] for r in replies) == ["deployed"] + ["duplicate"] * 3
    assert len(env.rows(Deployment)) == 1
    assert len(env.rows(WebhookDelivery)) == 1


@pytest.mark.parametrize("case", ["unknown", "no secret", "unsigned", "wrong secret"])
def test_unverified_deliveries_get_the_same_401_and_leave_no_trace(env: Env, case: str) -> None:
    app_id = env.app(secret=None if case == "no secret" else SECRET)
    target = new_id() if case == "unknown" else app_id
    secret = {"unsigned": None, "wrong secret": "nope"}.get(case, SECRET)
    reply = env.send(target, push("github", sha=SHA), secret=secret)
    assert (reply.status, reply.body) == (401, {"error": UNAUTHORIZED})
    assert env.rows(Deployment) == [] and env.rows(WebhookDelivery) == []
    assert SECRET not in str(reply.body)


def test_provider_must_match_the_source_family(env: Env) -> None:
    app_id = env.app(source_type="GITLAB")
    reply = env.send(app_id, push("github", sha=SHA))
    assert reply.status == 400
    assert "gitlab" in reply.body["error"] and "github" in reply.body["error"]
    assert env.rows(WebhookDelivery) == []


def test_custom_git_apps_take_any_provider(env: Env) -> None:
    app_id = env.app(source_type="GIT")
    for n, provider in enumerate(("github", "gitlab", "gitea", "bitbucket")):
        payload = push(provider, sha=f"{n + 1}" * 40)
        reply = env.send(app_id, payload, provider=provider, delivery=f"d-{n}")
        assert reply.status == 202, reply.body
    assert sorted(d.requested_sha for d in env.rows(Deployment)) == [
        f"{n}" * 40 for n in range(1, 5)
    ]


def test_verified_garbage_is_400(env: Env) -> None:
    app_id = env.app()
    reply = env.send(app_id, {}, body=b"[1, 2")
    assert reply.status == 400 and env.rows(WebhookDelivery) == []


def test_github_form_encoded_payload(env: Env) -> None:
    from urllib.parse import urlencode

    app_id = env.app()
    body = urlencode({"payload": encode(push("github", sha=SHA)).decode()}).encode()
    headers = signed_headers("github", "push", body, SECRET, delivery="form-1")
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    reply = handle(env.services, PROVIDERS["github"], app_id, Headers(headers), body)
    assert reply.status == 202


def test_a_failed_action_drops_the_claim_so_a_redelivery_retries(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    app_id = env.app()
    payload = push("github", sha=SHA)

    def broken(**_: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(handler, "submit", broken)
    with pytest.raises(RuntimeError):
        env.send(app_id, payload)
    assert env.rows(WebhookDelivery) == []
    monkeypatch.undo()
    assert env.send(app_id, payload).status == 202


class FakePreviews:
    """Stands in for app.engine.previews: records what the handler asked."""

    def __init__(self, preview_id: str | None) -> None:
        self.preview_id = preview_id
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def open_preview(self, db: Any, cipher: Any, **kw: Any) -> Any:
        self.calls.append(("open", kw))
        return SimpleNamespace(id=self.preview_id) if self.preview_id else None

    def close_preview(self, db: Any, **kw: Any) -> str | None:
        self.calls.append(("close", kw))
        return self.preview_id

    def sweep_closed(self, db: Any, runtime: Any, bus: Any) -> int:
        self.calls.append(("sweep", {"runtime": runtime}))
        return 1


@pytest.mark.parametrize("kind", ["pr_open", "pr_sync"])
def test_pull_request_opens_a_preview_and_deploys_its_head(
    env: Env, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    parent = env.app(preview_enabled=True)
    preview = env.app(secret=None)  # stands for the derived row
    fake = FakePreviews(preview)
    monkeypatch.setattr(handler, "previews", fake)
    payload = pull_request("github", kind, number=9, head_ref="feat/x", sha=SHA)
    reply = env.send(parent, payload, kind=kind)
    assert reply.status == 202, reply.body
    assert fake.calls == [
        (
            "open",
            {
                "parent_id": parent,
                "number": 9,
                "head_ref": "feat/x",
                "title": reply_title(),
                "fork": False,
            },
        )
    ]
    [dep] = env.rows(Deployment)
    assert (dep.application_id, dep.trigger, dep.requested_sha, dep.source_ref) == (
        preview,
        "PULL_REQUEST",
        SHA,
        "feat/x",
    )


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_fork_pull_request_is_refused_unless_forks_are_allowed(
    env: Env, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    parent = env.app(preview_enabled=True, source_type="GIT")
    fake = FakePreviews(env.app(secret=None))
    monkeypatch.setattr(handler, "previews", fake)
    payload = pull_request(provider, "pr_open", number=9, head_ref="f", sha=SHA, fork=True)
    reply = env.send(parent, payload, provider=provider, kind="pr_open")
    assert (reply.status, reply.body["outcome"]) == (200, "ignored"), reply.body
    assert "fork" in reply.body["reason"] and "previewAllowForks" in reply.body["reason"]
    assert fake.calls == [] and env.rows(Deployment) == []
    [delivery] = env.rows(WebhookDelivery)
    assert delivery.outcome.startswith("ignored") and "fork" in delivery.outcome


def test_an_allowed_fork_pull_request_opens_a_forks_preview(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = env.app(preview_enabled=True, preview_allow_forks=True)
    fake = FakePreviews(env.app(secret=None))
    monkeypatch.setattr(handler, "previews", fake)
    payload = pull_request("github", "pr_open", number=9, head_ref="f", sha=SHA, fork=True)
    reply = env.send(parent, payload, kind="pr_open")
    assert reply.status == 202, reply.body
    assert fake.calls[0][0] == "open" and fake.calls[0][1]["fork"] is True


def test_the_same_body_under_a_new_delivery_id_is_a_duplicate(env: Env) -> None:
    app_id = env.app(source_type="GIT")
    payload = push("github", sha=SHA)
    assert env.send(app_id, payload, delivery="first").status == 202
    again = env.send(app_id, payload, delivery="second")
    assert (again.status, again.body["outcome"]) == (200, "duplicate")
    assert "body" in again.body["reason"]
    # the same signed bytes as another provider's delivery (Gitea signs the same HMAC)
    raw = encode(payload)
    gitea = env.send(app_id, payload, provider="gitea", delivery="third", body=raw)
    assert gitea.body["outcome"] == "duplicate", gitea.body
    assert len(env.rows(Deployment)) == 1 and len(env.queue.sent) == 1
    assert [d.delivery_id for d in env.rows(WebhookDelivery)] == ["first"]
    other = env.app(source_type="GIT")  # another application's identical body is its own
    assert env.send(other, payload, delivery="fourth").status == 202


def test_a_body_is_forgotten_with_its_failed_claim_so_a_redelivery_retries(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    app_id = env.app()
    payload = push("github", sha=SHA)

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("the queue broke")

    monkeypatch.setattr(handler, "submit", broken)
    with pytest.raises(RuntimeError):
        env.send(app_id, payload, delivery="first")
    monkeypatch.undo()
    assert env.send(app_id, payload, delivery="retry").status == 202


def reply_title() -> str:
    return "PR #9: Dark mode for the dashboard"


def test_pull_request_over_the_limit_is_acknowledged(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = env.app(preview_enabled=True)
    monkeypatch.setattr(handler, "previews", FakePreviews(None))
    payload = pull_request("github", "pr_open", number=9, head_ref="feat/x", sha=SHA)
    reply = env.send(parent, payload, kind="pr_open")
    assert (reply.status, reply.body["outcome"]) == (200, "ignored")
    assert env.rows(Deployment) == []


def test_closing_a_pull_request_closes_its_preview_and_sweeps_after_answering(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = env.app()  # previews since turned off: still cleaned up
    fake = FakePreviews("prev-1")
    monkeypatch.setattr(handler, "previews", fake)
    payload = pull_request("github", "pr_close", number=9, head_ref="feat/x", sha=SHA)
    reply = env.send(parent, payload, kind="pr_close")
    assert (reply.status, reply.body["outcome"]) == (200, "closed")
    assert fake.calls == [("close", {"parent_id": parent, "number": 9})]
    assert reply.after is not None
    reply.after()
    assert fake.calls[-1] == ("sweep", {"runtime": None})


def test_pull_request_with_real_previews(env: Env) -> None:
    """Against app/engine/previews.py itself: a preview row, then its deployment."""
    parent = env.app(preview_enabled=True, source_type="GITEA")
    payload = pull_request("gitea", "pr_open", number=4, head_ref="feat/y", sha=SHA)
    reply = env.send(parent, payload, provider="gitea", kind="pr_open")
    assert reply.status == 202, reply.body
    preview = next(a for a in env.rows(Application) if a.parent_id == parent)
    assert (preview.preview_number, preview.preview_ref) == (4, "feat/y")
    [dep] = env.rows(Deployment)
    assert (dep.application_id, dep.requested_sha) == (preview.id, SHA)
    closing = pull_request("gitea", "pr_close", number=4, head_ref="feat/y", sha=SHA)
    closed = env.send(parent, closing, provider="gitea", kind="pr_close", delivery="d-2")
    assert closed.body["outcome"] == "closed"
    [row] = [a for a in env.rows(Application) if a.id == preview.id]
    assert row.preview_closed_at is not None


def test_old_delivery_records_are_pruned(env: Env) -> None:
    from datetime import timedelta

    from app.db.base import utcnow
    from app.db.repos import webhooks
    from app.engine.retention import prune_all

    app_id = env.app()
    env.send(app_id, push("github", sha=SHA), delivery="old")
    env.send(app_id, push("github", sha="b" * 40), delivery="new")
    with env.db.session() as session:
        old = session.scalars(select(WebhookDelivery).where(WebhookDelivery.delivery_id == "old"))
        old.one().received_at = utcnow() - timedelta(days=40)
    prune_all(env.db, None, default_keep=50, webhook_days=30)
    assert [d.delivery_id for d in env.rows(WebhookDelivery)] == ["new"]
    with env.db.session() as session:
        new = session.scalars(select(WebhookDelivery).where(WebhookDelivery.delivery_id == "new"))
        new.one().received_at = utcnow() - timedelta(days=2)
    with env.db.session() as session:
        assert webhooks.prune(session, older_than_days=3) == 0
        assert webhooks.prune(session, older_than_days=1) == 1


def test_a_body_is_remembered_for_the_retention_window_only(env: Env) -> None:
    from datetime import timedelta

    from app.db.base import utcnow
    from app.engine.retention import prune_all

    app_id = env.app()
    payload = push("github", sha=SHA)
    assert env.send(app_id, payload, delivery="first").status == 202
    assert env.send(app_id, payload, delivery="second").body["outcome"] == "duplicate"
    with env.db.session() as session:
        [row] = session.scalars(select(WebhookDelivery)).all()
        assert row.body_sha256 is not None and len(row.body_sha256) == 64
        row.received_at = utcnow() - timedelta(days=40)
    prune_all(env.db, None, default_keep=50, webhook_days=30)
    assert env.rows(WebhookDelivery) == [], "the body's hash goes with its delivery id"
    assert env.send(app_id, payload, delivery="third").status == 202
