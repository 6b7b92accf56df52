"""Run one deployment: claim it, run its steps, and leave a row that tells the truth."""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy.orm import Session

from app.builders.proxy import proxy_secrets, settings_proxy
from app.crypto import Cipher, instance_id
from app.db.models import Deployment
from app.db.repos import applications, deployments, events, registries
from app.db.session import Database
from app.engine import release_spec
from app.engine.context import Adapters, RunContext, Workspace
from app.engine.events import announce
from app.engine.heartbeat import Heartbeat
from app.engine.pipeline import steps_for
from app.engine.snapshot import DeploymentSnapshot, snapshot
from app.engine.steps import PipelineStep, RestorePrevious
from app.errors import Cancelled, HealthCheckError, SlipwayError
from app.logs.bus.base import Bus
from app.logs.writer import LogWriter
from app.masking import MIN_ENV_SECRET, Masker
from app.notify.dispatch import Notifier
from app.runtime.host_paths import HostPathPolicy
from app.runtime.tasks import strip_digest
from app.settings import Settings
from app.types import CancelToken, DeploymentStatus, DeploymentTrigger, NotificationEvent, Step

log = logging.getLogger(__name__)
FINISH_EVENTS = {
    DeploymentStatus.DONE: NotificationEvent.DEPLOY_SUCCEEDED,
    DeploymentStatus.ERROR: NotificationEvent.DEPLOY_FAILED,
}


