"""Checking a GraphQL answer as the API promises it: no 5xx, a code on every error, and no
traceback, neither in the answer nor in the server's log (the tests' servers run in
this process, so their log records can be watched as they are emitted)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

TRACEBACK = "Traceback (most recent call last)"


class LogWatch(logging.Handler):
    """The server's log records that carry a traceback or say ERROR, as they come."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR or TRACEBACK in record.getMessage():
            self.records.append(record)

    def take(self) -> list[str]:
        taken, self.records = self.records, []
        return [_describe(r) for r in taken]


def _describe(record: logging.LogRecord) -> str:
    text = f"{record.levelname} {record.name}: {record.getMessage()}"
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        text += f" [traceback of {exc.__class__.__name__}: {exc}]"
    return text


@contextmanager
def watching_logs() -> Iterator[LogWatch]:
    """Root and uvicorn (which does not propagate): where the server's errors are logged."""
    watch = LogWatch()
    loggers = [logging.getLogger(), logging.getLogger("uvicorn")]
    for logger in loggers:
        logger.addHandler(watch)
    try:
        yield watch
    finally:
        for logger in loggers:
            logger.removeHandler(watch)


def probe(watch: LogWatch) -> None:
    """The watch sees what the server logs: a resolver's masked error, uvicorn's 500."""
    logging.getLogger("app.graphql.errors").error("probe", exc_info=ValueError("probe"))
    logging.getLogger("uvicorn.error").error("Exception in ASGI application")
    logging.getLogger("app.graphql.errors").warning("a plain warning is not a finding")
    assert len(watch.take()) == 2, "the log watch must see the server's errors"


def problems(status: int, text: str) -> list[str]:
    """What is wrong with one answer, by the rules above (empty when it is fine)."""
    if status >= 500:
        return [f"HTTP {status}"]
    if TRACEBACK in text or 'File "/' in text:
        return ["traceback text in the response"]
    try:
        body = json.loads(text)
    except ValueError:
        return [] if status >= 400 else ["a 2xx answer that is not JSON"]
    errors = body.get("errors") if isinstance(body, dict) else None
    if not errors:
        return []
    uncoded = [e for e in errors if not (e.get("extensions") or {}).get("code")]
    return [f"error without extensions.code: {e.get('message')!r}" for e in uncoded[:3]]
