"""The cost and depth of documents, measured on the real schema before they run."""

from __future__ import annotations

import time
from typing import Any

import pytest
from graphql import GraphQLSchema, get_introspection_query, parse

from app.errors import TooComplex
from app.graphql.cost import MAX_SPREAD_NESTING, Measure, check, measure
from app.graphql.schema import build_schema
from app.settings import Settings

DEFAULTS = Settings.model_construct()


def page(first: object) -> str:
    """deployments (1) + edges (1) + per edge: node, id, status (3)."""
    return f"deployments(first: {first}) {{ edges {{ node {{ id status }} }} }}"


def op(*fields: str, head: str = "") -> str:
    return head + "{ " + " ".join(fields) + " }"


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    return build_schema()._schema


def cost(schema: GraphQLSchema, document: str, **variables: Any) -> int:
    return measure(schema, parse(document), variables=variables).cost


def test_a_connection_multiplies_its_edges_by_first(schema: GraphQLSchema) -> None:
    assert cost(schema, op(page(50))) == 2 + 50 * 3
    assert cost(schema, op(page(200))) == 2 + 200 * 3


def test_nested_lists_multiply(schema: GraphQLSchema) -> None:
    nested = op(
        'application(id: "a") { deployments(first: 200) { edges { node { application {',
        page(200),
        "} } } } }",
    )
    # application, deployments, edges; per edge: node, application, then the inner page
    assert cost(schema, nested) == 3 + 200 * (2 + (2 + 200 * 3))


def test_missing_first_is_the_fields_default(schema: GraphQLSchema) -> None:
    assert cost(schema, "{ deployments { edges { node { id } } } }") == 2 + 20 * 2
    assert cost(schema, "{ applications { edges { node { id } } } }") == 2 + 50 * 2
    assert cost(schema, "{ deployments(first: null) { edges { node { id } } } }") == 2 + 20 * 2


def test_variables_are_honoured(schema: GraphQLSchema) -> None:
    doc = op(page("$n"), head="query($n: Int) ")
    assert cost(schema, doc, n=200) == 2 + 200 * 3
    assert cost(schema, doc, n=5) == 2 + 5 * 3
    assert cost(schema, doc) == 2 + 20 * 3  # unset: the field's default
    assert cost(schema, doc, n=None) == 2 + 20 * 3
    with_default = op(page("$n"), head="query($n: Int = 150) ")
    assert cost(schema, with_default) == 2 + 150 * 3
    assert cost(schema, with_default, n=7) == 2 + 7 * 3
    assert cost(schema, doc, n=True) == 2 + 20 * 3  # not an Int: execution refuses it anyway


def test_a_negative_or_zero_size_never_lowers_the_cost(schema: GraphQLSchema) -> None:
    big = "big: " + page(200)
    assert cost(schema, op("neg: " + page(-100000), big)) == (2 + 3) + (2 + 200 * 3)
    variable = op("neg: " + page("$n"), big, head="query($n: Int) ")
    assert cost(schema, variable, n=-(10**9)) == (2 + 3) + (2 + 200 * 3)


def test_limit_of_logs_and_plain_lists(schema: GraphQLSchema) -> None:
    doc = '{ deployment(id: "d") { logs(limit: 10000) { seq message } steps { step } } }'
    # deployment; logs: 1 + 10000 * 2; steps: a list without a size, DEFAULT_LIST_SIZE (10)
    assert cost(schema, doc) == 1 + (1 + 10000 * 2) + (1 + 10 * 1)
    assert cost(schema, '{ deployment(id: "d") { logs { seq } } }') == 1 + (1 + 1000)


def test_aliases_count_separately(schema: GraphQLSchema) -> None:
    one = cost(schema, op(page(200)))
    assert cost(schema, op(*(f"{alias}: {page(200)}" for alias in "abc"))) == 3 * one


def test_fragments_and_inline_fragments_cost_what_they_select(schema: GraphQLSchema) -> None:
    plain = cost(schema, op(page(200)))
    spread = """{ deployments(first: 200) { ...Conn } }
        fragment Conn on DeploymentConnection { edges { node { ...Dep } } }
        fragment Dep on Deployment { id status }"""
    inline = """{ deployments(first: 200) {
        ... on DeploymentConnection { edges { node { ... { id status } } } } } }"""
    assert cost(schema, spread) == cost(schema, inline) == plain


