"""Test clients for GraphQL over HTTP streams: an SSE event parser, a multipart reader, a
TCP proxy that cuts its connections mid-stream, and a recorder of the server's log."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

LOGGERS = ("", "uvicorn", "uvicorn.error", "strawberry", "strawberry.ws")


@dataclass
class Event:
    event: str
    data: str
    id: str | None

    def json(self) -> Any:
        return json.loads(self.data)


def sse_events(lines: Iterable[str]) -> Iterator[Event]:
    """Events as EventSource dispatches them: only those ended by a blank line."""
    fields: dict[str, str] = {}
    data: list[str] = []
    for line in lines:
        if line == "":
            if data or fields:
                yield Event(fields.get("event", "message"), "\n".join(data), fields.get("id"))
            fields, data = {}, []
            continue
        if line.startswith(":"):
            continue  # a comment: the server's heartbeat
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        else:
            fields[name] = value


def multipart_payloads(body: bytes) -> list[dict[str, Any]]:
    """The ``payload`` of each part of a multipart subscription answer (heartbeats left out)."""
    text = body.decode()
    assert text.endswith("--graphql--\r\n"), text[-100:]
    payloads = []
    for part in text.removesuffix("--\r\n").split("--graphql"):
        part = part.strip("\r\n")
        if not part:
            continue
        headers, _, content = part.partition("\r\n\r\n")
        assert "content-type: application/json" in headers.lower(), headers
        message = json.loads(content)
        if message:  # {}: a heartbeat
            payloads.append(message["payload"])
    return payloads


class CuttingProxy:
    """Forwards TCP to ``upstream``; each connection is cut after ``cut_after(n)`` bytes
    from the server (n: the connection's number), mid-event, as a flaky network does."""

    def __init__(self, upstream_port: int, cut_after: Any) -> None:
        self.upstream_port = upstream_port
        self.cut_after = cut_after
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.cuts = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def url(self, path: str = "/graphql") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            limit = self.cut_after(self.connections)
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pipe, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, limit), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while chunk := src.recv(4096):
                if limit is not None and sent + len(chunk) > limit:
                    dst.sendall(chunk[: limit - sent])
                    self.cuts += 1
                    break
                dst.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


class Log(logging.Handler):
    """Every record the server's loggers emit while a test runs (the test's clients aside)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(("httpx", "httpcore")) or record.levelno < logging.WARNING:
            return
        if not any(r is record for r in self.records):  # it propagates through each logger
            self.records.append(record)

    def text(self) -> str:
        return "\n".join(self.format(r) for r in self.records)

    def __enter__(self) -> Log:
        for name in LOGGERS:
            logging.getLogger(name).addHandler(self)
        return self

    def __exit__(self, *_: object) -> None:
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(self)
