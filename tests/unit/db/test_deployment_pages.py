"""``deployments.pages`` (many applications, one statement) gives each application exactly
the page ``deployments.page`` gives it, in both directions, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from app.db.migrate import upgrade
from app.db.models import Application, Deployment
from app.db.repos import deployments
from app.db.repos.paging import Window
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


CURSORS: list[str | None] = [None, f"{2:012x}{0:012x}", f"{5:012x}{9:012x}"]


@pytest.mark.parametrize("backward", [False, True])
@pytest.mark.parametrize("size", [1, 2, 3, 8])
def test_each_applications_page_is_its_own_page(db: Database, size: int, backward: bool) -> None:
    app_ids = [f"{n:024x}" for n in range(len(SIZES))]
    windows = [Window(size=size, after=c, backward=backward) for c in CURSORS] + [
        Window(size=size, before=c, backward=backward) for c in CURSORS if c
    ]
    with db.session() as session:
        for window in windows:
            many = deployments.pages(session, application_ids=app_ids, window=window)
            assert set(many) == set(app_ids)
            for app_id in app_ids:
                one = deployments.page(session, application_id=app_id, statuses=None, window=window)
                got = many[app_id]
                assert (_ids(got.rows), got.has_next, got.has_previous) == (
                    _ids(one.rows),
                    one.has_next,
                    one.has_previous,
                ), (app_id, window)
                assert all(r.application_id == app_id for r in got.rows)


def test_paging_backwards_meets_paging_forwards(db: Database) -> None:
    """The pages read from either end are the same rows, with exact pageInfo flags."""
    app_id = f"{3:024x}"  # 7 deployments
    with db.session() as session:
        every = _ids(
            deployments.page(
                session, application_id=app_id, statuses=None, window=Window(size=50)
            ).rows
        )
        assert len(every) == 7 and every == sorted(every, reverse=True)
        forward, cursor, flags = [], None, []
        while True:
            p = deployments.page(
                session, application_id=app_id, statuses=None, window=Window(size=3, after=cursor)
            )
            forward.append(_ids(p.rows))
            flags.append((p.has_previous, p.has_next))
            if not p.has_next:
                break
            cursor = p.rows[-1].id
        assert forward == [every[0:3], every[3:6], every[6:7]]
        assert flags == [(False, True), (True, True), (True, False)]
        backward, cursor, flags = [], None, []
        while True:
            p = deployments.page(
                session,
                application_id=app_id,
                statuses=None,
                window=Window(size=3, before=cursor, backward=True),
            )
            backward.append(_ids(p.rows))
            flags.append((p.has_previous, p.has_next))
            if not p.has_previous:
                break
            cursor = p.rows[0].id
        assert backward == [every[4:7], every[1:4], every[0:1]]
        assert flags == [(True, False), (True, True), (False, True)]


def test_an_application_with_no_deployments_has_an_empty_page(db: Database) -> None:
    with db.session() as session:
        many = deployments.pages(
            session, application_ids=[f"{0:024x}", f"{3:024x}"], window=Window(size=5)
        )
    empty, full = many[f"{0:024x}"], many[f"{3:024x}"]
    assert list(empty.rows) == [] and (empty.has_next, empty.has_previous) == (False, False)
    assert len(full.rows) == 5 and (full.has_next, full.has_previous) == (True, False)
