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


@strawberry.type
class Echo:
    @strawberry.field
    def echo(self, n: int) -> int:
        return n


ECHO = strawberry.Schema(query=Echo, extensions=[error_masking])


def test_request_errors_are_bad_user_input_and_unmasked() -> None:
    for query, variables in (
        ("query($n: Int!) { echo(n: $n) }", {"n": 2**31}),
        ("query($n: Int!) { echo(n: $n) }", {"n": "seven"}),
        ("{ echo(n: 1) nope }", None),
    ):
        result = ECHO.execute_sync(query, variable_values=variables)
        assert result.errors is not None
        assert [e.extensions for e in result.errors] == [{"code": "BAD_USER_INPUT"}]
        assert INTERNAL not in result.errors[0].message


def test_masked_errors_carry_a_code_and_ours_keep_theirs() -> None:
    codes = []
    for query in ("{ boom }", "{ missing }"):
        result = SCHEMA.execute_sync(query)
        assert result.errors is not None
        codes += [(e.extensions or {}).get("code") for e in result.errors]
    assert codes == ["INTERNAL_SERVER_ERROR", "NOT_FOUND"]
