"""Relay-style connections: ``edges { cursor node }`` and ``pageInfo``."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import strawberry

from app.errors import BadInput

N = TypeVar("N")
R = TypeVar("R")
MAX_PAGE = 200


@strawberry.type
class PageInfo:
    has_next_page: bool
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


def check_first(first: int | None, default: int) -> int:
    """``first`` within 1..MAX_PAGE; an explicit null means the default."""
    first = default if first is None else first
    if not 1 <= first <= MAX_PAGE:
        raise BadInput(f"first must be between 1 and {MAX_PAGE}, got {first}")
    return first


def connection(
    rows: Sequence[R], has_next: bool, to_node: Callable[[R], N], key: Callable[[R], str]
) -> Connection[N]:
    edges = [Edge(cursor=encode_cursor(key(r)), node=to_node(r)) for r in rows]
    end = edges[-1].cursor if edges else None
    return Connection(edges=edges, page_info=PageInfo(has_next_page=has_next, end_cursor=end))
