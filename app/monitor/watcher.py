"""One watcher per Docker engine: holds the engine's lease, follows its events, resumes.

``EngineWatcher`` runs in a thread of every process that has the engine (the worker
processes; ``serve`` in embedded mode). Only the holder of the engine's lease (a row of
``engine_watches``, renewed every tick and taken over once expired) watches, so exactly
one process does. Watching: a reader thread iterates ``client.events(since=cursor)``
(container ``die``, ``start``, ``exec_die`` and ``health_status`` of containers carrying
``slipway.application``) into a queue; this thread handles each event and, every
``monitor_interval``, lists the engine's tasks once for the periodic check (rejections
and failures no event reported, recovery, the first health of a new DONE deployment),
renews the lease and stores the cursor (the last event's timeNano). A dropped engine
connection is retried with back-off from the cursor; replayed events change nothing
(``incidents.decide`` drops what is older than the state it has).

An event counts only for an application whose newest finished deployment is DONE, when
no deployment of it is RUNNING, for a container of that DONE deployment, after it ended:
tasks a deployment replaces are the deployment's to judge.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from docker.errors import DockerException
from requests.exceptions import RequestException

from app.crypto import Cipher
from app.db.repos import monitor
from app.db.repos.monitor import Watched
from app.db.session import Database
from app.errors import Unavailable
from app.logs.bus.base import Bus
from app.monitor.emit import Emitter, log_only
from app.monitor.incidents import Observation, Seen
from app.monitor.observe import Observer, event_time
from app.monitor.record import Recorder
from app.runtime.connection import EngineConnection
from app.settings import Settings

log = logging.getLogger(__name__)

EVENTS = ["die", "start", "exec_die", "health_status"]
BACKOFF_MAX_S = 30.0


class _Ended:
    """The event stream ended (the engine went away, or we closed it)."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class LeaseLost(Exception):
    pass


