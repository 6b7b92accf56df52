"""How much work a document asks for, measured before it runs, and a limit on it.

The cost is the number of fields execution may resolve: each field counts once per object
it is resolved on, so a list multiplies what is selected inside it by its size. A list's
size is its ``first``, ``last`` or ``limit`` argument (a variable's value, else the argument's
default); the ``edges`` of a connection take the ``first`` of the field that returned the
connection; an introspection list is as long as the schema's lists of that kind are on
average (graphql-core's MaxIntrospectionDepthRule already refuses nesting them); any other
list of objects counts ``DEFAULT_LIST_SIZE``. Fragments count wherever they are spread,
each measured once per page size, so measuring stays linear in the document. Fields under
``@skip``/``@include`` count as if included, and a field selected twice counts twice:
the figure is an upper bound. ``QueryCostLimiter`` measures in ``on_execute``, after
validation, where the variables are known; a subscription once, as the cost of one event.

The depth is the number of nested selections, without ``ofType`` (GraphiQL's
introspection query follows type wrappers seven deep; the schema's wrappers bound that
chain). Strawberry's ``QueryDepthLimiter`` is not used: it walks a fragment again on every
path that spreads it, so twenty fragments that each spread the next one twice take
seconds to validate.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_abstract_type,
    is_enum_type,
    is_list_type,
)
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef
from strawberry.extensions import SchemaExtension

from app.errors import TooComplex
from app.settings import Settings

SIZE_ARGUMENTS = ("first", "last", "limit")
DEFAULT_LIST_SIZE = 10
MAX_SPREAD_NESTING = 32  # fragments spread inside fragments: a document needs a handful
CAP = 10**15  # past this the exact figure does not matter; keeps the arithmetic small
META_FIELDS = {"__schema": SchemaMetaFieldDef, "__type": TypeMetaFieldDef}


@dataclass(frozen=True)
class Measure:
    cost: int
    depth: int


def measure(
    schema: GraphQLSchema,
    document: DocumentNode,
    *,
    operation_name: str | None = None,
    variables: Mapping[str, Any] | None = None,
    max_depth: int = 64,
) -> Measure:
    """The cost and depth of the operation that will run (of all, if that is not known).

    The walk stops descending below ``max_depth``: the depth it reports is then
    ``max_depth + 1``, enough to refuse the document, and recursion stays bounded.
    """
    walker = _Walker(schema, document, variables or {}, max_depth)
    measures = [walker.operation(op) for op in _operations(document, operation_name)]
    return Measure(
        cost=min(CAP, sum(m.cost for m in measures)),
        depth=max((m.depth for m in measures), default=0),
    )


def check(found: Measure, *, max_cost: int, max_depth: int) -> None:
    """Raise TooComplex, saying by how much, when a limit is passed."""
    if found.depth > max_depth:
        raise TooComplex(f"query depth exceeds the maximum of {max_depth}")
    if found.cost > max_cost:
        shown = f"{found.cost:,}" if found.cost < CAP else f"over {CAP:,}"
        raise TooComplex(
            f"query cost {shown} exceeds the maximum of {max_cost:,} (the cost counts each "
            "field once per object it is resolved on; lower `first`/`limit` or nest less)"
        )


def _operations(document: DocumentNode, name: str | None) -> Iterator[OperationDefinitionNode]:
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [op for op in ops if op.name is not None and op.name.value == name]
    yield from chosen if chosen else ops


@dataclass
class _Walker:
    schema: GraphQLSchema
    document: DocumentNode
    variables: Mapping[str, Any]
    max_depth: int
    fragments: dict[str, FragmentDefinitionNode] = field(init=False)
    memo: dict[tuple[str, int | None, int], Measure] = field(default_factory=dict)
    open: set[str] = field(default_factory=set)
    var_defaults: dict[str, ValueNode | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        defs = self.document.definitions
        self.fragments = {d.name.value: d for d in defs if isinstance(d, FragmentDefinitionNode)}

    def operation(self, op: OperationDefinitionNode) -> Measure:
        self.var_defaults = {
            v.variable.name.value: v.default_value for v in op.variable_definitions or ()
        }
        self.memo.clear()  # fragment sizes may come from this operation's variables
        root = self.schema.get_root_type(op.operation)
        return self.selections(root, op.selection_set, None, 0)

    def selections(
        self, parent: GraphQLNamedType | None, node: SelectionSetNode, page: int | None, level: int
    ) -> Measure:
        cost, depth = 0, 0
        for sel in node.selections:
            if isinstance(sel, FieldNode):
                m = self.field(parent, sel, page, level)
            elif isinstance(sel, InlineFragmentNode):
                cond = sel.type_condition
                inner = self.schema.get_type(cond.name.value) if cond else parent
                m = self.selections(inner, sel.selection_set, page, level)
            elif isinstance(sel, FragmentSpreadNode):
                m = self.fragment(sel.name.value, page, level)
            cost, depth = min(CAP, cost + m.cost), max(depth, m.depth)
        return Measure(cost, depth)

    def fragment(self, name: str, page: int | None, level: int) -> Measure:
        """Its measure below ``level``: (cost, depth - level), remembered per entry."""
        key = (name, page, level)
        definition = self.fragments.get(name)
        if key in self.memo or definition is None or name in self.open:
            return self.memo.get(key, Measure(0, 0))  # unknown or cyclic: validation refuses
        if len(self.open) >= MAX_SPREAD_NESTING:
            raise TooComplex(f"fragments are spread more than {MAX_SPREAD_NESTING} deep")
        self.open.add(name)
        parent = self.schema.get_type(definition.type_condition.name.value)
        self.memo[key] = self.selections(parent, definition.selection_set, page, level)
        self.open.discard(name)
        return self.memo[key]

    def field(
        self, parent: GraphQLNamedType | None, node: FieldNode, page: int | None, level: int
    ) -> Measure:
        definition = _field(parent, node.name.value)
        if definition is None or node.selection_set is None:
            return Measure(1, 0)
        own_level = 0 if node.name.value == "ofType" else 1
        if level + own_level > self.max_depth:
            return Measure(1, own_level)  # deep enough to refuse: look no further
        count, inner_page = self.size(parent, definition, node, page)
        named = get_named_type(definition.type)
        inner = self.selections(named, node.selection_set, inner_page, level + own_level)
        return Measure(min(CAP, 1 + count * inner.cost), inner.depth + own_level)

    def size(
        self,
        parent: GraphQLNamedType | None,
        definition: GraphQLField,
        node: FieldNode,
        page: int | None,
    ) -> tuple[int, int | None]:
        """How many times the field's selection runs, and the page size its lists take."""
        asked = self.size_argument(definition, node)
        if not is_list_type(get_nullable_type(definition.type)):
            return 1, asked  # a connection: its edges are as many as its `first`
        if asked is None:
            asked = page if page is not None else _default_size(self.schema, parent, node)
        return asked, None

    def size_argument(self, definition: GraphQLField, node: FieldNode) -> int | None:
        """The page size given (``first``, ``last`` or ``limit``), else ``first``'s or
        ``limit``'s default; absent or null values take the default, anything else fails."""
        names = [name for name in SIZE_ARGUMENTS if name in definition.args]
        for name in names:
            given = next((a.value for a in node.arguments or () if a.name.value == name), None)
            value = self.value(given)
            if _is_int(value):
                return max(1, int(value))
        for name in names:
            value = definition.args[name].default_value
            if _is_int(value):
                return max(1, int(value))
        return None

    def value(self, node: ValueNode | None) -> Any:
        if isinstance(node, VariableNode):
            name = node.name.value
            if name in self.variables:
                return self.variables[name]
            node = self.var_defaults.get(name)
        return int(node.value) if isinstance(node, IntValueNode) else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _field(parent: GraphQLNamedType | None, name: str) -> GraphQLField | None:
    if name in META_FIELDS:
        return META_FIELDS[name]
    if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        found: GraphQLField | None = parent.fields.get(name)
        return found
    return None


