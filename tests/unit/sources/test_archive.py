"""Dropped ZIP archives: hostile ones are refused with their reason, nothing escapes the
destination, and what is refused half-way is removed."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest

from app.errors import BadInput
from app.sources.archive import (
    ArchiveLimits,
    check_build_path,
    extract_archive,
    inspect_archive,
)
from tests.support.zips import (
    char_device,
    fifo,
    file,
    flip_byte,
    folder,
    lie_about_size,
    patch_name,
    symlink,
    write_zip,
)

MiB = 1 << 20


@pytest.fixture
def area(tmp_path: Path) -> Path:
    """A parent with a sentinel beside the destination: extraction must never touch it."""
    root = tmp_path / "area"
    (root / "sentinel").mkdir(parents=True)
    (root / "sentinel" / "keep").write_text("untouched")
    return root


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its mode and size (directories included)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_mode, st.st_size)
    return out


def refused(area: Path, zpath: Path, reason: str, **limits: int | float | None) -> None:
    """Both inspection and extraction refuse ``zpath`` saying ``reason``; nothing changes."""
    before = tree(area)
    lim = ArchiveLimits(**limits)  # type: ignore[arg-type]
    with pytest.raises(BadInput, match=reason):
        inspect_archive(zpath, lim)
    with pytest.raises(BadInput, match=reason):
        extract_archive(zpath, area / "out", limits=lim)
    assert tree(area) == before, "nothing written, nothing left behind"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../x", r"'\.\.' component"),
        ("a/../../x", r"'\.\.' component"),
        ("a/b/../../../sentinel/keep", r"'\.\.' component"),
        ("/etc/x", "absolute path"),
        ("C:/x", "absolute path"),
        ("C:\\x", "backslash"),
        ("\\\\server\\share\\x", "backslash"),
        ("a\\..\\..\\x", "backslash"),
        ("a/\x01b", "control characters"),
        ("a/" + "n" * 256, "longer than 255"),
    ],
)
def test_hostile_names_are_refused(area: Path, tmp_path: Path, name: str, reason: str) -> None:
    zpath = write_zip(tmp_path / "h.zip", [file("ok.txt"), file(name, b"pwned")])
    refused(area, zpath, reason)


def test_nul_in_a_name_is_refused(area: Path, tmp_path: Path) -> None:
    zpath = write_zip(tmp_path / "h.zip", [file("okay.txt"), file("evil.txt.sh")])
    patch_name(zpath, "evil.txt.sh", b"evil.txt\x00sh")
    refused(area, zpath, "NUL or control")


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (symlink("link", "/etc/passwd"), "symbolic link"),
        (symlink("a/link", "../../.."), "symbolic link"),
        (fifo("pipe"), "not a regular file"),
        (char_device("null"), "not a regular file"),
    ],
)
def test_links_devices_and_fifos_are_refused(
    area: Path, tmp_path: Path, item: object, reason: str
) -> None:
    zpath = write_zip(tmp_path / "h.zip", [file("ok.txt"), item])  # type: ignore[list-item]
    refused(area, zpath, reason)


def test_zip_bomb_over_the_compression_ratio_is_refused(area: Path, tmp_path: Path) -> None:
    zpath = write_zip(tmp_path / "bomb.zip", [file("zeros.bin", bytes(20 * MiB))])
    assert zpath.stat().st_size < 100_000
    refused(area, zpath, r"expands \d+ times .*zip bomb", max_ratio=200)


def test_small_files_may_compress_well(area: Path, tmp_path: Path) -> None:
    zpath = write_zip(tmp_path / "ok.zip", [file("blank.txt", bytes(512 * 1024))])
    plan = extract_archive(zpath, area / "out", limits=ArchiveLimits(max_ratio=200))
    assert plan.files == 1 and (area / "out" / "blank.txt").stat().st_size == 512 * 1024


def test_total_over_the_limit_is_refused(area: Path, tmp_path: Path) -> None:
    items = [file(f"f{i}.bin", os.urandom(400_000)) for i in range(3)]
    zpath = write_zip(tmp_path / "big.zip", items)
    refused(
        area, zpath, "would extract to 1200000 bytes; the limit is 1000000", max_total=1_000_000
    )


def test_too_many_entries_are_refused(area: Path, tmp_path: Path) -> None:
    zpath = write_zip(tmp_path / "many.zip", [file(f"f{i}") for i in range(11)])
    refused(area, zpath, "11 entries; the limit is 10", max_entries=10)


def test_archive_over_the_size_limit_is_refused(area: Path, tmp_path: Path) -> None:
    zpath = write_zip(tmp_path / "big.zip", [file("r.bin", os.urandom(50_000))])
    refused(area, zpath, r"archive is \d+ bytes; the limit is 10000", max_bytes=10_000)


@pytest.mark.parametrize(
    "content", [b"", b"not a zip at all", b"PK\x03\x04" + os.urandom(200)], ids=str
)
def test_corrupt_archives_are_refused(area: Path, tmp_path: Path, content: bytes) -> None:
    zpath = tmp_path / "bad.zip"
    zpath.write_bytes(content)
    refused(area, zpath, "not a valid ZIP file")


def test_truncated_archive_is_refused(area: Path, tmp_path: Path) -> None:
    zpath = write_zip(tmp_path / "t.zip", [file("a.bin", os.urandom(10_000))])
    zpath.write_bytes(zpath.read_bytes()[:-30])
    refused(area, zpath, "not a valid ZIP file")


def test_crc_error_stops_extraction_and_removes_what_was_written(
    area: Path, tmp_path: Path
) -> None:
    data = b"MARKER" + os.urandom(1000)
    items = [file("first.txt", b"fine")] + [
        file("second.bin", data, compression=zipfile.ZIP_STORED)
    ]
    zpath = flip_byte(write_zip(tmp_path / "crc.zip", items), b"MARKER")
    inspect_archive(zpath)  # the central directory is intact
    before = tree(area)
    with pytest.raises(BadInput, match="second.bin.*corrupt.*CRC"):
        extract_archive(zpath, area / "out")
    assert tree(area) == before


def test_header_understating_the_size_is_refused(area: Path, tmp_path: Path) -> None:
    """A bomb that declares 1000 bytes: the real data fails the header's CRC."""
    zpath = write_zip(tmp_path / "lie.zip", [file("z.bin", bytes(8 * MiB))])
    lie_about_size(zpath, 1000)
    assert inspect_archive(zpath).total_bytes == 1000
    before = tree(area)
    with pytest.raises(BadInput, match="z.bin.*corrupt.*CRC"):
        extract_archive(zpath, area / "out")
    assert tree(area) == before


