"""Document limits: linear checks before validation, and only short documents cached."""

from __future__ import annotations

import asyncio
import time

import pytest
from graphql import get_introspection_query, parse

from app.graphql import document_limits as limits
from app.graphql.schema import build_schema


def nested_bomb(levels: int) -> str:
    frags = [
        f"fragment F{i} on __Type {{ ofType {{ ...F{i + 1} }} o{i}: ofType {{ ...F{i + 1} }} }}"
        for i in range(levels)
    ]
    tail = f" fragment F{levels} on __Type {{ name }}"
    return "{ __schema { queryType { ...F0 } } } " + " ".join(frags) + tail


def refusal(doc: str) -> str | None:
    error = limits.check(parse(doc))
    if error is None:
        return None
    assert error.extensions == {"code": "BAD_USER_INPUT"}
    return error.message


def test_a_fragment_bomb_is_measured_in_linear_time() -> None:
    start = time.perf_counter()
    message = refusal(nested_bomb(60))  # 2^60 selections once expanded
    assert message is not None and "more than 2000 fields" in message
    assert time.perf_counter() - start < 0.05


def test_one_name_many_times_in_a_selection_set_is_refused() -> None:
    assert refusal("{" + " __typename" * 10 + "}") is None
    message = refusal("{" + " __typename" * 11 + "}")
    assert message == '"__typename" is selected 11 times in one selection set (at most 10)'
    spread = "{ ...A ...A ...A } fragment A on Query { __typename __typename a: __typename }"
    assert refusal(spread) is None  # 6 and 3
    message = refusal(spread.replace("a: __typename", "__typename __typename"))
    assert message == '"__typename" is selected 12 times in one selection set (at most 10)'


def test_directives_are_counted_everywhere() -> None:
    fields = " ".join(f"x{i} @b" for i in range(48))
    assert refusal(f"query @a {{ {fields} }}") is None  # 49
    doc = f"query ($v: Int @a) @a {{ {fields} ...F }} fragment F on Q @c {{ y }}"  # 51
    assert refusal(doc) == "The document has more than 50 directives"


def test_fragment_cycles_are_refused_before_validation() -> None:
    assert refusal("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }") == (
        'Cannot spread fragment "A" within itself'
    )
    assert refusal("{ ...Missing }") is None  # validation names the unknown fragment


def test_graphiql_introspection_passes() -> None:
    assert refusal(get_introspection_query(descriptions=True)) is None


def run(doc: str) -> list[str]:
    result = asyncio.run(build_schema().execute(doc))
    return [e.message for e in result.errors or []]


def test_short_documents_are_cached_and_long_ones_are_not() -> None:
    parse_cache = limits.BoundedParserCache().cached_parse_document
    validation_cache = limits._cached_validate
    parse_cache.cache_clear()  # type: ignore[attr-defined]
    validation_cache.cache_clear()  # a full cache would keep its size whatever was added
    short = "{ __typename }"
    long = "{ __typename " + " " * limits.CACHE_MAX_CHARS + "}"
    assert run(short) == []
    before = (parse_cache.cache_info().currsize, validation_cache.cache_info().currsize)  # type: ignore[attr-defined]
    assert run(long) == [] and run(long + " ") == []
    after = (parse_cache.cache_info().currsize, validation_cache.cache_info().currsize)  # type: ignore[attr-defined]
    assert before == (1, 1) and after == before
    hits = parse_cache.cache_info().hits  # type: ignore[attr-defined]
    assert run(short) == []
    assert parse_cache.cache_info().hits == hits + 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("{" + " __typename" * 2001 + "}", "more than 2000 tokens"),
        ("{" + " ".join(f"a{i}: __typename" for i in range(31)) + "}", "31 aliases found"),
        ("{ " + "x" * 70_000 + " }", "at most 65536 are accepted"),
    ],
    ids=["tokens", "aliases", "characters"],
)
def test_schema_refuses_documents_over_the_limits(doc: str, message: str) -> None:
    errors = run(doc)
    assert len(errors) == 1 and message in errors[0], errors
