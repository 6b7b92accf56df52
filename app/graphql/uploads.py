"""GraphQL multipart requests (file uploads), streamed to disk with their size bounded.

Starlette's own form parser would spool each file through memory into a temporary file
in ``$TMPDIR`` and puts no bound on its size. Here the body is read as it arrives: its
Content-Length is checked before a byte is read, every chunk is counted, and file data
goes straight into an anonymous file in ``<data dir>/uploads`` (``O_TMPFILE``: nothing
is left on disk if the request fails), from which :func:`store_upload` links it into
place on the same filesystem without a copy. A multipart request from a key without the
DEPLOY scope (only ``dropDeployment`` takes a file) is refused with 403 before a byte of
its body is read; one without a key never gets here (401 in the view). A JSON body may
have at most ``max_query_bytes``.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO

from cross_web import FormData, HTTPException, StarletteRequestAdapter
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, UploadFile

from app.auth.keys import Principal
from app.graphql.context import AppState
from app.types import Scope

FIELD_ALLOWANCE = 1 << 20  # operations + map, beside the file itself
MAX_FIELDS = 8
MAX_FILES = 1
BATCH = 1 << 20  # bytes handed to the parser thread at once
COPY_CHUNK = 1 << 20


class _TooLarge(HTTPException):
    def __init__(self, what: str) -> None:
        super().__init__(413, f"Request body too large: {what}")


def _upload_limit(limit: int) -> str:
    return f"an uploaded file may have at most {limit} bytes (SLIPWAY_MAX_UPLOAD_BYTES)"


def _anonymous_file(directory: Path) -> BinaryIO:
    """A file with no name yet (``O_TMPFILE``), or an unlinked temporary file elsewhere."""
    directory.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(AttributeError, OSError):
        fd = os.open(directory, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
        return open(fd, "w+b")  # noqa: SIM115 - owned by the UploadFile
    return tempfile.TemporaryFile(dir=directory)  # noqa: SIM115


def store_upload(upload: UploadFile, dest: Path) -> int:
    """Give the uploaded file the name ``dest`` (a hard link when possible); its size."""
    src = upload.file
    src.flush()
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(f"/proc/self/fd/{src.fileno()}", dest, follow_symlinks=True)
    except (OSError, io.UnsupportedOperation):
        src.seek(0)
        with open(dest, "xb") as out:
            shutil.copyfileobj(src, out, COPY_CHUNK)
    return dest.stat().st_size


class _Form:
    """Callbacks for python-multipart; runs in a worker thread, one request at a time."""

    def __init__(self, *, spool: Path, max_file: int) -> None:
        self.spool = spool
        self.max_file = max_file
        self.items: list[tuple[str, str | UploadFile]] = []
        self.opened: list[BinaryIO] = []
        self._headers: list[tuple[bytes, bytes]] = []
        self._name = self._value = b""
        self._field: str = ""
        self._data = bytearray()
        self._file: BinaryIO | None = None
        self._file_size = 0
        self._upload: UploadFile | None = None

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._add("_name", d[s:e]),
            "on_header_value": lambda d, s, e: self._add("_value", d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _add(self, attr: str, data: bytes) -> None:
        setattr(self, attr, getattr(self, attr) + data)

    def _part_begin(self) -> None:
        self._headers, self._data, self._upload = [], bytearray(), None

    def _header_end(self) -> None:
        self._headers.append((self._name.lower(), self._value))
        self._name = self._value = b""

    def _headers_finished(self) -> None:
        disposition = dict(self._headers).get(b"content-disposition", b"")
        _, options = parse_options_header(disposition)
        if b"name" not in options:
            raise HTTPException(400, 'A multipart part has no Content-Disposition "name"')
        self._field = options[b"name"].decode("utf-8", "replace")
        if b"filename" not in options:
            if sum(1 for _, v in self.items if isinstance(v, str)) >= MAX_FIELDS:
                raise HTTPException(400, f"At most {MAX_FIELDS} form fields are accepted")
            return
        if sum(1 for _, v in self.items if isinstance(v, UploadFile)) >= MAX_FILES:
            raise HTTPException(400, f"At most {MAX_FILES} file per request is accepted")
        self._file = _anonymous_file(self.spool)
        self.opened.append(self._file)
        self._file_size = 0
        self._upload = UploadFile(
            self._file,
            size=0,
            filename=options[b"filename"].decode("utf-8", "replace"),
            headers=Headers(raw=self._headers),
        )

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._upload is None:
            if len(self._data) + end - start > FIELD_ALLOWANCE:
                raise HTTPException(413, f"A form field is larger than {FIELD_ALLOWANCE} bytes")
            self._data += data[start:end]
            return
        self._file_size += end - start
        if self._file_size > self.max_file:
            raise _TooLarge(_upload_limit(self.max_file))
        if self._file is not None:
            self._file.write(data[start:end])

    def _part_end(self) -> None:
        if self._upload is None:
            self.items.append((self._field, self._data.decode("utf-8", "replace")))
            return
        assert self._file is not None
        self._file.flush()
        self._file.seek(0)
        self._upload.size = self._file_size
        self.items.append((self._field, self._upload))


async def _batches(stream: AsyncIterator[bytes], limit: int, what: str) -> AsyncIterator[bytes]:
    """The body in batches of about ``BATCH`` bytes; 413 once it passes ``limit``."""
    seen = 0
    pending = bytearray()
    async for chunk in stream:
        seen += len(chunk)
        if seen > limit:
            raise _TooLarge(what)
        pending += chunk
        if len(pending) >= BATCH:
            yield bytes(pending)
            pending.clear()
    if pending:
        yield bytes(pending)


class UploadRequestAdapter(StarletteRequestAdapter):
    """Strawberry's Starlette adapter with bounded bodies and streamed uploads."""

    def _limit(self, allowed: int, what: str) -> None:
        """Refuse at once, before the body is read, what says it is too large."""
        length = self._request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > allowed:
            raise _TooLarge(what)

    async def get_body(self) -> bytes:
        state: AppState = self._request.app.state.slipway
        limit = state.settings.max_query_bytes
        what = f"a GraphQL request body may have at most {limit} bytes (SLIPWAY_MAX_QUERY_BYTES)"
        self._limit(limit, what)
        body = bytearray()
        async for chunk in _batches(self._request.stream(), limit, what):
            body += chunk
        return bytes(body)

    async def get_form_data(self) -> FormData:
        principal: Principal | None = getattr(self._request.state, "principal", None)
        if principal is None or Scope.DEPLOY not in principal.scopes:
            raise HTTPException(403, "Uploading a file needs an API key with the DEPLOY scope")
        state: AppState = self._request.app.state.slipway
        max_file = state.settings.max_upload_bytes
        what = _upload_limit(max_file)
        self._limit(max_file + FIELD_ALLOWANCE, what)
        _, params = parse_options_header(self._request.headers.get("content-type", ""))
        boundary = params.get(b"boundary")
        if not boundary:
            raise HTTPException(400, "The multipart body has no boundary")
        form = _Form(spool=state.settings.data_dir / "uploads", max_file=max_file)
        parser = MultipartParser(boundary, form.callbacks())  # type: ignore[arg-type]
        try:
            stream = self._request.stream()
            async for batch in _batches(stream, max_file + FIELD_ALLOWANCE, what):
                await run_in_threadpool(parser.write, batch)
            await run_in_threadpool(parser.finalize)
        except BaseException as exc:
            for file in form.opened:
                file.close()
            if isinstance(exc, FormParserError):
                raise HTTPException(400, f"The multipart body is malformed: {exc}") from exc
            raise
        items = dict(form.items)
        return FormData(files=items, form=items)
