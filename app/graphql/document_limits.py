"""Bounds on a GraphQL document, checked after parsing and before validation or caching.

A document is text anyone with a key can send; what it costs the server before a resolver
runs is parsing (linear in its tokens, bounded by ``MaxTokensLimiter``) and validation,
which is not linear: graphql-core compares every two fields that share a response name
in one selection set, and Strawberry's ``MaxAliasesLimiter`` walks a fragment again each
time it is spread (twenty-four fragments that each spread the next twice take 26 s).
So :func:`check` measures the document once, linearly (each fragment once), and refuses,
before validation sees it:

- more than ``MAX_SELECTIONS`` selections with fragments counted where they are spread
  (what a fragment-expanding walk visits), or a fragment spread inside itself;
- one response name more than ``MAX_REPEATS`` times in one selection set;
- more than ``MAX_DIRECTIVES`` directives in the text;

and, after validation, variables holding a string with an unpaired surrogate (JSON's
``"\\ud800"``; HTTP bodies refuse them when decoded, WebSocket messages reach here).

Aliases are bounded by Strawberry's ``MaxAliasesLimiter`` (safe once the expanded size is),
tokens by ``MaxTokensLimiter``. Only documents up to ``CACHE_MAX_CHARS`` enter the parser and
validation caches: a parsed document takes about 100 to 300 bytes per character.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from functools import lru_cache

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
)
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
)
from strawberry.extensions.max_aliases import create_validator
from strawberry.schema.schema import validate_document

from app.strict_json import has_unpaired_surrogate

MAX_TOKENS = 2_000
MAX_ALIASES = 30
MAX_DIRECTIVES = 50
MAX_SELECTIONS = 2_000
MAX_REPEATS = 10
CACHE_MAX_CHARS = 2_048
CACHE_SIZE = 128  # at most ~100 MB of parsed documents and their validation errors
DEFAULT_MAX_CHARS = 64 * 1024
# One class for the whole process: the validation cache's key includes the rule classes.
_ALIASES = create_validator(MAX_ALIASES)


class _Refused(Exception):
    pass


def refusal(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "BAD_USER_INPUT"})


def check(document: DocumentNode) -> GraphQLError | None:
    """Why ``document`` is refused before validation, or None."""
    walker = _Walker(document)
    try:
        walker.walk()
    except _Refused as exc:
        return refusal(str(exc))
    except RecursionError:
        return refusal("The document is nested too deeply")
    return None


class _Walker:
    """One pass over each definition; a fragment is measured once and its measure reused."""

    def __init__(self, document: DocumentNode) -> None:
        self.definitions = document.definitions
        self.fragments = {
            d.name.value: d for d in self.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.measured: dict[str, tuple[int, Counter[str]]] = {}
        self.open: set[str] = set()
        self.directives = 0

    def walk(self) -> None:
        for definition in self.definitions:
            if isinstance(definition, FragmentDefinitionNode):
                self.fragment(definition.name.value)
            elif isinstance(definition, OperationDefinitionNode):
                self.count_directives(definition)
                for variable in definition.variable_definitions or ():
                    self.count_directives(variable)
                self.selection_set(definition.selection_set)

    def count_directives(self, node: object) -> None:
        self.directives += len(getattr(node, "directives", None) or ())
        if self.directives > MAX_DIRECTIVES:
            raise _Refused(f"The document has more than {MAX_DIRECTIVES} directives")

    def fragment(self, name: str) -> tuple[int, Counter[str]]:
        """Selections the fragment expands to, and the response names at its top level."""
        if name in self.measured:
            return self.measured[name]
        definition = self.fragments.get(name)
        if definition is None:
            return 0, Counter()  # an unknown fragment: validation says so
        if name in self.open:
            raise _Refused(f'Cannot spread fragment "{name}" within itself')
        self.open.add(name)
        self.count_directives(definition)
        self.measured[name] = self.selection_set(definition.selection_set)
        self.open.discard(name)
        return self.measured[name]

    def selection_set(self, node: SelectionSetNode) -> tuple[int, Counter[str]]:
        size, names = 0, Counter[str]()
        for selection in node.selections:
            self.count_directives(selection)
            if isinstance(selection, FieldNode):
                names[(selection.alias or selection.name).value] += 1
                size += 1
                if selection.selection_set:
                    size += self.selection_set(selection.selection_set)[0]
            else:
                if isinstance(selection, InlineFragmentNode):
                    inner_size, inner_names = self.selection_set(selection.selection_set)
                else:
                    assert isinstance(selection, FragmentSpreadNode)
                    inner_size, inner_names = self.fragment(selection.name.value)
                size += 1 + inner_size
                names.update(inner_names)
            if size > MAX_SELECTIONS:
                raise _Refused(
                    f"The document selects more than {MAX_SELECTIONS} fields, counting each "
                    "fragment wherever it is spread"
                )
        name, repeats = max(names.items(), key=lambda item: item[1], default=("", 0))
        if repeats > MAX_REPEATS:
            raise _Refused(
                f'"{name}" is selected {repeats} times in one selection set (at most {MAX_REPEATS})'
            )
        return size, names


def limit_extensions() -> list[Callable[[], SchemaExtension]]:
    """The schema extensions that apply these limits (HTTP and WebSocket alike); they take
    the place of ``ParserCache`` and ``ValidationCache``."""
    return [
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: AddValidationRules([_ALIASES]),
        BoundedParserCache,
        CheckedValidation,
    ]


class BoundedParserCache(ParserCache):
    """Refuse a document over the byte limit unparsed; cache only short ones."""

    def __init__(self) -> None:
        super().__init__(maxsize=CACHE_SIZE)

    def on_parse(self) -> Iterator[None]:
        """Nothing raised here: Strawberry's streaming path (WebSocket) would not catch it.

        A document that does not parse is left unset, so Strawberry parses it again where it
        turns the syntax error into an answer (bounded by the token limit); the transports
        refuse an over-long one first (:func:`too_long`), which this check only backs up.
        """
        ctx = self.execution_context
        query = ctx.query or ""
        if reason := too_long(query, ctx.context):
            raise refusal(reason)
        try:
            if len(query) <= CACHE_MAX_CHARS:
                ctx.graphql_document = self.cached_parse_document(query, **ctx.parse_options)
            else:
                ctx.graphql_document = parse(query, **ctx.parse_options)
        except GraphQLError:
            ctx.graphql_document = None
        yield


def too_long(query: object, context: object) -> str | None:
    """Why a document is refused unparsed for its length, or None."""
    limit = _max_chars(context)
    if isinstance(query, str) and len(query) > limit:
        return f"The document has {len(query)} characters; at most {limit} are accepted"
    return None


class CheckedValidation(SchemaExtension):
    """:func:`check`, then validation; both answers cached for short documents."""

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.graphql_document is not None and ctx.pre_execution_errors is None:
            args = (ctx.schema._schema, ctx.graphql_document, tuple(ctx.validation_rules))
            short = len(ctx.query or "") <= CACHE_MAX_CHARS
            ctx.pre_execution_errors = (_cached_validate if short else _validate)(*args)
            if not ctx.pre_execution_errors and has_unpaired_surrogate(ctx.variables):
                ctx.pre_execution_errors = [refusal(UNSTORABLE)]
        yield


UNSTORABLE = "A variable holds a string with an unpaired surrogate, which cannot be stored"


def _validate(
    schema: GraphQLSchema, document: DocumentNode, rules: tuple[type[ASTValidationRule], ...]
) -> list[GraphQLError]:
    refused = check(document)
    return [refused] if refused else validate_document(schema, document, rules)


_cached_validate = lru_cache(maxsize=CACHE_SIZE)(_validate)


def _max_chars(context: object) -> int:
    settings = getattr(getattr(context, "state", None), "settings", None)
    limit = getattr(settings, "max_query_bytes", None)
    return limit if isinstance(limit, int) else DEFAULT_MAX_CHARS
