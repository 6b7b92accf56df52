"""Uploaded ZIP archives (DROP sources): checked, then extracted without trusting them.

:func:`inspect_archive` reads only the central directory and rejects what must never be
extracted: too big, too many entries, too much declared data or too high a compression
ratio (zip bombs), absolute or escaping names, names with control characters, links,
devices, FIFOs, duplicates, encryption, unknown compression. :func:`extract_archive`
checks again, then writes each entry into a directory it creates itself, counting the
bytes that really come out (a header that lies about a size stops the extraction), and
removes what it wrote when anything goes wrong. A single top-level folder (GitHub's
"Download ZIP") is stripped.

Every rejection is a :class:`BadInput` whose message says what was wrong and where.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from app.errors import BadInput
from app.sources.validate import validate_relative_path

CHUNK = 1 << 20
RATIO_MIN_BYTES = 1 << 20  # smaller entries may compress very well without being a bomb
MAX_NAME_BYTES = 255
MAX_PATH_CHARS = 4096
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")
_COMPRESSIONS = {
    zipfile.ZIP_STORED,
    zipfile.ZIP_DEFLATED,
    zipfile.ZIP_BZIP2,
    zipfile.ZIP_LZMA,
}
_CORRUPT = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError)


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """What an upload may declare; ``None`` for a limit that is not checked."""

    max_bytes: int | None = 1 << 30
    max_entries: int | None = 100_000
    max_total: int | None = 4 << 30
    max_ratio: float | None = 200.0


UNCHECKED = ArchiveLimits(None, None, None, None)


@dataclass(frozen=True, slots=True)
class Entry:
    info: zipfile.ZipInfo
    parts: tuple[str, ...]  # the path below the stripped top folder
    is_dir: bool
    mode: int  # 0o755 or 0o644


@dataclass(frozen=True, slots=True)
class ArchivePlan:
    entries: tuple[Entry, ...]
    dirs: frozenset[tuple[str, ...]]  # every folder the extraction will create
    files: int
    total_bytes: int  # declared uncompressed bytes of all files
    stripped: str | None  # the single top-level folder, if there was one


def drop_archive(workspace_root: Path, deployment_id: str) -> Path:
    """Where an accepted upload waits for its deployment's FETCH_SOURCE."""
    return workspace_root / "drops" / f"{deployment_id}.zip"


def inspect_archive(path: Path, limits: ArchiveLimits = ArchiveLimits()) -> ArchivePlan:
    """Everything :func:`extract_archive` would write, from the central directory alone."""
    with _open(path, limits) as zf:
        return _plan(zf.infolist(), limits)


def check_build_path(plan: ArchivePlan, build_path: str | None) -> str:
    """``build_path`` normalised ("." for the root), if it names a folder of the archive."""
    rel = validate_relative_path(build_path or "/", "dropBuildPath")
    if rel != "." and tuple(rel.split("/")) not in plan.dirs:
        raise BadInput(f"dropBuildPath {rel!r} is not a folder in the archive")
    return rel


def extract_archive(
    path: Path,
    dest: Path,
    *,
    limits: ArchiveLimits = UNCHECKED,
    check: Callable[[], None] = lambda: None,
) -> ArchivePlan:
    """Extract into ``dest``, which must not exist yet; nothing is left there on failure.

    ``check`` is called between entries (cancellation). Size limits were applied when the
    upload was accepted; here every entry must produce exactly the bytes its header
    declares, so a lying header cannot make the archive grow.
    """
    dest.mkdir(mode=0o755)
    try:
        with _open(path, limits) as zf:
            plan = _plan(zf.infolist(), limits)
            free = shutil.disk_usage(dest).free
            if plan.total_bytes > free:
                raise BadInput(f"archive holds {plan.total_bytes} bytes; only {free} are free")
            _Writer(zf, dest, check).write_all(plan)
        return plan
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def _open(path: Path, limits: ArchiveLimits) -> zipfile.ZipFile:
    size = path.stat().st_size
    if limits.max_bytes is not None and size > limits.max_bytes:
        raise BadInput(f"archive is {size} bytes; the limit is {limits.max_bytes}")
    try:
        return zipfile.ZipFile(path)
    except _CORRUPT as exc:
        raise BadInput(f"archive is not a valid ZIP file: {exc}") from exc


def _plan(infos: list[zipfile.ZipInfo], limits: ArchiveLimits) -> ArchivePlan:
    if limits.max_entries is not None and len(infos) > limits.max_entries:
        raise BadInput(f"archive has {len(infos)} entries; the limit is {limits.max_entries}")
    if not infos:
        raise BadInput("archive is empty")
    entries = [e for e in (_entry(info, limits) for info in infos) if e.parts]
    total = sum(e.info.file_size for e in entries if not e.is_dir)
    if limits.max_total is not None and total > limits.max_total:
        raise BadInput(f"archive would extract to {total} bytes; the limit is {limits.max_total}")
    top = _single_top(entries)
    if top is not None:
        entries = [
            Entry(e.info, e.parts[1:], e.is_dir, e.mode) for e in entries if len(e.parts) > 1
        ]
    dirs = _check_tree(entries)
    files = sum(1 for e in entries if not e.is_dir)
    if not files:
        raise BadInput("archive holds no files")
    return ArchivePlan(tuple(entries), frozenset(dirs), files, total, top)


