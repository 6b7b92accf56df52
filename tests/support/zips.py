"""ZIP archives for the drop tests, hostile ones included, built in the test itself.

``zipfile`` writes whatever name and mode bits it is given, so traversal, absolute names,
links, FIFOs and devices need no tricks; a NUL in a name and a header that lies about a
size are patched into the bytes afterwards.
"""

from __future__ import annotations

import os
import stat
import struct
import warnings
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

CENTRAL_SIG = b"PK\x01\x02"
LOCAL_SIG = b"PK\x03\x04"


@dataclass(frozen=True)
class Item:
    name: str
    data: bytes = b""
    mode: int = stat.S_IFREG | 0o644
    compression: int = zipfile.ZIP_DEFLATED


def file(name: str, data: bytes = b"x", **kw: int) -> Item:
    return Item(name, data, **kw)


def folder(name: str) -> Item:
    return Item(name.rstrip("/") + "/", b"", stat.S_IFDIR | 0o755, zipfile.ZIP_STORED)


def symlink(name: str, target: str) -> Item:
    return Item(name, target.encode(), stat.S_IFLNK | 0o777, zipfile.ZIP_STORED)


def fifo(name: str) -> Item:
    return Item(name, b"", stat.S_IFIFO | 0o644, zipfile.ZIP_STORED)


def char_device(name: str) -> Item:
    return Item(name, b"", stat.S_IFCHR | 0o600, zipfile.ZIP_STORED)


def write_zip(path: Path, items: Iterable[Item]) -> Path:
    """Write ``items`` as given (duplicate names too); returns ``path``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name" is the point of some tests
        with zipfile.ZipFile(path, "w") as zf:
            for item in items:
                info = zipfile.ZipInfo(item.name, date_time=(2024, 1, 1, 0, 0, 0))
                info.create_system = 3  # Unix: the high 16 bits of external_attr are st_mode
                info.external_attr = item.mode << 16
                info.compress_type = item.compression
                zf.writestr(info, item.data)
    return path


def zip_tree(src: Path, path: Path, *, prefix: str = "") -> Path:
    """``src``'s files under ``prefix`` (``"repo-main/"`` makes a GitHub-style archive)."""
    items = [
        Item(prefix + p.relative_to(src).as_posix(), p.read_bytes(), stat.S_IFREG | 0o644)
        for p in sorted(src.rglob("*"))
        if p.is_file()
    ]
    return write_zip(path, items)


def random_zip(path: Path, *, files: int, total_bytes: int, per_dir: int = 100) -> Path:
    """``files`` incompressible files (stored) in folders of ``per_dir``, ``total_bytes`` in all."""
    size = total_bytes // files
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for n in range(files):
            info = zipfile.ZipInfo(f"site/d{n // per_dir:04d}/f{n:06d}.bin", (2024, 1, 1, 0, 0, 0))
            info.create_system = 3
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            zf.writestr(info, os.urandom(size))
    return path


def patch_name(path: Path, old: str, new: bytes) -> Path:
    """Replace a name (both headers) by raw bytes of the same length, e.g. with a NUL."""
    raw = old.encode()
    assert len(raw) == len(new)
    data = path.read_bytes()
    assert data.count(raw) == 2, "the name must appear once in each header"
    path.write_bytes(data.replace(raw, new))
    return path


def lie_about_size(path: Path, declared: int, *, match_crc: bool = False) -> Path:
    """Make the only entry declare ``declared`` uncompressed bytes (a header that understates
    what the entry holds); with ``match_crc`` its CRC is made to fit that prefix."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        (info,) = zf.infolist()
        real = zf.read(info)
    crc = zlib.crc32(real[:declared]) if match_crc else info.CRC
    local = data.index(LOCAL_SIG)
    central = data.index(CENTRAL_SIG)
    struct.pack_into("<I", data, local + 14, crc)
    struct.pack_into("<I", data, local + 22, declared)
    struct.pack_into("<I", data, central + 16, crc)
    struct.pack_into("<I", data, central + 24, declared)
    path.write_bytes(bytes(data))
    return path


def flip_byte(path: Path, needle: bytes) -> Path:
    """Corrupt a stored entry's data (its CRC then fails)."""
    data = bytearray(path.read_bytes())
    at = data.index(needle)
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    return path
