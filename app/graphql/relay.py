"""Relay conventions: connections (``edges { cursor node }``, a full ``pageInfo``), paging
in both directions (``first``/``after``, ``last``/``before``) and the ``Node`` interface.

Node ids are the rows' own ids (time-ordered hex, unique across tables), so every id a
client already holds stays valid and ``node(id:)`` finds it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import strawberry
from graphql import VariableNode

from app.db.repos.paging import Page, Window
from app.errors import BadInput

N = TypeVar("N")
R = TypeVar("R")
MAX_PAGE = 200


@strawberry.interface(description="An object with an id that node(id:) finds again")
class Node:
    id: strawberry.ID


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[N]):
    cursor: str
    node: N


@strawberry.type
class Connection(Generic[N]):
    edges: list[Edge[N]]
    page_info: PageInfo


def encode_cursor(row_id: str) -> str:
    return base64.urlsafe_b64encode(row_id.encode()).decode()


def decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        value = base64.b64decode(cursor.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        value = ""
    if not value:
        raise BadInput(f"cursor {cursor!r} is not one this API returned")
    return value


def check_first(first: int | None, default: int, name: str = "first") -> int:
    """``first`` (or ``last``) within 1..MAX_PAGE; an explicit null means the default."""
    first = default if first is None else first
    if not 1 <= first <= MAX_PAGE:
        raise BadInput(f"{name} must be between 1 and {MAX_PAGE}, got {first}")
    return first


def window(
    info: Any,
    *,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    default: int,
) -> Window:
    """The page asked for. ``last`` pages backwards (the rows just before ``before``, or
    the oldest); ``first`` keeps its default only when ``last`` is not given, and giving
    both is refused, since ``first`` then ``last`` of one window is rarely what is meant."""
    if last is None:
        size = check_first(first, default)
        return Window(size=size, after=decode_cursor(after), before=decode_cursor(before))
    if first is not None and _given(info, "first"):
        raise BadInput("pass first (with after) or last (with before), not both")
    size = check_first(last, default, "last")
    return Window(
        size=size, after=decode_cursor(after), before=decode_cursor(before), backward=True
    )


def _given(info: Any, name: str) -> bool:
    """Whether the request sets argument ``name`` (not left to its schema default): in the
    document, or through a variable that was given a value."""
    raw = info._raw_info
    for arg in raw.field_nodes[0].arguments or ():
        if arg.name.value == name:
            if isinstance(arg.value, VariableNode):
                return arg.value.name.value in raw.variable_values
            return True
    return False


def connection(page: Page[R], to_node: Callable[[R], N], key: Callable[[R], str]) -> Connection[N]:
    edges = [Edge(cursor=encode_cursor(key(r)), node=to_node(r)) for r in page.rows]
    info = PageInfo(
        has_next_page=page.has_next,
        has_previous_page=page.has_previous,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=edges[-1].cursor if edges else None,
    )
    return Connection(edges=edges, page_info=info)
