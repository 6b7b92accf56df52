"""Keyset pages over time-ordered ids, newest first, in both directions (Relay's
``first``/``after`` and ``last``/``before``).

A page is one bounded statement (``LIMIT size + 1`` tells whether the window holds more),
plus, only when a cursor was given, one indexed ``EXISTS`` for the other side of it: so
``hasPreviousPage`` and ``hasNextPage`` are both exact, whichever way the client pages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

R = TypeVar("R")


@dataclass(frozen=True)
class Window:
    """What a page asks for: ids below ``after`` and above ``before`` (newest first), the
    first ``size`` of them, or the last ``size`` when ``backward``."""

    size: int
    after: str | None = None
    before: str | None = None
    backward: bool = False


@dataclass(frozen=True)
class Page(Generic[R]):
    rows: Sequence[R]  # newest first, whichever way it was read
    has_next: bool  # older rows beyond the page
    has_previous: bool  # newer rows before the page


def bounded(query: Select[Any], column: InstrumentedAttribute[str], window: Window) -> Select[Any]:
    """``query`` limited to the window's ids (both cursors exclusive)."""
    if window.after:
        query = query.where(column < window.after)
    if window.before:
        query = query.where(column > window.before)
    return query


def beyond(column: InstrumentedAttribute[str], window: Window) -> ColumnElement[bool] | None:
    """Rows on the far side of the cursor the page started from (None: no cursor)."""
    if window.backward:
        return column <= window.before if window.before else None
    return column >= window.after if window.after else None


def page(
    session: Session, query: Select[Any], column: InstrumentedAttribute[str], window: Window
) -> Page[Any]:
    """One page of ``query`` (a ``select(Model)`` with its filters) keyed on ``column``."""
    order = column.asc() if window.backward else column.desc()
    query_page = bounded(query, column, window).order_by(order).limit(window.size + 1)
    found = list(session.scalars(query_page))
    return _page(found, window, _exists(session, query, column, window))


def ranked_pages(
    session: Session,
    model: Any,
    *,
    group: InstrumentedAttribute[str],
    keys: Sequence[str],
    window: Window,
) -> dict[str, Page[Any]]:
    """``page`` of each ``group`` value in ``keys``, in one statement (ROW_NUMBER per group,
    on SQLite and PostgreSQL), plus one grouped ``EXISTS`` when a cursor was given."""
    column = model.id
    order = column.asc() if window.backward else column.desc()
    rank = func.row_number().over(partition_by=group, order_by=order).label("rank")
    inner = bounded(select(model, rank).where(group.in_(keys)), column, window).subquery()
    row = aliased(model, inner)
    query = select(row).where(inner.c.rank <= window.size + 1)
    found: dict[str, list[Any]] = {key: [] for key in keys}
    for item in session.scalars(query.order_by(getattr(row, group.key), inner.c.rank)):
        found[getattr(item, group.key)].append(item)
    far: set[str] = set()
    if (condition := beyond(column, window)) is not None:
        far = set(session.scalars(select(group).where(group.in_(keys), condition).distinct()))
    return {key: _page(rows, window, key in far) for key, rows in found.items()}


def _exists(
    session: Session, query: Select[Any], column: InstrumentedAttribute[str], window: Window
) -> bool:
    condition = beyond(column, window)
    if condition is None:
        return False
    return bool(session.scalar(select(query.where(condition).exists())))


def _page(found: list[Any], window: Window, far: bool) -> Page[Any]:
    more = len(found) > window.size
    rows = found[: window.size]
    if window.backward:
        rows.reverse()
        return Page(rows=rows, has_next=far, has_previous=more)
    return Page(rows=rows, has_next=more, has_previous=far)
