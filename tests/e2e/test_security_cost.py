"""Issue 9, finding 2: a READ key nesting lists cannot make the server do unbounded work.

Over real HTTP and WebSocket: the 249-byte nesting attack is refused before it runs (depth,
and cost when it is shallower), fragments and variables do not get around the count,
a query just under the limit still runs, GraphiQL's introspection still works, and
``applications { deployments }`` costs the same number of SQL statements for 2
applications as for 12 (one per page shape, on SQLite and PostgreSQL).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query
from sqlalchemy import event

from app.db.models import Deployment
from app.graphql.context import AppState
from app.ids import new_id
from app.types import Scope
from tests.e2e.conftest import GIT_APP, Fakes
from tests.e2e.harness import Client, GraphQLError, Server, running_server
from tests.e2e.queries import CREATE_APP

NEST = "application{deployments(first:200){edges{node{%s}}}}"


def nested(levels: int, app_id: str, leaves: str = "id") -> str:
    """``application { deployments(first: 200) { ... application ... } }``, ``levels`` deep."""
    inner = leaves
    for _ in range(levels - 1):
        inner = NEST.replace("%s", inner)
    top = NEST.replace("application{", f'application(id:"{app_id}"){{', 1)
    return "{" + top.replace("%s", inner) + "}"


def two_levels(first: int | str, *, head: str = "") -> str:
    """applications(first: 200) x deployments(first): 2 + 200 * (3 + 4 * first)."""
    return head + (
        "{ applications(first: 200) { edges { node { "
        f"deployments(first: {first}) {{ edges {{ node {{ id status title }} }} }}"
        " } } } }"
    )


JUST_UNDER = 124  # 2 + 200 * (3 + 4 * 124) = 99,802
JUST_OVER = 125  # 2 + 200 * (3 + 4 * 125) = 100,602 > SLIPWAY_MAX_QUERY_COST (100,000)


def refused(client: Client, query: str, **variables: Any) -> tuple[GraphQLError, float]:
    started = time.perf_counter()
    with pytest.raises(GraphQLError) as caught:
        client(query, **variables)
    return caught.value, time.perf_counter() - started


def healthz_ms(server: Server) -> float:
    """/healthz's answer time on an open connection (the client's own set-up not counted)."""
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=5) as http:
        http.get("/healthz")
        started = time.perf_counter()
        assert http.get("/healthz").status_code == 200
        return (time.perf_counter() - started) * 1000


def add_deployments(server: Server, app_id: str, count: int) -> list[str]:
    """``count`` finished deployments of the application, oldest first; their ids."""
    now = datetime.now(UTC)
    rows = []
    for n in range(count):
        dep_id = new_id()
        time.sleep(0.002)  # ids sort by their millisecond
        rows.append(
            Deployment(
                id=dep_id,
                application_id=app_id,
                title=f"d{n}",
                status="DONE",
                trigger="MANUAL",
                log_path=str(server.settings.logs_dir / f"{dep_id}.log"),
                created_at=now - timedelta(minutes=count - n),
                finished_at=now,
            )
        )
    with server.db.session() as session:
        session.add_all(rows)
    return [r.id for r in rows]


@pytest.fixture
def app_id(fake_server: Server) -> str:
    client = fake_server.client(Scope.DEPLOY)
    app: dict[str, str] = client(CREATE_APP, input=GIT_APP())["createApplication"]
    add_deployments(fake_server, app["id"], 5)
    return app["id"]


def test_the_249_byte_nesting_attack_is_refused_at_once(fake_server: Server, app_id: str) -> None:
    reader = fake_server.client(Scope.READ)
    attack = nested(4, app_id, leaves="id status title")  # 248 bytes
    assert len(attack.encode()) < 300
    error, took = refused(reader, attack)
    assert error.codes == ["QUERY_TOO_COMPLEX"]
    assert "depth exceeds the maximum of 10" in error.errors[0]["message"]
    assert took < 1.0
    assert healthz_ms(fake_server) < 100


def test_a_shallower_nesting_is_refused_by_its_cost(fake_server: Server, app_id: str) -> None:
    reader = fake_server.client(Scope.READ)
    # depth 8, within the limit; cost: application, deployments, edges, then per edge
    # node, application, deployments, edges and 200 x (node id status title)
    attack = nested(2, app_id, leaves="id status title")
    error, took = refused(reader, attack)
    assert error.codes == ["QUERY_TOO_COMPLEX"]
    assert "query cost 160,803 exceeds the maximum of 100,000" in error.errors[0]["message"]
    assert took < 1.0
    assert healthz_ms(fake_server) < 100


@pytest.mark.usefixtures("app_id")
def test_a_query_just_under_the_limit_runs_and_one_over_is_refused(fake_server: Server) -> None:
    reader = fake_server.client(Scope.READ)
    data = reader(two_levels(JUST_UNDER))
    (edge,) = data["applications"]["edges"]
    assert len(edge["node"]["deployments"]["edges"]) == 5
    error, _ = refused(reader, two_levels(JUST_OVER))
    assert error.codes == ["QUERY_TOO_COMPLEX"]
    assert "query cost 100,602 exceeds the maximum of 100,000" in error.errors[0]["message"]


def test_variables_are_counted_with_their_values(fake_server: Server) -> None:
    reader = fake_server.client(Scope.READ)
    query = two_levels("$n", head="query($n: Int) ")
    assert reader(query, n=JUST_UNDER)["applications"]["edges"] == []
    error, _ = refused(reader, query, n=JUST_OVER)
    assert "query cost 100,602" in error.errors[0]["message"]
    with_default = two_levels("$n", head=f"query($n: Int = {JUST_OVER}) ")
    error, _ = refused(reader, with_default)
    assert "query cost 100,602" in error.errors[0]["message"]


def test_fragments_do_not_hide_the_cost(fake_server: Server, app_id: str) -> None:
    reader = fake_server.client(Scope.READ)
    spread = """
    query($n: Int) { applications(first: 200) { ...Apps } }
    fragment Apps on ApplicationConnection { edges { node { ...App } } }
    fragment App on Application { deployments(first: $n) { ... on DeploymentConnection {
      edges { node { ...Dep } } } } }
    fragment Dep on Deployment { id ... { status title } }"""
    assert len(reader(spread, n=JUST_UNDER)["applications"]["edges"]) == 1
    error, _ = refused(reader, spread, n=JUST_OVER)
    assert error.codes == ["QUERY_TOO_COMPLEX"]
    assert "query cost 100,602" in error.errors[0]["message"]
    # The shallower nesting attack, its levels in fragments: the same cost as inline.
    hidden = f"""{{ application(id: "{app_id}") {{ ...Page }} }}
    fragment Page on Application {{ deployments(first: 200) {{ edges {{ node {{ ...Up }} }} }} }}
    fragment Up on Deployment {{ application {{ ...Leaf }} }}
    fragment Leaf on Application {{ deployments(first: 200) {{ edges {{ node {{
      id status title }} }} }} }}"""
    error, _ = refused(reader, hidden)
    assert "query cost 160,803 exceeds the maximum of 100,000" in error.errors[0]["message"]


def test_fragments_spread_twice_at_every_level_are_refused_at_once(fake_server: Server) -> None:
    reader = fake_server.client(Scope.READ)
    levels = 24  # 2**24 spreads of `servers` if unfolded; one short walk when measured
    frags = "\n".join(
        f"fragment F{i} on Query {{ servers {{ id }} ...F{i + 1} ...F{i + 1} }}"
        for i in range(levels)
    )
    doc = f"{{ ...F0 }}\n{frags}\nfragment F{levels} on Query {{ servers {{ id }} }}"
    error, took = refused(reader, doc)
    # The document limits (app/graphql/document_limits.py) may refuse its expanded size
    # before the cost is measured; either way it is refused at once.
    assert error.codes in (["QUERY_TOO_COMPLEX"], ["BAD_USER_INPUT"])
    assert took < 1.0
    assert healthz_ms(fake_server) < 100


def test_graphiql_introspection_still_works(fake_server: Server) -> None:
    reader = fake_server.client(Scope.READ)
    query = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
    )
    schema = reader(query)["__schema"]
    names = {t["name"] for t in schema["types"]}
    assert {"Query", "Application", "DeploymentConnection"} <= names


def test_a_costly_subscription_is_refused(fake_server: Server) -> None:
    query = (
        'subscription { deploymentStatus(deploymentId: "x") { application { '
        "deployments(first: 200) { edges { node { application { "
        "deployments(first: 200) { edges { node { id status title } } } } } } } } } }"
    )
    sub = fake_server.subscribe(query)
    try:
        with pytest.raises(GraphQLError) as caught:
            next(iter(sub.messages(timeout=10)))
    finally:
        sub.close()
    assert caught.value.codes == ["QUERY_TOO_COMPLEX"]
    assert healthz_ms(fake_server) < 100


# --- one statement per page shape ----------------------------------------------------

NESTED_PAGES = """
query($first: Int, $after: String) { applications(first: 200) { edges { node { id
  deployments(first: $first, after: $after) { edges { cursor node { id applicationId } }
    pageInfo { hasNextPage endCursor } } } } } }"""
ROOT_PAGE = """
query($app: ID, $first: Int, $after: String) {
  deployments(applicationId: $app, first: $first, after: $after) {
    edges { cursor node { id applicationId } } pageInfo { hasNextPage endCursor } } }"""


class Statements:
    """The SQL statements the server runs for requests (not its worker's or watchdog's)."""

    def __init__(self, server: Server) -> None:
        state: AppState = server.server.config.app.state.slipway
        self.engine = state.db.engine
        self.seen: list[str] | None = None
        event.listen(self.engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cur: Any, statement: str, *_: Any) -> None:
        thread = threading.current_thread()
        background = thread.name == "slipway-watchdog" or type(thread).__module__.startswith(
            "dramatiq"
        )
        if self.seen is not None and not background:
            self.seen.append(statement)

    def during(self, client: Client, query: str, **variables: Any) -> list[str]:
        self.seen = []
        try:
            client(query, **variables)
            return self.seen
        finally:
            self.seen = None

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)


@pytest.fixture
def db_server(tmp_path: Path, fakes: Fakes, database_url: str) -> Iterator[Server]:
    with running_server(tmp_path / "data", fakes.adapters, database_url=database_url) as server:
        yield server


def test_nested_deployments_cost_one_statement_per_page_shape(db_server: Server) -> None:
    client = db_server.client(Scope.READ, Scope.DEPLOY)
    made: dict[str, list[str]] = {}
    statements = Statements(db_server)
    try:
        counts = []
        for total in (2, 12):
            while len(made) < total:
                app = client(CREATE_APP, input=GIT_APP(name=f"app-{len(made)}"))
                app_id = app["createApplication"]["id"]
                made[app_id] = add_deployments(db_server, app_id, 1 + len(made) % 4)
            # the least of three, in case a background statement slipped in
            counts.append(
                min(len(statements.during(client, NESTED_PAGES, first=2)) for _ in range(3))
            )
    finally:
        statements.close()
    assert counts[0] == counts[1], f"statements for 2 and 12 applications: {counts}"
    _same_pages_as_the_root_query(client, made)


def _same_pages_as_the_root_query(client: Client, made: dict[str, list[str]]) -> None:
    """Nested pages are each application's own, newest first, with the same cursors."""
    nodes = client(NESTED_PAGES, first=2)["applications"]["edges"]
    assert {n["node"]["id"] for n in nodes} == set(made)
    for edge in nodes:
        app_id, nested_page = edge["node"]["id"], edge["node"]["deployments"]
        root = client(ROOT_PAGE, app=app_id, first=2)["deployments"]
        assert nested_page == root
        assert [e["node"]["id"] for e in nested_page["edges"]] == made[app_id][::-1][:2]
        assert nested_page["pageInfo"]["hasNextPage"] == (len(made[app_id]) > 2)
    after = nodes[-1]["node"]["deployments"]["pageInfo"]["endCursor"]  # an app with 1..4
    following = client(NESTED_PAGES, first=2, after=after)["applications"]["edges"]
    for edge in following:
        root = client(ROOT_PAGE, app=edge["node"]["id"], first=2, after=after)["deployments"]
        assert edge["node"]["deployments"] == root
