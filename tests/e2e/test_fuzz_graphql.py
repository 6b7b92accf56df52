"""Fuzzing the GraphQL API with schemathesis, over real HTTP, with an ADMIN key.

Every query and mutation field gets cases generated from the served schema (by
introspection): positive ones (valid for the schema, literal arguments of every shape)
and negative ones (arguments of the wrong type, missing or out of range). Each answer
must be no 5xx, carry ``extensions.code`` on every error, and show no traceback, neither
in the body nor in the server's log. The server runs the fake adapters, so mutations
that deploy are real requests but nothing is built or released; IDs are drawn partly
from rows that exist, so resolvers are reached beyond NOT_FOUND. Every other case is sent
with the top-level field's arguments as variables, whose values are coerced on another
path than literals.

The run is deterministic (``derandomize``) and bounded: CASES per field and mode, on
SQLite and on PostgreSQL (which refuses what SQLite stores, such as NUL in text).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import graphql
import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.graphql import nodes

from app.types import Scope
from tests.e2e.conftest import GIT_APP, Fakes, wait_finished
from tests.e2e.harness import Server, running_server
from tests.e2e.queries import CREATE_APP, DEPLOY
from tests.support.answers import LogWatch, probe, watching_logs
from tests.support.answers import problems as answer_problems
from tests.support.fake_servers import closed_port

# Cases per field: positive ones reach the resolvers, negative ones only the validation.
CASES = {GenerationMode.POSITIVE: 30, GenerationMode.NEGATIVE: 10}
LAST = {"Mutation.deleteApplication", "Mutation.clearDeployments"}
DEADLINE = timedelta(seconds=5)  # one request; a slower answer is a finding of its own
CREATE_SERVER = 'mutation { createServer(name: "fuzz", maxConcurrentBuilds: 1) { id } }'
# A registry on a port where nothing listens: testRegistry is reached and answers at once.
CREATE_REGISTRY = """mutation($url: String!) {
  createRegistry(input: {name: "fuzz", url: $url, username: "u", password: "fuzz-pw"}) { id } }"""


@dataclass
class Finding:
    operation: str
    mode: str
    problem: str
    query: str
    status: int | None = None
    body: str = ""
    variables: dict[str, Any] | None = None

    def __str__(self) -> str:
        sent = f"query: {self.query}"
        if self.variables is not None:
            sent += f"\nvariables: {json.dumps(self.variables)[:1500]}"
        head = f"--- {self.operation} ({self.mode}): {self.problem}"
        return f"{head}\n{sent}\nHTTP {self.status}: {self.body[:1500]}"


def _seed(server: Server) -> list[str]:
    """Rows for the fuzzer's IDs to hit: an application with a finished deployment, a server,
    a registry."""
    client = server.client(Scope.ADMIN)
    app_id: str = client(CREATE_APP, input=GIT_APP(name="seed"))["createApplication"]["id"]
    dep_id: str = client(DEPLOY, id=app_id)["deployApplication"]["id"]
    wait_finished(client, dep_id)
    server_id: str = client(CREATE_SERVER)["createServer"]["id"]
    registry_id: str = client(CREATE_REGISTRY, url=closed_port())["createRegistry"]["id"]
    return [app_id, dep_id, server_id, registry_id]


def _register_scalars(ids: list[str]) -> None:
    """Strategies for the scalars schemathesis does not know, and IDs that sometimes exist."""
    json_values = st.recursive(
        st.one_of(
            st.text(max_size=20).map(nodes.String),
            st.integers(-(2**31), 2**31 - 1).map(nodes.Int),
            st.booleans().map(nodes.Boolean),
            st.just(nodes.Null),
        ),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3).map(nodes.List),
            st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), inner, max_size=3).map(
                lambda d: nodes.Object([_field(k, v) for k, v in d.items()])
            ),
        ),
        max_leaves=6,
    )
    schemathesis.graphql.scalar("JSON", json_values)
    schemathesis.graphql.scalar("Upload", st.text(max_size=20).map(nodes.String))
    schemathesis.graphql.scalar("ID", st.one_of(st.sampled_from(ids), st.text()).map(nodes.String))


def _field(name: str, value: graphql.ValueNode) -> graphql.ObjectFieldNode:
    return graphql.ObjectFieldNode(name=graphql.NameNode(value=name), value=value)


class Fuzzer:
    """Sends CASES[mode] generated cases per field and mode, and keeps what is wrong with each."""

    def __init__(self, session: requests.Session, base_url: str, watch: LogWatch) -> None:
        self.session, self.base_url, self.watch = session, base_url, watch
        self.sent = 0
        self.findings: list[Finding] = []

    def run(self, schema: Any) -> None:
        operations = [result.ok() for result in schema.get_all_operations()]
        # Those that remove the seeded rows last, so the others reach them (a stable sort).
        operations.sort(key=lambda op: op.label in LAST)
        for operation in operations:
            for mode in CASES:
                self._operation(operation, mode)

    def _operation(self, operation: Any, mode: GenerationMode) -> None:
        @settings(
            max_examples=CASES[mode],
            derandomize=True,
            database=None,
            deadline=DEADLINE,
            phases=[Phase.explicit, Phase.generate],  # no shrinking: every case is recorded
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def one(case: Any) -> None:
            self._send(operation.label, mode, case)

        try:
            one()
        except Exception as exc:  # a deadline or a generation failure: still a finding
            self.findings.append(Finding(operation.label, mode.value, repr(exc)[:500], "?"))

    def _send(self, label: str, mode: GenerationMode, case: Any) -> None:
        """Every other case with its top-level arguments as variables: their values are
        coerced on another path than literals (and issue 9 saw them answered as faults)."""
        self.sent += 1
        schema = case.operation.schema.client_schema
        moved = _as_variables(case.body, schema) if self.sent % 2 == 0 else None
        if moved is not None:
            query, variables = moved
            payload = {"query": query, "variables": variables}
            res = self.session.post(self.base_url, json=payload, timeout=30)
            status, text = res.status_code, res.content.decode("utf-8", "replace")
        else:
            query, variables = case.body, None
            response = case.call(base_url=self.base_url, session=self.session, timeout=30)
            status, text = response.status_code, response.content.decode("utf-8", "replace")
        problems = answer_problems(status, text)
        problems += [f"server log: {line}" for line in self.watch.take()]
        self.findings.extend(
            Finding(label, mode.value, p, query, status, text, variables) for p in problems
        )


def _as_variables(body: str, schema: graphql.GraphQLSchema) -> tuple[str, dict[str, Any]] | None:
    """``body`` with the top-level field's arguments sent as variables of their declared
    types (the values as generated, so a negative case stays invalid), or None."""
    document = graphql.parse(body)
    operation = document.definitions[0]
    assert isinstance(operation, graphql.OperationDefinitionNode)
    root = schema.query_type if operation.operation.value == "query" else schema.mutation_type
    top = operation.selection_set.selections[0]
    assert isinstance(top, graphql.FieldNode) and root is not None
    declared = root.fields[top.name.value].args
    if not top.arguments:
        return None
    variables: dict[str, Any] = {}
    definitions, arguments = [], []
    for n, argument in enumerate(top.arguments):
        name, arg = f"v{n}", declared.get(argument.name.value)
        if arg is None:
            return None
        variables[name] = graphql.value_from_ast_untyped(argument.value)
        variable = graphql.VariableNode(name=graphql.NameNode(value=name))
        definitions.append(
            graphql.VariableDefinitionNode(
                variable=variable, type=graphql.parse_type(str(arg.type))
            )
        )
        arguments.append(graphql.ArgumentNode(name=argument.name, value=variable))
    field = graphql.FieldNode(
        alias=top.alias,
        name=top.name,
        arguments=tuple(arguments),
        directives=top.directives,
        selection_set=top.selection_set,
    )
    rebuilt = graphql.OperationDefinitionNode(
        operation=operation.operation,
        variable_definitions=tuple(definitions),
        directives=(),
        selection_set=graphql.SelectionSetNode(selections=(field,)),
    )
    return graphql.print_ast(graphql.DocumentNode(definitions=(rebuilt,))), variables


def _summary(findings: list[Finding]) -> str:
    """One example of each kind of finding (the kind: its field, mode and problem, with the
    values that differ from case to case left out), most frequent first."""
    groups: dict[tuple[str, str, str], list[Finding]] = {}
    for finding in findings:
        kind = re.sub(r"(\d[\d.e+-]*|'[^']*'|\"[^\"]*\")", "…", finding.problem)
        groups.setdefault((finding.operation, finding.mode, kind), []).append(finding)
    ranked = sorted(groups.values(), key=len, reverse=True)
    parts = [f"{len(findings)} findings of {len(groups)} kinds:"]
    parts += [f"[{len(group)}x] {group[0]}" for group in ranked[:60]]
    return "\n".join(parts)


def test_fuzzed_queries_and_mutations_get_coded_answers_and_no_traceback(
    database_url: str, fakes: Fakes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    began = time.monotonic()
    with (
        running_server(tmp_path / "data", fakes.adapters, database_url=database_url) as server,
        watching_logs() as watch,
    ):
        probe(watch)
        _register_scalars(_seed(server))
        key = server.key(Scope.ADMIN)
        schema = schemathesis.graphql.from_url(server.url, headers={"x-api-key": key})
        with requests.Session() as session:
            session.headers["x-api-key"] = key
            fuzzer = Fuzzer(session, server.url, watch)
            fuzzer.run(schema)
            sent, findings = fuzzer.sent, fuzzer.findings
        ping = time.monotonic()
        health = httpx.get(server.url.replace("/graphql", "/healthz"), timeout=5)
        ping_s = time.monotonic() - ping
    took = time.monotonic() - began
    with capsys.disabled():
        print(
            f"\nfuzz ({database_url.split(':', 1)[0]}): {sent} cases over "
            f"{len(list(schema.get_all_operations()))} fields in {took:.1f}s; "
            f"{len(findings)} finding(s); /healthz after: {health.status_code} in "
            f"{ping_s * 1000:.0f} ms"
        )
    assert health.status_code == 200 and ping_s < 1, "the server still answers at once"
    assert not findings, _summary(findings)
    assert sent >= sum(CASES.values()), "the fuzzer ran"