def worker_id() -> str:
    """``host:pid`` of this process (read when claiming, so a forked worker is itself)."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Outcome:
    status: DeploymentStatus
    error: str | None = None


class Engine:
    """Carries out deployments; safe to call from several worker threads at once."""

    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        bus: Bus,
        cipher: Cipher,
        adapters: Adapters,
        notifier: Notifier | None = None,
    ) -> None:
        self.settings = settings
        self.notifier = notifier  # DEPLOY_SUCCEEDED / DEPLOY_FAILED, queued at the end
        self.db = db
        self.bus = bus
        self.cipher = cipher
        self.adapters = adapters
        self._active: dict[str, CancelToken] = {}
        self._lock = threading.Lock()
        self._closing = False
        self._host_paths = HostPathPolicy.from_settings(settings)
        self._build_proxy = settings_proxy(settings)
        self._instance = instance_id(settings)

    def shutdown(self, reason: str = "the worker shut down") -> None:
        """Stop every deployment this engine is running: each ends ERROR, its release undone."""
        with self._lock:
            self._closing = True
            tokens = list(self._active.values())
        for token in tokens:
            token.cancel(reason, fails=True)

    def run(self, deployment_id: str) -> bool:
        """Run the deployment if it can be claimed now; False when it must wait its turn."""
        if self._closing:  # the row stays QUEUED: another process's watchdog sends it again
            return False
        claimed = self._claim(deployment_id)
        if claimed is None:
            return False
        snap, previous_sha, timeout = claimed
        app_id = snap.app.id
        announce(self.bus, deployment_id=snap.id, application_id=app_id, status="RUNNING")
        cancel = CancelToken()
        writer = LogWriter(
            path=Path(snap.log_path), deployment_id=snap.id, bus=self.bus, secrets=snap.app.secrets
        )
        # The moment the heartbeat learns the row was ended elsewhere, not one more line.
        cancel.on_cancel(lambda: writer.abandon() if cancel.abandoned else None)
        ctx = RunContext(
            deployment=snap,
            writer=writer,
            cancel=cancel,
            adapters=self.adapters,
            workspace=Workspace(self.settings.work_dir / snap.app.app_name),
            health_timeout=self.settings.health_timeout,
            endpoint_mode=self.settings.endpoint_mode,
            fetch_retries=self.settings.fetch_retries,
            instance=self._instance,
            extra={"previous_commit_sha": previous_sha} if previous_sha else {},
            build_proxy=self._build_proxy,
        )
        hb = Heartbeat(
            db=self.db,
            deployment_id=snap.id,
            cancel=cancel,
            interval=self.settings.heartbeat_interval,
            timeout=timeout,
        )
        with self._lock:
            self._active[snap.id] = cancel
            if self._closing:
                cancel.cancel("the worker shut down", fails=True)
        try:
            with hb:
                outcome = self._execute(ctx)
            self._finish(ctx, outcome)
        finally:
            with self._lock:
                self._active.pop(snap.id, None)
        return True

    def _claim(self, deployment_id: str) -> tuple[DeploymentSnapshot, str | None, float] | None:
        with self.db.session(locking=True) as session:
            dep = deployments.claim(
                session,
                deployment_id=deployment_id,
                pid=os.getpid(),
                worker=worker_id(),
                default_limit=self.settings.max_concurrent_builds,
            )
            if dep is None:
                return None
            application = applications.require(session, dep.application_id)
            previous = deployments.latest_fetched(session, application.id)
            sha = previous.commit_sha if previous else None
            timeout = application.deploy_timeout or self.settings.deploy_timeout
            applications.seal_build_args(application, self.cipher)
            named = registries.by_ids(
                session, (application.registry_id, application.rollback_registry_id)
            )
            target = deployments.get(session, dep.rollback_of_id) if dep.rollback_of_id else None
            snap = snapshot(application, dep, self.cipher, named, target)
            proxy = proxy_secrets(self._build_proxy)
            if proxy:  # credentials in SLIPWAY_BUILD_*_PROXY are masked like the app's own
                snap = replace(snap, app=replace(snap.app, secrets=snap.app.secrets + proxy))
            return snap, sha, timeout

    def _execute(self, ctx: RunContext) -> Outcome:
        snap = ctx.deployment
        ctx.say(f"Deployment {snap.id} of {snap.app.app_name} started ({snap.trigger.value})")
        current: Step | None = None
        try:
            # A row written before the bind-mount rules (or into the database directly)
            # is refused here, before anything is fetched, built or released.
            self._host_paths.check_release(snap.app.mounts, snap.app.admin_binds)
            point = snap.rollback_point
            if point is not None:  # what a rollback releases is checked the same way
                self._host_paths.check_release(point.released.service.mounts, point.admin_binds)
            rollback = snap.trigger is DeploymentTrigger.ROLLBACK
            copy = snap.app.rollback_registry is not None and snap.app.rollback_active
            pipeline = steps_for(
                snap.app.source_type,
                push=snap.app.registry is not None,
                rollback=rollback,
                copy=copy and not rollback,
            )
            for step in pipeline:
                ctx.cancel.check()
                current = step.step
                self._run_step(ctx, step)
        except Cancelled as exc:
            if ctx.cancel.abandoned:  # the service may be a newer deployment's by now
                return Outcome(DeploymentStatus.ERROR, str(exc))
            self._undo_release(ctx)
            status = DeploymentStatus.ERROR if ctx.cancel.fails else DeploymentStatus.CANCELLED
            return Outcome(status, str(exc))
        except HealthCheckError as exc:
            if current is Step.VERIFY_HEALTH:
                return self._after_failed_verify(ctx, exc)
            return Outcome(DeploymentStatus.ERROR, str(exc))
        except SlipwayError as exc:  # a step's own failure, or bad input found late
            if isinstance(exc, release_spec.RollbackPointGone):
                with self.db.session() as session:  # canRollback says so from now on
                    deployments.forget_rollback_point(session, exc.deployment_id)
            return Outcome(DeploymentStatus.ERROR, str(exc))
        except Exception as exc:
            log.exception("deployment %s failed unexpectedly", snap.id)
            return Outcome(DeploymentStatus.ERROR, f"internal error: {exc.__class__.__name__}")
        return Outcome(DeploymentStatus.DONE)

    def _after_failed_verify(self, ctx: RunContext, exc: HealthCheckError) -> Outcome:
        """Automatic restore: a release that replaced a running version and then failed
        verification puts that version back and waits for it to answer, then ends ERROR."""
        failed = str(exc)
        assert ctx.release is not None and ctx.service is not None
        name = ctx.service.name
        if ctx.release.created:
            ctx.say(
                f"Nothing to restore: this deployment created service {name} (no earlier "
                "version was running); the failed service is left as it is"
            )
            return Outcome(DeploymentStatus.ERROR, failed)
        if not ctx.deployment.app.restore_on_failure:
            ctx.say(f"restoreOnFailure is off: the failed release of {name} is left in place")
            return Outcome(DeploymentStatus.ERROR, failed)
        ctx.previous_health_path = self._previous_health_path(ctx)
        try:
            self._run_step(ctx, RestorePrevious())
        except Cancelled as stop:
            if ctx.cancel.abandoned:
                return Outcome(DeploymentStatus.ERROR, failed)
            return Outcome(
                DeploymentStatus.ERROR,
                f"the new version failed: {failed}; restoring the previous version was "
                f"interrupted ({stop})",
            )
        except Exception as again:  # a SlipwayError, or a bug: the row must still end
            why = str(again)
            if not isinstance(again, SlipwayError):
                log.exception("deployment %s: restoring the previous version", ctx.deployment.id)
                why = f"internal error: {again.__class__.__name__}"
            ctx.say(f"Restoring the previous version failed too: {why}")
            return Outcome(
                DeploymentStatus.ERROR,
                f"the new version failed: {failed}; restoring the previous version failed "
                f"too: {why}",
            )
        return Outcome(
            DeploymentStatus.ERROR,
            f"the new version failed: {failed}; the previous version ({ctx.restored_image}) "
            "was restored and answers again",
        )

    def _previous_health_path(self, ctx: RunContext) -> str | None:
        """The healthCheckPath the replaced version was released with, when the newest DONE
        deployment's snapshot is of the image being put back (else the current one)."""
        assert ctx.release is not None
        with self.db.session() as session:
            row = deployments.latest_done(session, ctx.deployment.app.id)
            token = row.release_spec_enc if row else None
        if not token or ctx.release.previous_image is None:
            return None
        try:
            released = release_spec.decode(self.cipher, token).service
        except SlipwayError:
            return None
        same = strip_digest(released.image) == strip_digest(ctx.release.previous_image)
        return released.health_check_path if same else None

    def _undo_release(self, ctx: RunContext) -> None:
        """A release stopped half-way is rolled back, so nothing half-applied stays."""
        if ctx.release is None or ctx.service is None:
            return
        try:
            ctx.adapters.runtime.undo(ctx.service, ctx.release, log=ctx.log)
        except SlipwayError as exc:
            ctx.say(f"Rolling back the release failed: {exc}")

    def _run_step(self, ctx: RunContext, step: PipelineStep) -> None:
        name = step.step.value
        ctx.writer.step = name
        with self.db.session() as session:
            event = events.start(session, deployment_id=ctx.deployment.id, step=name)
        ctx.say(f"==> {name}")
        outcome, message = "ERROR", None
        try:
            step.run(ctx)
            outcome = "DONE"
        except Cancelled as exc:
            outcome, message = "CANCELLED", str(exc)
            raise
        except SlipwayError as exc:
            message = str(exc)
            raise
        finally:
            with self.db.session() as session:
                events.end(session, event_id=event.id, outcome=outcome, message=message)
                dep = deployments.require(session, ctx.deployment.id)
                dep.commit_sha = ctx.commit_sha or dep.commit_sha
                dep.image_ref = ctx.image_ref or dep.image_ref
                dep.registry_id = ctx.registry_id or dep.registry_id
                if ctx.known_hosts:
                    _record_known_hosts(session, ctx)
                if outcome == "DONE" and step.step is Step.BUILD_IMAGE:
                    _built(session, ctx)
            announce(
                self.bus,
                deployment_id=ctx.deployment.id,
                application_id=ctx.deployment.app.id,
                status=None,
            )

    def _finish(self, ctx: RunContext, outcome: Outcome) -> None:
        if ctx.cancel.abandoned:  # its log was closed and its row ended by someone else
            ctx.writer.abandon()
            log.warning("deployment %s: %s; stopped", ctx.deployment.id, ctx.cancel.reason)
            return
        error = _mask(outcome.error, ctx.deployment.app.secrets)
        ctx.writer.step = None
        if outcome.status is DeploymentStatus.DONE:
            ctx.say("Deployment finished: DONE")
        else:
            ctx.say(f"Deployment finished: {outcome.status.value}: {error}")
        ctx.writer.close()
        with self.db.session() as session:
            finished = deployments.finish(
                session, deployment_id=ctx.deployment.id, status=outcome.status, error=error
            )
            if finished is not None and outcome.status is DeploymentStatus.DONE:
                self._keep_rollback_point(ctx, finished)
        if finished is None:
            log.warning("deployment %s was already finished elsewhere", ctx.deployment.id)
            return
        announce(
            self.bus,
            deployment_id=ctx.deployment.id,
            application_id=ctx.deployment.app.id,
            status=outcome.status.value,
        )
        event = FINISH_EVENTS.get(outcome.status)
        if event is not None and self.notifier is not None:  # queued, never sent from here
            self.notifier.emit(
                event, application_id=ctx.deployment.app.id, deployment_id=ctx.deployment.id
            )

    def _keep_rollback_point(self, ctx: RunContext, dep: Deployment) -> None:
        """A DONE deployment records what it released (encrypted, always: automatic
        restore reads it) and, with rollbackActive, its rollback point: the image it
        released and the copy in the rollback registry. A rollback's point is its target's."""
        snap, service = ctx.deployment, ctx.service
        if service is None:
            return
        rollback = ctx.rollback
        dep.release_spec_enc = release_spec.encode(
            self.cipher,
            service,
            health_timeout=rollback.health_timeout if rollback else snap.app.health_timeout,
            admin_binds=rollback.admin_binds if rollback else snap.app.admin_binds,
        )
        if not snap.app.rollback_active:
            return
        dep.rollback_image = service.image
        point = snap.rollback_point
        if ctx.rollback_copy is not None:
            dep.rollback_registry_id, dep.rollback_registry_ref = ctx.rollback_copy
        elif point is not None and point.registry_ref:
            dep.rollback_registry_id, dep.rollback_registry_ref = (
                point.registry_id,
                point.registry_ref,
            )


def _record_known_hosts(session: Session, ctx: RunContext) -> None:
    """Trust on first use: keep the host keys seen, unless the application pinned some since."""
    application = applications.require(session, ctx.deployment.app.id)
    if not application.known_hosts:
        application.known_hosts = ctx.known_hosts
        ctx.say("Recorded the repository server's SSH host key on the application (knownHosts)")
    ctx.known_hosts = None


def _built(session: Session, ctx: RunContext) -> None:
    """A build after ``clearBuildCache`` ran uncached: the builds after it use cache again."""
    if ctx.deployment.cache_cleared:
        applications.require(session, ctx.deployment.app.id).clean_cache_next = False


def _mask(text: str | None, secrets: tuple[str, ...]) -> str | None:
    return None if text is None else Masker(secrets, min_length=MIN_ENV_SECRET)(text)
