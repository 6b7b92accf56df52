"""The command line, run as a user would: a fresh data dir, real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from app.db.repos import api_keys
from app.db.session import Database

SLIPWAY = str(Path(sys.executable).with_name("slipway"))


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SLIPWAY_DATA_DIR": str(tmp_path / "data")}
    env.pop("SLIPWAY_DATABASE_URL", None)
    return subprocess.run(
        [SLIPWAY, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_api_key_create_prints_the_key_alone_on_the_last_line(tmp_path: Path) -> None:
    done = _run(tmp_path, "api-key", "create", "--name", "admin", "--scope", "ADMIN")
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip().splitlines()[-1]
    assert key.startswith("slw_") and " " not in key
    db = Database(f"sqlite:///{tmp_path / 'data' / 'slipway.db'}")
    with db.session() as session:
        row = api_keys.find(session, key)
        assert row is not None and row.scopes == "ADMIN" and row.key_hash != key
    db.dispose()


def test_bad_scope_is_refused(tmp_path: Path) -> None:
    done = _run(tmp_path, "api-key", "create", "--name", "x", "--scope", "ROOT")
    assert done.returncode == 2 and "invalid choice" in done.stderr


def test_export_schema_matches_the_committed_file(tmp_path: Path) -> None:
    done = _run(tmp_path, "export-schema")
    assert done.returncode == 0
    assert done.stdout == (Path(__file__).resolve().parents[2] / "schema.graphql").read_text()


def test_migrate_is_idempotent(tmp_path: Path) -> None:
    assert _run(tmp_path, "migrate").returncode == 0
    assert _run(tmp_path, "migrate").returncode == 0