def test_header_understating_the_size_never_writes_more_than_declared(
    area: Path, tmp_path: Path
) -> None:
    """Even with a CRC forged for the prefix, what comes out is what the header declared."""
    zpath = write_zip(tmp_path / "lie.zip", [file("z.bin", bytes(8 * MiB))])
    lie_about_size(zpath, 1000, match_crc=True)
    extract_archive(zpath, area / "out")
    assert (area / "out" / "z.bin").stat().st_size == 1000


def test_stored_entry_with_two_sizes_is_refused(area: Path, tmp_path: Path) -> None:
    zpath = write_zip(
        tmp_path / "s.zip", [file("s.bin", os.urandom(5000), compression=zipfile.ZIP_STORED)]
    )
    lie_about_size(zpath, 100)
    refused(area, zpath, "stored but its two sizes differ")


@pytest.mark.parametrize(
    ("items", "reason"),
    [
        ([file("a.txt", b"1"), file("a.txt", b"2")], "two entries named 'a.txt'"),
        ([file("d/a.txt"), file("d//./a.txt"), file("e")], "two entries named 'd/a.txt'"),
        ([file("d"), file("d/a.txt")], "'d' is both a file and a folder"),
    ],
)
def test_duplicates_and_clashes_are_refused(
    area: Path, tmp_path: Path, items: list[object], reason: str
) -> None:
    zpath = write_zip(tmp_path / "d.zip", items)  # type: ignore[arg-type]
    refused(area, zpath, reason)


def test_encrypted_entry_is_refused(area: Path, tmp_path: Path) -> None:
    zpath = write_zip(tmp_path / "e.zip", [file("secret.txt", b"x" * 100)])
    data = bytearray(zpath.read_bytes())
    for sig, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(sig) + offset
        data[at] |= 0x1  # general purpose flag: encrypted
    zpath.write_bytes(bytes(data))
    refused(area, zpath, "encrypted")


def test_empty_archives_are_refused(area: Path, tmp_path: Path) -> None:
    refused(area, write_zip(tmp_path / "e.zip", []), "archive is empty")
    refused(area, write_zip(tmp_path / "f.zip", [folder("only/")]), "holds no files")


