"""Executing and encoding a subscription event once for every subscriber that receives it.

A busy deployment log is followed by many viewers, and each batch of lines reaches all of
them as the same tuple (the hub shares its chunks). Executing the selection set over that
tuple, and JSON-encoding the result, is the same work for every subscriber with the same
document, so the first does it and the rest reuse it. Only tuple payloads of documents
without directives are shared: their result depends on nothing but the payload and the
selection set.
"""

from __future__ import annotations

import inspect
import json
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from graphql import ExecutionResult
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from app.graphql.leafplan import LeafPlan, plan_for

MAX_ENTRIES = 64  # ~1 s of a busy log: followers further behind recompute (cheaply)


class SharedResults:
    """Recent (payload, document) -> result, and result data -> encoded JSON."""

    def __init__(self) -> None:
        self._results: OrderedDict[tuple[int, str], tuple[object, ExecutionResult]] = OrderedDict()
        self._encoded: OrderedDict[int, tuple[object, str]] = OrderedDict()
        self._plans: OrderedDict[str, LeafPlan | None] = OrderedDict()

    def plan(self, document: str, make: Callable[[], LeafPlan | None]) -> LeafPlan | None:
        """The compiled leaf plan of ``document`` (None: use graphql-core), made once."""
        if document not in self._plans:
            self._plans[document] = make()
            _trim(self._plans)
        return self._plans[document]

    def get(self, payload: object, document: str) -> ExecutionResult | None:
        hit = self._results.get((id(payload), document))
        return hit[1] if hit is not None and hit[0] is payload else None

    def put(self, payload: object, document: str, result: ExecutionResult) -> None:
        if result.errors:
            return
        self._results[(id(payload), document)] = (payload, result)
        self._encoded[id(result.data)] = (result.data, "")
        _trim(self._results)
        _trim(self._encoded)

    def encode(self, data: object) -> str:
        """JSON of ``data``, kept so that sending the same ``data`` reuses it."""
        body = self.encoded(data)
        if body is None:
            body = json.dumps(data, separators=(",", ":"))
            self._encoded[id(data)] = (data, body)
            _trim(self._encoded)
        return body

    def encoded(self, data: object) -> str | None:
        """JSON of ``data`` if it is a shared result's data (encoded on first use)."""
        hit = self._encoded.get(id(data))
        if hit is None or hit[0] is not data:
            return None
        if not hit[1]:
            hit = (data, json.dumps(data, separators=(",", ":")))
            self._encoded[id(data)] = hit
        return hit[1]


def _trim(cache: OrderedDict[Any, Any]) -> None:
    while len(cache) > MAX_ENTRIES:
        cache.popitem(last=False)


class SharingExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Per-event executor: leaf plans for list payloads; shared results for tuple ones.

    Tuples are the hub's chunks, which every follower receives as the same object; lists
    are one follower's own replay from the file.
    """

    def execute_operation(self, serially: bool | None = None) -> Any:
        payload, shared = self.root_value, _shared(self.context_value)
        document = _document(self)
        if shared is None or document is None or not isinstance(payload, list | tuple):
            return super().execute_operation(serially)
        if (hit := shared.get(payload, document)) is not None:
            return hit
        plan = shared.plan(document, lambda: plan_for(self.schema, self.operation))
        result: Any
        if plan is not None:
            result = ExecutionResult(data=plan.execute(payload), errors=None)
        else:
            result = super().execute_operation(serially)
        if type(payload) is not tuple:  # a subscriber's own replay batch: nobody to share with
            return result
        if inspect.isawaitable(result):
            return _store_later(result, shared, payload, document)
        if isinstance(result, ExecutionResult):
            shared.put(payload, document, result)
        return result


async def _store_later(
    pending: Any, shared: SharedResults, payload: object, document: str
) -> ExecutionResult:
    result: ExecutionResult = await pending
    shared.put(payload, document, result)
    return result


def _shared(context: Any) -> SharedResults | None:
    state = getattr(context, "state", None)
    return getattr(state, "shared", None)


def _document(executor: StrawberryGraphQLCoreExecutionContext) -> str | None:
    loc = executor.operation.loc
    if loc is None or "@" in loc.source.body:
        return None
    name = executor.operation.name.value if executor.operation.name else ""
    return f"{name}\x00{loc.source.body}"
