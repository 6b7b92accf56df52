"""What an HTTP GraphQL request carries, decoded strictly: a clear 400 for anything else.

Strawberry's own decoding lets some bodies through to a crash (HTTP 500 and a traceback):
bytes that are not UTF-8, a JSON body that is a string or null, JSON nested past the
interpreter's recursion limit, a multipart ``map`` that does not fit its ``operations``.
Strings with unpaired surrogates (``"\\ud800"``) are refused too: no database stores them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cross_web import HTTPException
from strawberry.file_uploads.utils import replace_placeholders_with_files

from app import strict_json


def decode_json(data: str | bytes) -> object:
    """The JSON value of ``data`` (UTF-8), or HTTPException 400 saying what is wrong."""
    try:
        return strict_json.loads(data)
    except strict_json.JSONRefused as exc:
        raise HTTPException(400, f"The request is {exc}") from exc


def json_request(value: object, what: str = "The request body") -> dict[str, Any] | list[Any]:
    """A GraphQL request is a JSON object (a list is a batch, which the view refuses)."""
    if not isinstance(value, dict | list):
        raise HTTPException(400, f"{what} must be a JSON object with a `query` string")
    return value


def with_files(operations: object, files_map: object, files: Mapping[str, Any]) -> dict[str, Any]:
    """``operations`` with each file put where ``map`` says (GraphQL multipart request)."""
    operations = json_request(operations, "The multipart `operations` field")
    if not isinstance(files_map, dict) or not all(
        isinstance(paths, list) and all(isinstance(p, str) for p in paths)
        for paths in files_map.values()
    ):
        raise HTTPException(400, "The multipart `map` must map each file to a list of paths")
    try:
        return replace_placeholders_with_files(operations, files_map, files)  # type: ignore[arg-type]
    except KeyError as exc:
        raise HTTPException(400, f"The multipart `map` names what is missing: {exc}") from exc
    except (IndexError, TypeError, ValueError) as exc:
        raise HTTPException(
            400, "A multipart `map` path does not lead to a variable in `operations`"
        ) from exc
