"""Unexpected resolver errors are masked; ours keep their message and code."""

from __future__ import annotations

import strawberry

from app.errors import NotFound
from app.graphql.errors import INTERNAL, error_masking


@strawberry.type
class Query:
    @strawberry.field
    def boom(self) -> int:
        raise RuntimeError("password=hunter2 at /srv/secret")

    @strawberry.field
    def missing(self) -> int:
        raise NotFound("application 'x' does not exist")


SCHEMA = strawberry.Schema(query=Query, extensions=[error_masking])


def test_an_internal_error_is_masked() -> None:
    result = SCHEMA.execute_sync("{ boom }")
    assert result.errors is not None
    assert [e.message for e in result.errors] == [INTERNAL]


def test_an_expected_error_keeps_its_message() -> None:
    result = SCHEMA.execute_sync("{ missing }")
    assert result.errors is not None
    assert result.errors[0].message == "application 'x' does not exist"