def _default_size(schema: GraphQLSchema, parent: GraphQLNamedType | None, node: FieldNode) -> int:
    if parent is not None and parent.name.startswith("__"):
        return _introspection_sizes(schema).get((parent.name, node.name.value), DEFAULT_LIST_SIZE)
    return DEFAULT_LIST_SIZE


@lru_cache(maxsize=8)
def _introspection_sizes(schema: GraphQLSchema) -> dict[tuple[str, str], int]:
    """How long this schema's introspection lists are on average (computed once)."""
    types = list(schema.type_map.values())
    objects = [t for t in types if isinstance(t, GraphQLObjectType | GraphQLInterfaceType)]
    fields = [f for t in objects for f in t.fields.values()]
    count = len(types)
    return {
        ("__Schema", "types"): count,
        ("__Schema", "directives"): len(schema.directives),
        ("__Type", "fields"): _mean(len(fields), count),
        ("__Type", "inputFields"): _mean(
            sum(len(t.fields) for t in types if isinstance(t, GraphQLInputObjectType)), count
        ),
        ("__Type", "enumValues"): _mean(
            sum(len(t.values) for t in types if is_enum_type(t)), count
        ),
        ("__Type", "interfaces"): _mean(sum(len(t.interfaces) for t in objects), count),
        ("__Type", "possibleTypes"): _mean(
            sum(len(schema.get_possible_types(t)) for t in types if is_abstract_type(t)),
            count,
        ),
        ("__Field", "args"): _mean(sum(len(f.args) for f in fields), len(fields)),
        ("__Directive", "args"): _mean(
            sum(len(d.args) for d in schema.directives), len(schema.directives)
        ),
    }


def _mean(total: int, count: int) -> int:
    """Per item, rounded up (a list over all types: the whole schema's, once)."""
    return max(1, math.ceil(total / count)) if count else 1


class QueryCostLimiter(SchemaExtension):
    """Refuse an operation over the depth or cost limit before it runs (variables known)."""

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.graphql_document is not None:
            settings = _settings(ctx.context)
            found = measure(
                ctx.schema._schema,
                ctx.graphql_document,
                operation_name=ctx.operation_name,
                variables=ctx.variables,
                max_depth=settings.max_query_depth,
            )
            check(found, max_cost=settings.max_query_cost, max_depth=settings.max_query_depth)
        yield


def _settings(context: object) -> Settings:
    settings = getattr(getattr(context, "state", None), "settings", None)
    return settings if isinstance(settings, Settings) else Settings.model_construct()
