"""Owner-only modes: created private, looser ones narrowed, never widened."""

from __future__ import annotations

import stat
from pathlib import Path

from app.filemodes import narrow, private_dir, private_file, secure_data_dir, sqlite_file
from app.settings import Settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_created_private_and_looser_modes_narrowed(tmp_path: Path) -> None:
    private_file(tmp_path / "new" / "db.sqlite")
    assert _mode(tmp_path / "new") == 0o700 and _mode(tmp_path / "new" / "db.sqlite") == 0o600
    loose = tmp_path / "loose"
    loose.write_text("x")
    loose.chmod(0o664)
    private_file(loose)
    assert _mode(loose) == 0o600 and loose.read_text() == "x"  # kept, not truncated
    folder = tmp_path / "folder"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    private_dir(folder)
    assert _mode(folder) == 0o700


def test_narrow_never_widens(tmp_path: Path) -> None:
    tight = tmp_path / "tight"
    tight.write_text("x")
    tight.chmod(0o400)
    narrow(tight, 0o600)
    assert _mode(tight) == 0o400
    narrow(tmp_path / "missing", 0o600)  # nothing to do, no error


def test_sqlite_file_of_urls() -> None:
    assert sqlite_file("sqlite:////srv/slipway/slipway.db") == Path("/srv/slipway/slipway.db")
    assert sqlite_file("sqlite://") is None and sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("postgresql+psycopg://u:p@localhost/db") is None


def test_secure_data_dir_narrows_what_exists(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "work").mkdir(parents=True)
    for path in (data, data / "work"):
        path.chmod(0o777)
    for name in ("secret.key", "slipway.db-wal", "slipway.db-shm"):
        (data / name).write_text("x")
        (data / name).chmod(0o666)
    secure_data_dir(Settings(data_dir=data, _env_file=None))  # type: ignore[call-arg]
    assert {p.name: _mode(p) for p in data.iterdir()} == {
        "logs": 0o700,
        "work": 0o700,
        "secret.key": 0o600,
        "slipway.db": 0o600,
        "slipway.db-wal": 0o600,
        "slipway.db-shm": 0o600,
    }
    assert _mode(data) == 0o700