@dataclass
class EngineWatcher:
    engine_key: str  # "local" for the engine Slipway runs on; a server id for others
    connection: EngineConnection
    db: Database
    bus: Bus
    cipher: Cipher
    settings: Settings
    emitter: Emitter = log_only
    holder: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
    )

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"slipway-monitor-{self.engine_key}", daemon=True
        )
        self._stream: Any = None
        self._due: dict[str, float] = {}  # application id -> when to check it again
        self.recorder = Recorder(db=self.db, bus=self.bus, emit=self.emitter)
        self.watching = threading.Event()  # set while this process holds the lease

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._close_stream()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        try:
            with self.db.session() as session:
                monitor.release(session, engine=self.engine_key, holder=self.holder)
        except Unavailable as exc:
            log.warning("monitor: could not release the lease on %s: %s", self.engine_key, exc)

    # -- the loop ---------------------------------------------------------------------

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                if not self._lease():
                    self.watching.clear()
                    self._stop.wait(self.settings.monitor_lease_s / 3)
                    continue
                self.watching.set()
                self._follow()
                backoff = 0.5
            except LeaseLost:
                log.warning("monitor: the lease on engine %s was taken over", self.engine_key)
                self.watching.clear()
            except (Unavailable, DockerException, RequestException, OSError) as exc:
                if self._stop.is_set():
                    break
                log.warning(
                    "monitor: engine %s: %s; again in %.1f s", self.engine_key, exc, backoff
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
            except Exception:
                log.exception("monitor: engine %s: unexpected error", self.engine_key)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
        self.watching.clear()

    def _lease(self) -> bool:
        with self.db.session(locking=True) as session:
            return monitor.acquire(
                session,
                engine=self.engine_key,
                holder=self.holder,
                ttl=self.settings.monitor_lease_s,
            )

    def _follow(self) -> None:
        """Watch until stopped (returns), the lease is lost or the engine drops (raises)."""
        client = self.connection.require()
        with self.db.session() as session:
            since_ns = monitor.cursor(session, self.engine_key)
        if since_ns is None:
            since_ns = time.time_ns()
        observer = Observer(
            client,
            health_failures=self.settings.monitor_health_failures,
            recovery_s=self.settings.monitor_recovery_s,
        )
        events: queue.Queue[dict[str, Any] | _Ended] = queue.Queue()
        stream = client.events(
            decode=True,
            since=f"{since_ns // 1_000_000_000}.{since_ns % 1_000_000_000:09d}",
            filters={"type": "container", "event": EVENTS, "label": "slipway.application"},
        )
        self._stream = stream
        reader = threading.Thread(
            target=_read, args=(stream, events), name="slipway-monitor-events", daemon=True
        )
        reader.start()
        last_ns = since_ns
        next_tick = 0.0
        try:
            while not self._stop.is_set():
                wait = max(0.0, min(next_tick, self._next_due()) - time.monotonic())
                try:
                    item = events.get(timeout=min(wait, 1.0))
                except queue.Empty:
                    item = None
                if isinstance(item, _Ended):
                    if self._stop.is_set():
                        return
                    raise Unavailable(f"the engine's event stream ended: {item.error}")
                if item is not None:
                    last_ns = max(last_ns, int(item.get("timeNano") or 0))
                    self._handle(observer, item)
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + self.settings.monitor_interval
                    self._tick(observer, last_ns)
                self._run_due(observer)
        finally:
            self._close_stream()
            self._save_cursor(last_ns)

    # -- events -----------------------------------------------------------------------

    def _handle(self, observer: Observer, event: dict[str, Any]) -> None:
        attrs = event.get("Actor", {}).get("Attributes", {})
        app_id = attrs.get("slipway.application")
        watched = self._watched(app_id)
        if watched is None or attrs.get("slipway.deployment") != watched.deployment_id:
            return  # not watched now, or a task of another deployment
        if event_time(event) < watched.finished_at:
            return  # before its deployment ended: the deployment judged it
        action = str(event.get("Action") or event.get("status") or "")
        env = self._env(watched)
        obs: Observation | None = None
        if action == "die":
            obs = observer.died(event, deployment_id=watched.deployment_id, env=env)
        elif action.startswith("exec_die"):
            if attrs.get("exitCode") not in (None, "0"):
                obs = observer.health(event, deployment_id=watched.deployment_id, env=env)
            elif watched.health != "HEALTHY":
                self._due[watched.app_id] = time.monotonic()
        elif action.startswith("health_status"):
            if action.endswith("unhealthy"):
                obs = observer.health(event, deployment_id=watched.deployment_id, env=env)
            else:
                self._due[watched.app_id] = time.monotonic()
        elif action == "start" and watched.health != "HEALTHY":
            self._due[watched.app_id] = time.monotonic() + self.settings.monitor_recovery_s
        if obs is not None:
            self._apply(watched, obs)

    def _apply(self, watched: Watched, obs: Observation) -> None:
        decision = self.recorder.apply(watched.app_id, obs)
        if decision is not None and obs.seen is not Seen.UP:
            self._due.setdefault(watched.app_id, time.monotonic() + 1.0)

    # -- the periodic check -------------------------------------------------------------

    def _tick(self, observer: Observer, last_ns: int) -> None:
        if not self._lease():
            raise LeaseLost
        self._save_cursor(last_ns)
        self.recorder.send_pending()  # any a crash left between the commit and the send
        with self.db.session() as session:
            everything = monitor.watched(session)
            unsettled = set(monitor.unsettled(session))
        grouped = observer.list_tasks()
        for watched in everything:
            self._check(observer, watched, grouped.get(watched.app_id, []), unsettled)

    def _run_due(self, observer: Observer) -> None:
        now = time.monotonic()
        due = [app_id for app_id, at in self._due.items() if at <= now]
        if not due:
            return
        for app_id in due:
            self._due.pop(app_id, None)
        with self.db.session() as session:
            found = monitor.watched(session, due)
            unsettled = set(monitor.unsettled(session))
        for watched in found:
            tasks = observer.app_tasks(watched.app_name)
            self._check(observer, watched, tasks, unsettled)

    def _check(
        self, observer: Observer, watched: Watched, tasks: list[Any], unsettled: set[str]
    ) -> None:
        verdict = observer.check(
            tasks,
            deployment_id=watched.deployment_id,
            replicas=watched.replicas,
            env=self._env(watched),
        )
        obs = verdict.observation
        settled = watched.app_id not in unsettled
        if obs is not None and obs.at < watched.finished_at:
            obs = None  # a failure the deployment saw (and got past)
        if obs is not None and not (obs.seen is Seen.UP and settled):
            self._apply(watched, obs)
        if verdict.again_in is not None and (not settled or obs is not None):
            self._due.setdefault(watched.app_id, time.monotonic() + verdict.again_in)

    def _next_due(self) -> float:
        return min(self._due.values(), default=float("inf"))

    # -- helpers ----------------------------------------------------------------------

    def _watched(self, app_id: str | None) -> Watched | None:
        if not app_id:
            return None
        with self.db.session() as session:
            found = monitor.watched(session, [app_id])
        return found[0] if found else None

    def _env(self, watched: Watched) -> dict[str, str]:
        raw = self.cipher.decrypt_json(watched.env_enc, {})
        return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}

    def _save_cursor(self, last_ns: int) -> None:
        try:
            with self.db.session() as session:
                monitor.save_cursor(
                    session, engine=self.engine_key, holder=self.holder, event_ns=last_ns
                )
        except Unavailable as exc:
            log.warning("monitor: could not store the cursor: %s", exc)

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.close()
            except Exception as exc:  # closing a half-dead connection
                log.debug("closing the event stream: %s", exc)


def _read(stream: Iterator[dict[str, Any]], events: queue.Queue[dict[str, Any] | _Ended]) -> None:
    try:
        for event in stream:
            events.put(event)
    except Exception as exc:
        events.put(_Ended(exc))
        return
    events.put(_Ended(None))
