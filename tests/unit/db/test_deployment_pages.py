"""``deployments.pages`` (many applications, one statement) gives each application exactly
the page ``deployments.page`` gives it, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from app.db.migrate import upgrade
from app.db.models import Application, Deployment
from app.db.repos import deployments
from app.db.session import Database

SIZES = {"a": 0, "b": 1, "c": 3, "d": 7}  # deployments per application


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    upgrade(database_url)
    database = Database(database_url)
    with database.session() as session:
        for n, (name, count) in enumerate(SIZES.items()):
            app_id = f"{n:024x}"
            session.add(Application(id=app_id, name=name, app_name=name, source_type="GIT"))
            session.flush()
            for k in range(count):  # interleaved ids: the applications' rows mix in the index
                session.add(
                    Deployment(
                        id=f"{k:012x}{n:012x}",
                        application_id=app_id,
                        title=f"{name}{k}",
                        status="DONE",
                        log_path="/dev/null",
                        created_at=datetime.now(UTC),
                    )
                )
    yield database
    database.dispose()


def _ids(rows: object) -> list[str]:
    return [r.id for r in rows]  # type: ignore[attr-defined]


@pytest.mark.parametrize("first", [1, 2, 3, 8])
def test_each_applications_page_is_its_own_page(db: Database, first: int) -> None:
    app_ids = [f"{n:024x}" for n in range(len(SIZES))]
    afters: list[str | None] = [None, f"{2:012x}{0:012x}", f"{5:012x}{9:012x}"]
    with db.session() as session:
        for after in afters:
            many = deployments.pages(session, application_ids=app_ids, first=first, after=after)
            assert set(many) == set(app_ids)
            for app_id in app_ids:
                rows, more = deployments.page(
                    session, application_id=app_id, statuses=None, first=first, after=after
                )
                got_rows, got_more = many[app_id]
                assert (_ids(got_rows), got_more) == (_ids(rows), more), (app_id, after)
                assert all(r.application_id == app_id for r in got_rows)


def test_an_application_with_no_deployments_has_an_empty_page(db: Database) -> None:
    with db.session() as session:
        many = deployments.pages(
            session, application_ids=[f"{0:024x}", f"{3:024x}"], first=5, after=None
        )
    rows, more = many[f"{0:024x}"]
    assert list(rows) == [] and more is False
    rows, more = many[f"{3:024x}"]
    assert len(rows) == 5 and more is True
