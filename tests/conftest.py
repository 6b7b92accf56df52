"""Fixtures for the real services: Docker in Swarm mode, registry, Redis, PostgreSQL."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from tests.services import missing, port_open
from tests.support.auth_registry import AuthRegistry, auth_registry, registry_binary

APPS = Path(__file__).parent / "apps"


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A docker SDK client for an engine in Swarm mode."""
    import docker

    try:
        client = docker.from_env(timeout=120)
        info = client.info()
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine"
        missing(f"Docker engine ({exc.__class__.__name__})")
        raise
    if info.get("Swarm", {}).get("LocalNodeState") != "active":
        missing("Docker Swarm mode (run scripts/services up)")
    yield client
    client.close()


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("SLIPWAY_TEST_REDIS_URL", "redis://127.0.0.1:6390/0")
    if not port_open(url, 6379):
        missing(f"Redis at {url}")
    return url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get(
        "SLIPWAY_TEST_DATABASE_URL",
        "postgresql+psycopg://slipway:slipway@127.0.0.1:5439/slipway",
    )
    if not port_open(url.replace("postgresql+psycopg", "tcp"), 5432):
        missing(f"PostgreSQL at {url}")
    return url


@pytest.fixture(scope="session")
def registry_addr() -> str:
    addr = os.environ.get("SLIPWAY_TEST_REGISTRY", "127.0.0.1:5000")
    if not port_open(addr, 5000):
        missing(f"registry at {addr}")
    return addr


@pytest.fixture(scope="session")
def shared_auth_registry() -> AuthRegistry:
    """The htpasswd registry ``scripts/services`` runs (deletes enabled, one test user)."""
    addr = os.environ.get("SLIPWAY_TEST_AUTH_REGISTRY", "")
    username = os.environ.get("SLIPWAY_TEST_AUTH_REGISTRY_USER", "")
    password = os.environ.get("SLIPWAY_TEST_AUTH_REGISTRY_PASSWORD", "")
    if not (addr and username and password) or not port_open(addr, 5001):
        missing(
            "the htpasswd registry of scripts/services (SLIPWAY_TEST_AUTH_REGISTRY, _USER, "
            "_PASSWORD: eval \"$(scripts/services env)\")"
        )
    return AuthRegistry(addr=addr, username=username, password=password)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthRegistry]:
    """A private registry with basic auth (``tests/support/auth_registry.py``)."""
    if registry_binary() is None:
        missing("docker-registry (Debian package docker-registry; scripts/services installs it)")
    with auth_registry(tmp_path_factory.mktemp("auth-registry")) as running:
        yield running


@pytest.fixture
def pg_schema_url(postgres_url: str) -> Iterator[str]:
    """A private schema per test, so runs never see each other's rows."""
    schema = f"t_{secrets.token_hex(4)}"
    plain = postgres_url.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{postgres_url}?options=-csearch_path%3D{schema}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def redis_db_url(redis_url: str) -> str:
    url = redis_url.rsplit("/", 1)[0] + "/3"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on the embedded default (SQLite) and on PostgreSQL (private schema)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'slipway.db'}"
    url: str = request.getfixturevalue("pg_schema_url")
    return url


def make_git_repo(src: Path, dest: Path, *, branch: str = "main") -> Path:
    """Copy ``src`` into a fresh repository, commit it, and return a bare clone of it."""
    dest.mkdir(parents=True, exist_ok=True)
    work = dest / "work"
    subprocess.run(["cp", "-r", str(src), str(work)], check=True)
    git = ["git", "-C", str(work), "-c", "user.email=t@example.invalid", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q", "-b", branch], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "initial"], check=True)
    bare = dest / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    return bare


@pytest.fixture
def git_repo(tmp_path: Path) -> Any:
    """Factory: ``git_repo("static-ok")`` -> path of a bare repo holding tests/apps/static-ok."""

    def make(app: str, *, branch: str = "main") -> Path:
        return make_git_repo(APPS / app, tmp_path / f"repo-{app}", branch=branch)

    return make
