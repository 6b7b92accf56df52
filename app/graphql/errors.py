"""Errors as the API promises them: a code in ``extensions``, never an internal text.

Three kinds reach a client. Ours (``SlipwayError``) carry their own code. Errors about the
request itself, found before anything runs (syntax, validation, a variable that does not
coerce: an unknown enum value, an Int over 2^31, a bad DateTime), are ``BAD_USER_INPUT``
and are not logged. Anything else is a fault of the server: logged once with its
traceback (``Schema.process_errors``) and answered as ``INTERNAL_SERVER_ERROR`` with a
fixed text. Requests refused before GraphQL sees them (no key, a body that is not JSON,
too large) get the same shape from :func:`http_error`, with an HTTP status.
"""

from __future__ import annotations

from graphql import GraphQLError
from starlette.responses import JSONResponse
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import MaskErrors
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

from app.errors import SlipwayError

INTERNAL = "Internal server error; the server log has the details"
BAD_USER_INPUT = "BAD_USER_INPUT"
INTERNAL_CODE = "INTERNAL_SERVER_ERROR"
HTTP_CODES = {401: "UNAUTHENTICATED", 403: "FORBIDDEN", 404: "NOT_FOUND", 429: "RATE_LIMITED"}


# Strawberry's own refusals of a request's shape (an operation type the transport does not
# run, such as a mutation over legacy graphql-ws; no or no single operation).
_REQUEST_SHAPE = (CannotGetOperationTypeError, InvalidOperationTypeError, MissingQueryError)


def is_request_error(error: GraphQLError) -> bool:
    """Raised about the request before execution: its text, its variables' values."""
    original = error.original_error
    return error.path is None and (
        original is None or isinstance(original, (GraphQLError, *_REQUEST_SHAPE))
    )


def is_unexpected(error: GraphQLError) -> bool:
    """A fault of the server (an exception we did not raise on purpose)."""
    original = error.original_error
    return (
        original is not None
        and not isinstance(original, SlipwayError)
        and not is_request_error(error)
    )


def _with_code(error: GraphQLError, code: str) -> GraphQLError:
    return GraphQLError(
        error.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions={**(error.extensions or {}), "code": code},
    )


class _MaskErrors(MaskErrors):
    """MaskErrors with a plain attribute check: its runtime-Protocol isinstance cost ~16 us
    per subscription event and follower, a real share of a busy log's fan-out."""

    def _process_result(self, result: object) -> None:
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [self._one(error) for error in errors]

    def _one(self, error: GraphQLError) -> GraphQLError:
        if is_unexpected(error):
            return _with_code(self.anonymise_error(error), INTERNAL_CODE)
        if (error.extensions or {}).get("code"):
            return error
        return _with_code(error, BAD_USER_INPUT if is_request_error(error) else INTERNAL_CODE)


def error_masking() -> MaskErrors:
    return _MaskErrors(error_message=INTERNAL)


def http_error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """A refusal before GraphQL runs, shaped like a GraphQL answer."""
    code = HTTP_CODES.get(status, BAD_USER_INPUT if status < 500 else INTERNAL_CODE)
    body = {"data": None, "errors": [{"message": message, "extensions": {"code": code}}]}
    return JSONResponse(body, status_code=status, headers=headers)
