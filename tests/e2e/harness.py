"""A real Slipway server on loopback (uvicorn in a thread) and small GraphQL clients for it."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from websockets.sync.client import ClientConnection, connect

from app.db.migrate import upgrade
from app.db.repos import api_keys
from app.db.session import Database
from app.engine.context import Adapters
from app.main import create_app, server_config
from app.settings import Settings
from app.types import Scope


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GraphQLError(AssertionError):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(json.dumps(errors))
        self.errors = errors
        self.codes = [e.get("extensions", {}).get("code") for e in errors]


class Client:
    """GraphQL over real HTTP."""

    def __init__(self, url: str, key: str | None) -> None:
        self.url = url
        self.key = key
        headers = {"x-api-key": key} if key else {}
        self.http = httpx.Client(headers=headers, timeout=60)

    def raw(self, query: str, **variables: Any) -> dict[str, Any]:
        res = self.http.post(self.url, json={"query": query, "variables": variables})
        body: dict[str, Any] = res.json()
        return body

    def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        body = self.raw(query, **variables)
        if body.get("errors"):
            raise GraphQLError(body["errors"])
        data: dict[str, Any] = body["data"]
        return data


class Subscription:
    """One graphql-transport-ws operation on its own connection."""

    def __init__(self, ws_url: str, key: str, query: str, variables: dict[str, Any]) -> None:
        conn = connect(ws_url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
        self.ws: ClientConnection = conn.__enter__()
        self.ws.send(json.dumps({"type": "connection_init", "payload": {"apiKey": key}}))
        ack = json.loads(self.ws.recv(timeout=10))
        assert ack["type"] == "connection_ack", ack
        self.ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": query, "variables": variables},
                }
            )
        )

    def messages(self, timeout: float = 60) -> Iterator[dict[str, Any]]:
        """``next`` payloads until ``complete``; fails on error or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg["type"] == "next":
                if msg["payload"].get("errors"):
                    raise GraphQLError(msg["payload"]["errors"])
                yield msg["payload"]["data"]
            elif msg["type"] == "complete":
                return
            elif msg["type"] == "error":
                raise GraphQLError(msg["payload"])

    def close(self) -> None:
        self.ws.close()


class Server:
    def __init__(self, settings: Settings, adapters: Callable[[Settings], Adapters]) -> None:
        self.port = free_port()
        self.settings = settings = settings.model_copy(update={"port": self.port})  # as serve
        upgrade(settings.effective_database_url)
        self.db = Database(settings.effective_database_url)
        app = create_app(settings, adapters=adapters)
        config = server_config(app, settings, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def key(self, *scopes: Scope) -> str:
        with self.db.session() as session:
            _, secret = api_keys.create(session, name="test", scopes=list(scopes or [Scope.ADMIN]))
        return secret

    def client(self, *scopes: Scope) -> Client:
        return Client(self.url, self.key(*scopes))

    def subscribe(self, query: str, **variables: Any) -> Subscription:
        return Subscription(self.ws_url, self.key(Scope.READ), query, variables)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.db.dispose()


@contextmanager
def running_server(
    data_dir: Path, adapters: Callable[[Settings], Adapters], **overrides: Any
) -> Iterator[Server]:
    settings = Settings(data_dir=data_dir, _env_file=None, **overrides)  # type: ignore[call-arg]
    server = Server(settings, adapters)
    server.start()
    try:
        yield server
    finally:
        server.stop()