def test_a_fragment_spread_under_two_page_sizes_is_measured_for_each(schema: GraphQLSchema) -> None:
    doc = """{ a: deployments(first: 5) { ...Conn } b: deployments(first: 200) { ...Conn } }
        fragment Conn on DeploymentConnection { edges { node { id status } } }"""
    assert cost(schema, doc) == (2 + 5 * 3) + (2 + 200 * 3)


def test_fragments_spread_twice_per_level_are_measured_at_once(schema: GraphQLSchema) -> None:
    levels = 30
    frags = "".join(
        f"fragment F{i} on Query {{ servers {{ id }} ...F{i + 1} ...F{i + 1} }}\n"
        for i in range(levels)
    )
    doc = "{ ...F0 }\n" + frags + f"fragment F{levels} on Query {{ servers {{ id }} }}\n"
    started = time.perf_counter()
    found = cost(schema, doc)
    assert time.perf_counter() - started < 0.5
    assert found >= 2**levels  # what execution would resolve (field merging aside)


def test_fragment_cycles_end(schema: GraphQLSchema) -> None:
    doc = """{ deployments { ...A } }
        fragment A on DeploymentConnection { edges { node { id } } ...B }
        fragment B on DeploymentConnection { pageInfo { hasNextPage } ...A }"""
    assert cost(schema, doc) > 0  # validation refuses it; measuring it must still end


def test_fragments_nested_too_deep_are_refused(schema: GraphQLSchema) -> None:
    n = MAX_SPREAD_NESTING + 2
    frags = "".join(f"fragment F{i} on Query {{ ...F{i + 1} }}\n" for i in range(n))
    doc = "{ ...F0 }\n" + frags + f"fragment F{n} on Query {{ servers {{ id }} }}\n"
    with pytest.raises(TooComplex):
        cost(schema, doc)


def test_depth_counts_nested_selections(schema: GraphQLSchema) -> None:
    doc = '{ application(id: "a") { deployments { edges { node { application { id } } } } } }'
    assert measure(schema, parse(doc)).depth == 5


def test_depth_stops_the_walk_below_the_maximum(schema: GraphQLSchema) -> None:
    inner = "id"
    for _ in range(35):  # 140 levels (about what graphql-core parses); walked to 11 only
        inner = f"application {{ deployments {{ edges {{ node {{ {inner} }} }} }} }}"
    doc = parse(f'{{ deployment(id: "d") {{ {inner} }} }}')
    assert measure(schema, doc, max_depth=10).depth == 11


def test_graphiql_introspection_fits_the_default_limits(schema: GraphQLSchema) -> None:
    query = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
    )
    found = measure(schema, parse(query))
    assert found.depth <= DEFAULTS.max_query_depth  # ofType chains are not counted
    assert found.cost <= DEFAULTS.max_query_cost // 2  # room for the schema to grow
    check(found, max_cost=DEFAULTS.max_query_cost, max_depth=DEFAULTS.max_query_depth)


def test_the_named_operation_is_measured(schema: GraphQLSchema) -> None:
    doc = parse(op(page(1), head="query Small ") + op(page(200), head=" query Big "))
    assert measure(schema, doc, operation_name="Small").cost == 2 + 3
    assert measure(schema, doc, operation_name="Big").cost == 2 + 200 * 3


def test_check_says_what_was_found_and_the_limit() -> None:
    check(Measure(cost=100, depth=3), max_cost=100, max_depth=3)
    with pytest.raises(TooComplex, match=r"query cost 120,802 exceeds the maximum of 100,000"):
        check(Measure(cost=120_802, depth=8), max_cost=100_000, max_depth=10)
    with pytest.raises(TooComplex, match="depth exceeds the maximum of 10") as caught:
        check(Measure(cost=1, depth=11), max_cost=100_000, max_depth=10)
    assert caught.value.code == "QUERY_TOO_COMPLEX"
