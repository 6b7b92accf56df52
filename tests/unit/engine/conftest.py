"""An engine on a fresh migrated SQLite database with fake adapters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.builders.fake import FakeBuilder
from app.crypto import Cipher, load_or_create_key
from app.db.migrate import upgrade
from app.db.models import Application
from app.db.session import Database
from app.engine.context import Adapters
from app.engine.runner import Engine
from app.ids import new_id
from app.logs.messages import Message
from app.queue.actors import declare
from app.queue.broker import make_broker
from app.queue.submit import Submitted, submit
from app.runtime.fake import FakeRuntime
from app.settings import Settings
from app.sources.fake import FakeGitClient
from app.types import BuildType, DeploymentTrigger


class RecordingBus:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Message]] = []

    def publish(self, topic: str, message: Message) -> None:
        self.sent.append((topic, message))


class World:
    def __init__(self, tmp_path: Path, database_url: str | None = None) -> None:
        self.settings = Settings(
            data_dir=tmp_path / "data",
            database_url=database_url,
            _env_file=None,
            heartbeat_interval=0.05,
            watchdog_interval=0.05,
        )  # type: ignore[call-arg]
        upgrade(self.settings.effective_database_url)
        self.db = Database(self.settings.effective_database_url)
        self.cipher = Cipher(load_or_create_key(self.settings))
        src = tmp_path / "src"
        src.mkdir()
        self.git = FakeGitClient(src)
        self.builder = FakeBuilder()
        self.runtime = FakeRuntime()
        self.bus = RecordingBus()
        self.engine = Engine(
            settings=self.settings,
            db=self.db,
            bus=self.bus,  # type: ignore[arg-type]
            cipher=self.cipher,
            adapters=Adapters(
                git=self.git, builders={BuildType.DOCKERFILE: self.builder}, runtime=self.runtime
            ),
        )

    def submit(
        self,
        app_id: str,
        trigger: DeploymentTrigger = DeploymentTrigger.MANUAL,
        **kwargs: Any,
    ) -> Submitted:
        """Queue a deployment as the API does (a StubBroker queue: nothing runs it)."""
        return submit(
            settings=self.settings,
            db=self.db,
            bus=self.bus,  # type: ignore[arg-type]
            queue=declare(make_broker(self.settings)),
            application_id=app_id,
            trigger=trigger,
            **kwargs,
        )

    def app(self, **fields: object) -> str:
        with self.db.session() as session:
            row = Application(
                name="web",
                app_name=f"web-{new_id()[-8:]}",
                source_type="GIT",
                repository="https://example.invalid/r.git",
                env_enc=self.cipher.encrypt_json({"SECRET": "top-secret-value"}),
                env_keys=["SECRET"],
                **fields,
            )
            session.add(row)
            session.flush()
            return row.id


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[World]:
    """On SQLite and on PostgreSQL: admission and the queue must hold on both."""
    world = World(tmp_path, database_url)
    yield world
    world.db.dispose()
