"""Subscription messages only when something the subscriber selected changed.

``deploymentStatus`` and ``applicationStatus`` reload their row on every announcement
(a step ended, a heartbeat noticed a cancel, ...), whichever column changed. The result
of each subscriber's own selection is what decides: it is encoded once (and that encoding
is what the transport sends, ``SharedResults.encode``), compared with the last one sent
on this operation, and dropped when equal. A subscriber selecting only ``status`` hears
nothing until the status changes. Results whose root value is a list (log batches, each
new by construction) and results with errors are sent as they come, without encoding.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from app.graphql.sharing import SharedResults


async def distinct(
    results: AsyncGenerator[Any, None], shared: SharedResults
) -> AsyncGenerator[Any, None]:
    """``results`` without any object result equal to the one sent before it."""
    last: str | None = None
    async with aclosing(results):
        async for result in results:
            if _is_object(result):
                body = shared.encode(result.data)
                if body == last:
                    continue
                last = body
            yield result


def _is_object(result: Any) -> bool:
    data = getattr(result, "data", None)
    if getattr(result, "errors", None) or not isinstance(data, dict) or len(data) != 1:
        return False
    return isinstance(next(iter(data.values())), dict)


def shared_of(context: Any) -> SharedResults | None:
    state = getattr(context, "state", None)
    shared = getattr(state, "shared", None)
    return shared if isinstance(shared, SharedResults) else None
