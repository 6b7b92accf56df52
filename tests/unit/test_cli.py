"""The command line, run as a user would: a fresh data dir, real processes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.crypto import hash_api_key
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


def _create(tmp_path: Path, *args: str) -> str:
    done = _run(tmp_path, "api-key", "create", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_api_key_list_shows_keys_without_secrets(tmp_path: Path) -> None:
    admin = _create(tmp_path, "--name", "admin", "--scope", "ADMIN")
    ci = _create(tmp_path, "--name", "ci", "--scope", "READ", "--expires-in", "30d")
    done = _run(tmp_path, "api-key", "list", "--json")
    assert done.returncode == 0, done.stderr
    rows = {r["name"]: r for r in json.loads(done.stdout)}
    assert rows["ci"]["scopes"] == "READ" and rows["ci"]["state"] == "active"
    assert rows["ci"]["prefix"] == ci[:10] and rows["admin"]["expires"] == "-"
    expires = datetime.fromisoformat(rows["ci"]["expires"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    table = _run(tmp_path, "api-key", "list")
    assert table.returncode == 0 and "ci" in table.stdout and ci[:10] in table.stdout
    for output in (done.stdout, table.stdout):
        assert admin not in output and ci not in output
        assert hash_api_key(admin) not in output and hash_api_key(ci) not in output


def test_api_key_revoke_refuses_the_key(tmp_path: Path) -> None:
    key = _create(tmp_path, "--name", "admin", "--scope", "ADMIN")
    [row] = json.loads(_run(tmp_path, "api-key", "list", "--json").stdout)
    done = _run(tmp_path, "api-key", "revoke", row["id"])
    assert done.returncode == 0 and "revoked" in done.stderr
    assert "no usable ADMIN key is left" in done.stderr  # the CLI may revoke the last one
    db = Database(f"sqlite:///{tmp_path / 'data' / 'slipway.db'}")
    with db.session() as session:
        assert api_keys.find(session, key) is None
    db.dispose()
    [row] = json.loads(_run(tmp_path, "api-key", "list", "--json").stdout)
    assert row["state"] == "revoked"
    again = _run(tmp_path, "api-key", "revoke", row["id"])
    assert again.returncode == 0 and "already revoked" in again.stderr
    unknown = _run(tmp_path, "api-key", "revoke", "no-such-id")
    assert unknown.returncode == 1 and "does not exist" in unknown.stderr


def test_bad_expiry_is_refused(tmp_path: Path) -> None:
    done = _run(
        tmp_path, "api-key", "create", "--name", "x", "--scope", "READ", "--expires-in", "1y"
    )
    assert done.returncode == 2 and "duration" in done.stderr


def test_the_data_dir_is_private(tmp_path: Path) -> None:
    _create(tmp_path, "--name", "admin", "--scope", "ADMIN")
    data = tmp_path / "data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for path in data.iterdir():
        if path.name.startswith("slipway.db"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