def test_extraction_writes_files_with_safe_modes(area: Path, tmp_path: Path) -> None:
    zpath = write_zip(
        tmp_path / "ok.zip",
        [
            file("index.html", b"<h1>hi</h1>"),
            file("bin/run.sh", b"#!/bin/sh\n", mode=stat.S_IFREG | 0o4777),
            file("conf/app.ini", b"k=v", mode=stat.S_IFREG | 0o666),
            file("plain.txt", b"no mode bits", mode=0),
            folder("empty"),
        ],
    )
    plan = extract_archive(zpath, area / "out")
    out = area / "out"
    assert plan.files == 4 and plan.stripped is None
    assert (out / "index.html").read_bytes() == b"<h1>hi</h1>"
    assert stat.S_IMODE((out / "bin" / "run.sh").stat().st_mode) == 0o755  # no setuid
    assert stat.S_IMODE((out / "conf" / "app.ini").stat().st_mode) == 0o644
    assert stat.S_IMODE((out / "plain.txt").stat().st_mode) == 0o644
    assert (out / "empty").is_dir()
    assert set(tree(area)) == {"sentinel", "sentinel/keep", "out"} | {
        f"out/{p}"
        for p in ("index.html", "bin", "bin/run.sh", "conf", "conf/app.ini", "plain.txt", "empty")
    }


def test_destination_must_be_fresh(area: Path, tmp_path: Path) -> None:
    zpath = write_zip(tmp_path / "ok.zip", [file("a.txt")])
    with pytest.raises(FileExistsError):
        extract_archive(zpath, area / "sentinel")
    assert (area / "sentinel" / "keep").read_text() == "untouched"


def test_a_single_top_folder_is_stripped(area: Path, tmp_path: Path) -> None:
    """GitHub's "Download ZIP": everything inside ``repo-main/``."""
    zpath = write_zip(
        tmp_path / "gh.zip",
        [
            folder("repo-main/"),
            file("repo-main/README.md", b"readme"),
            file("repo-main/site/Dockerfile", b"FROM busybox"),
        ],
    )
    plan = extract_archive(zpath, area / "out")
    assert plan.stripped == "repo-main"
    assert (area / "out" / "README.md").read_bytes() == b"readme"
    assert (area / "out" / "site" / "Dockerfile").is_file()
    assert not (area / "out" / "repo-main").exists()


@pytest.mark.parametrize(
    "items",
    [
        [file("index.html")],  # one file at the top is not a folder
        [file("a/x"), file("b/y")],  # two top folders
        [file("a/x"), file("top.txt")],
    ],
)
def test_nothing_is_stripped_without_a_single_top_folder(
    tmp_path: Path, items: list[object]
) -> None:
    zpath = write_zip(tmp_path / "n.zip", items)  # type: ignore[arg-type]
    assert inspect_archive(zpath).stripped is None


def test_build_path_selects_a_folder(tmp_path: Path) -> None:
    zpath = write_zip(
        tmp_path / "m.zip",
        [file("repo-main/apps/web/Dockerfile"), file("repo-main/apps/api/Dockerfile")],
    )
    plan = inspect_archive(zpath)
    assert check_build_path(plan, "/") == "."
    assert check_build_path(plan, None) == "."
    assert check_build_path(plan, "apps/web") == "apps/web"
    assert check_build_path(plan, "apps/web/") == "apps/web"
    assert check_build_path(plan, "apps") == "apps"


@pytest.mark.parametrize(
    ("build_path", "reason"),
    [
        ("apps/missing", "not a folder in the archive"),
        ("apps/web/Dockerfile", "not a folder in the archive"),
        ("repo-main/apps/web", "not a folder in the archive"),  # the top folder is stripped
        ("../apps", "must not contain '..'"),
        ("apps/../../etc", "must not contain '..'"),
        ("/etc", "absolute"),
        ("apps\x00/web", "control characters"),
    ],
)
def test_bad_build_paths_are_refused(tmp_path: Path, build_path: str, reason: str) -> None:
    zpath = write_zip(
        tmp_path / "m.zip",
        [file("repo-main/apps/web/Dockerfile"), file("repo-main/apps/api/Dockerfile")],
    )
    with pytest.raises(BadInput, match=reason):
        check_build_path(inspect_archive(zpath), build_path)


def test_cancellation_between_entries_removes_the_partial_tree(area: Path, tmp_path: Path) -> None:
    zpath = write_zip(tmp_path / "c.zip", [file(f"f{i}.txt") for i in range(20)])
    calls = 0

    def check() -> None:
        nonlocal calls
        calls += 1
        if calls == 10:
            raise RuntimeError("cancelled")

    before = tree(area)
    with pytest.raises(RuntimeError, match="cancelled"):
        extract_archive(zpath, area / "out", check=check)
    assert tree(area) == before
