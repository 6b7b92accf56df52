"""Migration 0004 on rows that existed before it: build-arg names copied (values stay for
the application to encrypt: the migration has no key), registry credentials bound to the
host of the row's image; and it goes down again. On SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import command

from app.db.migrate import alembic_config

APPS = sa.table(
    "applications",
    *(
        sa.column(name, kind)
        for name, kind in (
            ("id", sa.String),
            ("name", sa.String),
            ("app_name", sa.String),
            ("status", sa.String),
            ("source_type", sa.String),
            ("build_type", sa.String),
            ("dockerfile", sa.String),
            ("context_path", sa.String),
            ("build_args", sa.JSON),
            ("env_keys", sa.JSON),
            ("ports", sa.JSON),
            ("mounts", sa.JSON),
            ("replicas", sa.Integer),
            ("docker_image", sa.String),
            ("registry_username", sa.String),
            ("registry_password_enc", sa.Text),
            ("created_at", sa.DateTime),
            ("updated_at", sa.DateTime),
        )
    ),
)


def _row(app_id: str, **fields: Any) -> dict[str, Any]:
    now = datetime.now(UTC).replace(tzinfo=None)
    return {
        "id": app_id, "name": app_id, "app_name": app_id, "status": "IDLE",
        "source_type": "DOCKER", "build_type": "DOCKERFILE", "dockerfile": "Dockerfile",
        "context_path": ".", "build_args": {}, "env_keys": [], "ports": [], "mounts": [],
        "replicas": 1, "created_at": now, "updated_at": now, "docker_image": None,
        "registry_username": None, "registry_password_enc": None, **fields,
    }  # fmt: skip


def test_0004_fills_names_and_registry_hosts_of_existing_rows(database_url: str) -> None:
    config = alembic_config(database_url)
    command.upgrade(config, "0003")
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.insert(APPS),
                [
                    _row("a", build_args={"TOKEN": "clear", "B": "x"}),
                    _row(
                        "b",
                        docker_image="127.0.0.1:5000/acme/web:1",
                        registry_username="u",
                        registry_password_enc="tok",
                    ),  # fmt: skip
                    _row("c", docker_image="busybox:1.36", registry_username="u"),
                    _row("d", docker_image="ghcr.io/acme/web:1"),  # no credentials
                ],
            )
        command.upgrade(config, "0004")
        with engine.connect() as conn:
            found = {
                r.id: r
                for r in conn.execute(
                    sa.text("SELECT id, build_arg_keys, registry_host FROM applications")
                )
            }
        keys = {
            i: r.build_arg_keys
            if isinstance(r.build_arg_keys, list)
            else json.loads(r.build_arg_keys)
            for i, r in found.items()
        }
        assert keys == {"a": ["B", "TOKEN"], "b": [], "c": [], "d": []}
        assert {i: r.registry_host for i, r in found.items()} == {
            "a": None, "b": "127.0.0.1:5000", "c": "docker.io", "d": None,
        }  # fmt: skip
        command.downgrade(config, "0003")
        command.upgrade(config, "head")
    finally:
        engine.dispose()
