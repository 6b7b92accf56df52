"""A batch of log lines is executed and encoded once for all subscribers of one document."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

from graphql import parse

from app.graphql.schema import build_schema
from app.graphql.sharing import SharedResults, SharingExecutionContext
from app.types import LogLine, LogStream

DOC = 'subscription { deploymentLogs(deploymentId: "d") { seq message } }'


def _executor(shared: SharedResults, payload: object, doc: str = DOC) -> SharingExecutionContext:
    schema = build_schema()
    base = SharingExecutionContext.build(
        schema._schema,
        parse(doc),
        context_value=SimpleNamespace(state=SimpleNamespace(shared=shared)),
    )
    assert isinstance(base, SharingExecutionContext)
    return base.build_per_event_executor(payload)  # type: ignore[return-value]


def _batch(n: int) -> tuple[LogLine, ...]:
    now = datetime.now(UTC)
    return tuple(LogLine(i, now, LogStream.STDOUT, None, f"line {i}") for i in range(1, n + 1))


def test_same_batch_same_document_is_executed_once() -> None:
    shared = SharedResults()
    batch = _batch(3)
    first = _executor(shared, batch).execute_operation()
    second = _executor(shared, batch).execute_operation()
    assert first is second
    assert first.data == {"deploymentLogs": [{"seq": i, "message": f"line {i}"} for i in (1, 2, 3)]}
    assert json.loads(shared.encoded(first.data) or "") == first.data


def test_other_batches_documents_and_lists_are_not_shared() -> None:
    shared = SharedResults()
    batch = _batch(2)
    base = _executor(shared, batch).execute_operation()
    assert _executor(shared, _batch(2)).execute_operation() is not base  # equal, not same
    other_doc = DOC.replace("seq message", "seq")
    assert _executor(shared, batch, other_doc).execute_operation().data == {
        "deploymentLogs": [{"seq": 1}, {"seq": 2}]
    }
    as_list = list(batch)
    from_list = _executor(shared, as_list).execute_operation()
    assert from_list is not base and from_list.data == base.data
    directive = DOC.replace("message", "message @include(if: true)")
    assert _executor(shared, batch, directive).execute_operation() is not base
    assert shared.encoded({"not": "shared"}) is None


def test_leaf_plan_gives_exactly_what_graphql_core_gives() -> None:
    from graphql import ExecutionResult as Result

    from app.graphql.leafplan import plan_for

    doc = DOC.replace("seq message", "seq timestamp stream step message n: seq __typename")
    now = datetime.now(UTC)
    batch = tuple(
        LogLine(i, now, LogStream.SYSTEM, None if i % 2 else "BUILD_IMAGE", f"line {i}")
        for i in range(1, 6)
    )
    shared = SharedResults()
    fast = _executor(shared, batch, doc).execute_operation()
    plain = _executor(SharedResults(), list(batch), doc).execute_operation()  # no sharing
    assert isinstance(fast, Result) and isinstance(plain, Result)
    assert fast.data == plain.data and fast.errors is None
    assert shared.plan(f"\x00{doc}", lambda: None) is not None, "the fast path was taken"
    schema = build_schema()._schema
    for unplannable in (
        DOC.replace("seq message", "seq ... on LogLine { message }"),
        'subscription { deploymentStatus(deploymentId: "d") { id status } }',
        'subscription { a: deploymentLogs(deploymentId: "d") { seq } '
        'b: deploymentLogs(deploymentId: "d") { seq } }',
    ):
        operation = parse(unplannable).definitions[0]
        assert plan_for(schema, operation) is None, unplannable  # type: ignore[arg-type]
