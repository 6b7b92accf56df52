"""Documents and helpers the registry tests share: a client that keeps every response, and
the search for a secret in responses, log records and every file of the data dir."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.harness import Client, Server

FIELDS = "id name url host username imagePrefix hasPassword secure"
CREATE = f"""
mutation($input: CreateRegistryInput!) {{ createRegistry(input: $input) {{ {FIELDS} }} }}"""
UPDATE = f"""
mutation($id: ID!, $input: UpdateRegistryInput!) {{
  updateRegistry(id: $id, input: $input) {{ {FIELDS} }} }}"""
DELETE = "mutation($id: ID!) { deleteRegistry(id: $id) }"
TEST = """mutation($id: ID!) {
  testRegistry(id: $id) { ok message reachable isRegistry credentialsAccepted pushAllowed } }"""
LIST = f"{{ registries {{ {FIELDS} }} }}"
ONE = f"query($id: ID!) {{ registry(id: $id) {{ {FIELDS} }} }}"
NODE = "query($id: ID!) { node(id: $id) { id ... on Registry { name hasPassword } } }"
APP_FIELDS = "id name registryId rollbackRegistryId hasRegistryPassword"
CREATE_APP_REG = f"""
mutation($input: CreateApplicationInput!) {{
  createApplication(input: $input) {{ {APP_FIELDS} }} }}"""
UPDATE_APP = f"""
mutation($id: ID!, $input: UpdateApplicationInput!) {{
  updateApplication(id: $id, input: $input) {{ {APP_FIELDS} }} }}"""


class Recorded(Client):
    """A client that keeps every response body as text, to search it for secrets."""

    def __init__(self, url: str, key: str | None, seen: list[str]) -> None:
        super().__init__(url, key)
        self.seen = seen

    def raw(self, query: str, **variables: Any) -> dict[str, Any]:
        res = self.http.post(self.url, json={"query": query, "variables": variables})
        self.seen.append(res.text)
        body: dict[str, Any] = res.json()
        return body


def assert_nowhere(secret: str, server: Server, seen: list[str], logs: Any) -> None:
    """Not in any response, log record, deployment log file, or database file in clear."""
    assert seen, "no responses were recorded"
    assert not [body for body in seen if secret in body]
    assert not [r for r in logs.records if secret in r.getMessage()]
    data_dir = Path(server.settings.data_dir)
    for path in data_dir.rglob("*"):
        if path.is_file() and path.name != "secret.key":
            assert secret.encode() not in path.read_bytes(), f"{secret!r} in clear in {path}"
    assert list(data_dir.glob("slipway.db*")), "the database file was not searched"
