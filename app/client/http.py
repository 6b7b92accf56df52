"""GraphQL queries and mutations over HTTP (httpx), errors made into ClientError."""

from __future__ import annotations

from typing import Any

import httpx

from app.client.connection import Connection
from app.client.errors import ClientError, from_graphql

TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class Api:
    """One HTTP connection pool to the server; ``call`` returns the answer's ``data``."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.http = httpx.Client(
            headers={"x-api-key": connection.api_key}, timeout=TIMEOUT, follow_redirects=False
        )

    def call(self, document: str, **variables: Any) -> dict[str, Any]:
        url = self.connection.http_url
        try:
            res = self.http.post(url, json={"query": document, "variables": variables})
        except httpx.TimeoutException as exc:
            raise ClientError(f"the server at {url} did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach the Slipway server at {url}: {_reason(exc)}") from exc
        try:
            body = res.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ClientError(f"the server at {url} answered HTTP {res.status_code}, not GraphQL")
        if body.get("errors"):
            error = from_graphql(body["errors"])
            if res.status_code == 401:
                error.message = f"the server refused the API key: {error.message}"
            retry = res.headers.get("retry-after")
            if res.status_code == 429 and retry:
                error.message += f"; retry after {retry} s"
            raise error
        data = body.get("data")
        if res.status_code != 200 or not isinstance(data, dict):
            raise ClientError(f"the server at {url} answered HTTP {res.status_code} without data")
        return data

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _reason(exc: httpx.HTTPError) -> str:
    """The innermost cause's text ('[Errno 111] Connection refused'), never a header."""
    cause: BaseException = exc
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
    return str(cause) or cause.__class__.__name__
