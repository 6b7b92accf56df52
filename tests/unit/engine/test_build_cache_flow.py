"""clearBuildCache through the engine with fakes: the next build is clean, the worker
removes the ledger's images when no API process could, and the flag goes once built."""

from __future__ import annotations

from typing import Any

from app.builders.cache import NO_SOURCES, BuildSteps, CacheLedger
from app.db.models import Application
from app.engine.context import Workspace
from tests.unit.builders.test_build_options import FakeApi
from tests.unit.engine.conftest import World


class FakeEngine:
    def __init__(self, api: FakeApi) -> None:
        self.api = api

    def client(self) -> Any:
        return self.api


def _flag(world: World, app_id: str) -> bool:
    with world.db.session() as session:
        row = session.get(Application, app_id)
        assert row is not None
        return bool(row.clean_cache_next)


def test_the_worker_clears_what_clear_build_cache_asked_for(world: World) -> None:
    api = FakeApi()
    api.add("old-step")
    api.add("kept", tags=("slipway/web:1",))
    world.engine.adapters.engine = FakeEngine(api)  # type: ignore[assignment]
    app_id = world.app(clean_cache_next=True)
    with world.db.session() as session:
        row = session.get(Application, app_id)
        assert row is not None
        ledger = CacheLedger(Workspace(world.settings.work_dir / row.app_name).build_cache_ledger)
    seen = BuildSteps(lambda *_a, **_k: None)
    seen.steps, seen.created = ["old-step", "kept"], ["old-step", "kept"]
    ledger.record(seen, ok=True)

    dep_id = world.submit(app_id).deployment.id
    assert world.engine.run(dep_id)

    assert api.removed == ["old-step"] and "kept" in api.images
    spec = world.builder.builds[-1]
    assert spec.no_cache is True and spec.cache_ledger == ledger.path
    assert ledger.sources() == [NO_SOURCES], "what is kept is no cache source any more"
    assert _flag(world, app_id) is False, "reset once the clean build succeeded"
    log = world.settings.logs_dir.rglob("*.log")
    text = "\n".join(p.read_text() for p in log)
    assert "Removed 1 cached build images of the application" in text
    assert "the build cache was cleared (clearBuildCache)" in text

    again = world.submit(app_id).deployment.id
    assert world.engine.run(again)
    assert world.builder.builds[-1].no_cache is False