def _entry(info: zipfile.ZipInfo, limits: ArchiveLimits) -> Entry:
    name = info.orig_filename
    parts = _parts(name)
    kind = stat.S_IFMT(info.external_attr >> 16)
    is_dir = name.endswith("/") or kind == stat.S_IFDIR
    if kind == stat.S_IFLNK:
        raise BadInput(f"archive entry {name!r} is a symbolic link; links are not allowed")
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise BadInput(f"archive entry {name!r} is not a regular file or folder (device, FIFO?)")
    if info.flag_bits & 0x1:
        raise BadInput(f"archive entry {name!r} is encrypted")
    if info.compress_type not in _COMPRESSIONS:
        raise BadInput(f"archive entry {name!r} uses unsupported compression {info.compress_type}")
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        raise BadInput(f"archive entry {name!r} is stored but its two sizes differ")
    if is_dir and info.file_size:
        raise BadInput(f"archive entry {name!r} is a folder with data")
    _check_ratio(info, limits)
    executable = (info.external_attr >> 16) & 0o111
    return Entry(info, parts, is_dir, 0o755 if is_dir or executable else 0o644)


def _parts(name: str) -> tuple[str, ...]:
    if _CONTROL.search(name):
        raise BadInput(f"archive entry {name!r} has NUL or control characters in its name")
    if "\\" in name:
        raise BadInput(f"archive entry {name!r} has a backslash in its name; use '/'")
    if name.startswith("/") or _DRIVE.match(name):
        raise BadInput(f"archive entry {name!r} has an absolute path")
    if len(name) > MAX_PATH_CHARS:
        raise BadInput(f"archive entry name is longer than {MAX_PATH_CHARS}: {name[:80]!r}...")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise BadInput(f"archive entry {name!r} has a '..' component (path traversal)")
    if any(len(p.encode()) > MAX_NAME_BYTES for p in parts):
        raise BadInput(f"archive entry {name!r} has a name longer than {MAX_NAME_BYTES} bytes")
    return parts


def _check_ratio(info: zipfile.ZipInfo, limits: ArchiveLimits) -> None:
    if limits.max_ratio is None or info.file_size < RATIO_MIN_BYTES:
        return
    ratio = info.file_size / max(info.compress_size, 1)
    if ratio > limits.max_ratio:
        raise BadInput(
            f"archive entry {info.orig_filename!r} expands {ratio:.0f} times "
            f"({info.compress_size} -> {info.file_size} bytes); the limit is "
            f"{limits.max_ratio:g} (zip bomb?)"
        )


def _single_top(entries: list[Entry]) -> str | None:
    """The name of the one folder everything is in, if there is exactly one."""
    tops = {e.parts[0] for e in entries}
    if len(tops) != 1:
        return None
    top = next(iter(tops))
    if any(len(e.parts) == 1 and not e.is_dir for e in entries):
        return None  # a single file, not a folder
    return top


def _check_tree(entries: list[Entry]) -> set[tuple[str, ...]]:
    """Duplicates and file/folder clashes are rejected; returns every folder."""
    files: set[tuple[str, ...]] = set()
    dirs: set[tuple[str, ...]] = set()
    for e in entries:
        for i in range(1, len(e.parts)):
            dirs.add(e.parts[:i])
        if e.is_dir:
            dirs.add(e.parts)
        elif e.parts in files:
            raise BadInput(f"archive has two entries named {'/'.join(e.parts)!r}")
        else:
            files.add(e.parts)
    clash = files & dirs
    if clash:
        name = "/".join(sorted(clash)[0])
        raise BadInput(f"archive entry {name!r} is both a file and a folder")
    return dirs


class _Writer:
    """Writes a checked plan below ``root`` through directory descriptors, never following
    a link and never opening a file that already exists."""

    _DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    _FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

    def __init__(self, zf: zipfile.ZipFile, root: Path, check: Callable[[], None]) -> None:
        self.zf = zf
        self.root = root
        self.check = check

    def write_all(self, plan: ArchivePlan) -> None:
        root_fd = os.open(self.root, self._DIR_FLAGS)
        try:
            for parts in sorted(plan.dirs, key=len):  # parents first
                self.check()
                with self._parent(root_fd, parts) as fd:
                    os.mkdir(parts[-1], 0o755, dir_fd=fd)
            for entry in plan.entries:
                if not entry.is_dir:
                    self.check()
                    with self._parent(root_fd, entry.parts) as fd:
                        self._file(fd, entry)
        finally:
            os.close(root_fd)

    @contextmanager
    def _parent(self, root_fd: int, parts: tuple[str, ...]) -> Iterator[int]:
        """A descriptor of the folder that holds ``parts``, opened one name at a time."""
        fd = root_fd
        try:
            for name in parts[:-1]:
                nxt = os.open(name, self._DIR_FLAGS, dir_fd=fd)
                if fd != root_fd:
                    os.close(fd)
                fd = nxt
            yield fd
        finally:
            if fd != root_fd:
                os.close(fd)

    def _file(self, dir_fd: int, entry: Entry) -> None:
        info = entry.info
        fd = os.open(entry.parts[-1], self._FILE_FLAGS, 0o600, dir_fd=dir_fd)
        with os.fdopen(fd, "wb") as out:
            try:
                written = self._copy(info, out)
            except _CORRUPT as exc:
                raise BadInput(f"archive entry {info.orig_filename!r} is corrupt: {exc}") from exc
            if written != info.file_size:
                raise BadInput(
                    f"archive entry {info.orig_filename!r} holds {written} bytes, "
                    f"not the {info.file_size} its header declares"
                )
            os.fchmod(out.fileno(), entry.mode)

    def _copy(self, info: zipfile.ZipInfo, out: BinaryIO) -> int:
        """Bytes written; stops as soon as the entry yields more than it declared."""
        written = 0
        with self.zf.open(info) as src:
            while chunk := src.read(CHUNK):
                written += len(chunk)
                if written > info.file_size:
                    raise BadInput(
                        f"archive entry {info.orig_filename!r} holds more than the "
                        f"{info.file_size} bytes its header declares"
                    )
                out.write(chunk)
        return written
