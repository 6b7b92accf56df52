"""Applying an observation: the application's health, its incident, the message, in one
locked transaction, then a "row changed" announcement for ``applicationHealth``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.db.base import utcnow
from app.db.models import Application, Incident
from app.db.repos import applications, monitor
from app.db.session import Database
from app.engine.events import application_topic
from app.errors import NotFound
from app.logs.bus.base import Bus
from app.logs.messages import Changed
from app.monitor.emit import Emitter, MonitorMessage
from app.monitor.incidents import AppState, Decision, Observation, decide
from app.types import ApplicationHealth as Health
from app.types import MonitorEvent


@dataclass
class Recorder:
    db: Database
    bus: Bus
    emit: Emitter

    def apply(self, app_id: str, obs: Observation) -> Decision | None:
        """Decide on ``obs`` against the stored state and store the result; what was
        decided (None: the observation was stale or the application is gone)."""
        with self.db.session(locking=True) as session:
            try:
                app = applications.lock(session, app_id)
            except NotFound:
                return None
            incident = monitor.open_incident(session, app_id)
            state = AppState(
                health=Health(app.health),
                open_kind=MonitorEvent(incident.kind) if incident else None,
                seen_at=app.health_at,
            )
            decision = decide(state, obs)
            if decision is None:
                return None
            changed = decision.health != state.health
            session.execute(  # not updated_at: the application's settings did not change
                update(Application)
                .where(Application.id == app_id)
                .values(health=decision.health.value, health_at=obs.at, updated_at=app.updated_at)
            )
            if decision.opens is not None:
                incident = Incident(
                    application_id=app_id,
                    deployment_id=obs.deployment_id,
                    kind=decision.opens.value,
                    detail=obs.detail,
                    opened_at=obs.at,
                )
                session.add(incident)
                session.flush()
                self._send(session, decision.opens, app.app_name, incident, obs)
                incident.sent_at = utcnow()
            elif decision.recovers and incident is not None:
                incident.recovered_at = obs.at
                self._send(session, MonitorEvent.RECOVERED, app.app_name, incident, obs)
                incident.recovered_sent_at = utcnow()
        if changed or decision.event is not None:
            self.bus.publish(application_topic(app_id), Changed(None))
        return decision

    def _send(
        self, session: Session, event: MonitorEvent, app_name: str, inc: Incident, obs: Observation
    ) -> None:
        message = MonitorMessage(
            event=event,
            application_id=inc.application_id,
            app_name=app_name,
            deployment_id=inc.deployment_id,
            incident_id=inc.id,
            at=obs.at,
            detail=dict(inc.detail if event is MonitorEvent.RECOVERED else obs.detail),
        )
        self.emit(session, message)
