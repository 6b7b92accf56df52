"""app/client is a client of the API: it never imports the server's code, and its
settings are checked before anything is sent."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from app.client.connection import Connection
from app.client.errors import ClientError, UsageError, from_graphql

CLIENT = Path(__file__).resolve().parents[3] / "app" / "client"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_client_imports_nothing_of_the_server() -> None:
    files = sorted(CLIENT.glob("*.py"))
    assert len(files) >= 7
    for path in files:
        server_side = {
            name
            for name in _imports(path)
            if name.split(".")[0] == "app" and not name.startswith("app.client")
        }
        assert not server_side, (path.name, server_side)


def test_connection_from_a_base_url() -> None:
    conn = Connection.of("http://127.0.0.1:8000", " slw_abc ")
    assert (conn.http_url, conn.ws_url, conn.api_key) == (
        "http://127.0.0.1:8000/graphql",
        "ws://127.0.0.1:8000/graphql",
        "slw_abc",
    )
    tls = Connection.of("https://deploy.example.com/slipway/graphql/", "k")
    assert tls.ws_url == "wss://deploy.example.com/slipway/graphql"
    assert "slw_abc" not in repr(conn)


@pytest.mark.parametrize(
    ("url", "key", "says"),
    [
        (None, "k", "SLIPWAY_URL"),
        ("http://h:1", None, "SLIPWAY_API_KEY"),
        ("ftp://h", "k", "http://host:port"),
        ("127.0.0.1:8000", "k", "http://host:port"),
        ("http://user:pw@h:1", "k", "credentials"),
    ],
)
def test_bad_settings_are_usage_errors(url: str | None, key: str | None, says: str) -> None:
    with pytest.raises(UsageError) as refused:
        Connection.of(url, key)
    assert says in refused.value.message and refused.value.exit_code == 2


def test_graphql_errors_keep_the_code() -> None:
    error = from_graphql([{"message": "no such app", "extensions": {"code": "NOT_FOUND"}}, {}])
    assert isinstance(error, ClientError)
    assert str(error) == "no such app (and 1 more errors) (NOT_FOUND)" and error.exit_code == 1
