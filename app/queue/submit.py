"""Creating a deployment: a QUEUED row, a state event, then a message (in that order)."""

from __future__ import annotations

from app.db.models import Deployment
from app.db.repos import applications, deployments
from app.db.session import Database
from app.engine.events import announce
from app.errors import Conflict
from app.ids import new_id
from app.logs.bus.base import Bus
from app.queue.actors import DeploymentQueue
from app.settings import Settings
from app.types import GIT_SOURCES, DeploymentStatus, DeploymentTrigger, SourceType

DEFAULT_TITLES = {
    DeploymentTrigger.MANUAL: "Manual deployment",
    DeploymentTrigger.REBUILD: "Rebuild deployment",
}


def submit(
    *,
    settings: Settings,
    db: Database,
    bus: Bus,
    queue: DeploymentQueue,
    application_id: str,
    trigger: DeploymentTrigger,
    title: str | None = None,
    description: str | None = None,
) -> Deployment:
    """Queue a deployment of the application; the worker decides when it may start."""
    with db.session() as session:
        app = applications.lock(session, application_id)
        source = SourceType(app.source_type)
        if trigger is DeploymentTrigger.REBUILD and source not in GIT_SOURCES:
            raise Conflict(f"a {source.value} application has no source to rebuild; deploy it")
        dep_id = new_id()
        dep = deployments.add(
            session,
            Deployment(
                id=dep_id,
                application_id=app.id,
                title=title or DEFAULT_TITLES.get(trigger, f"{trigger.value.title()} deployment"),
                description=description,
                status=DeploymentStatus.QUEUED.value,
                trigger=trigger.value,
                log_path=str((settings.logs_dir / app.app_name / f"{dep_id}.log").resolve()),
                server_id=app.server_id,
                build_server_id=app.build_server_id,
            ),
        )
    announce(bus, deployment_id=dep.id, application_id=dep.application_id, status="QUEUED")
    queue.send(dep.id)
    return dep
