"""Applying an observation: the application's health and its incident in one locked
transaction; then the message handed on and the incident marked sent; then a "row
changed" announcement for ``applicationHealth``."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import update

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
from app.types import NotificationEvent

log = logging.getLogger(__name__)


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
                open_kind=NotificationEvent(incident.kind) if incident else None,
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
                session.add(
                    Incident(
                        application_id=app_id,
                        deployment_id=obs.deployment_id,
                        kind=decision.opens.value,
                        detail=obs.detail,
                        opened_at=obs.at,
                    )
                )
            elif decision.recovers and incident is not None:
                incident.recovered_at = obs.at
        if decision.event is not None:
            self.send_pending([app_id])
        if changed or decision.event is not None:
            self.bus.publish(application_topic(app_id), Changed(None))
        return decision

    def send_pending(self, app_ids: list[str] | None = None) -> int:
        """Hand on every event an incident row has not been marked sent for (just decided,
        or left by a crash between the commit and the send); how many were sent."""
        with self.db.session() as session:
            pending = [
                (inc.id, event, self._message(inc, event, app_name))
                for inc, event, app_name in monitor.unsent(session, app_ids)
            ]
        for incident_id, event, message in pending:
            with self.db.session(locking=True) as session:
                if not monitor.mark_sent(session, incident_id, event, at=utcnow()):
                    continue  # another process sent it meanwhile
                try:  # the mark and what the emitter writes commit together
                    self.emit(session, message)
                except Exception:  # the notifications never stop the monitor
                    log.exception("monitor: handing on %s failed", event.value)
        return len(pending)

    @staticmethod
    def _message(inc: Incident, event: NotificationEvent, app_name: str) -> MonitorMessage:
        recovered = event is NotificationEvent.RECOVERED
        return MonitorMessage(
            event=event,
            application_id=inc.application_id,
            app_name=app_name,
            deployment_id=inc.deployment_id,
            incident_id=inc.id,
            at=(inc.recovered_at or inc.opened_at) if recovered else inc.opened_at,
            detail={} if recovered else dict(inc.detail),
        )
