"""Resource figures of running tasks from the engine's stats stream: one stream per
container however many subscribers, closed when the last one leaves.

``StatsStreams.watch(container_id, task_id, listener)`` adds a listener to that
container's stream (opened on the first listener: a thread reading
``GET /containers/<id>/stats?stream=1``) and returns the function that removes it; the
stream's response is closed when its last listener is removed. Listeners are called from
the stream's thread with a :class:`TaskSample` about once a second.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from docker.errors import DockerException
from requests.exceptions import RequestException

from app.runtime.connection import EngineConnection

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TaskSample:
    task_id: str
    container_id: str
    cpu_percent: float
    memory_bytes: int
    memory_limit_bytes: int
    network_rx_bytes: int
    network_tx_bytes: int
    at: datetime


Listener = Callable[[TaskSample], None]


def sample(raw: dict[str, Any], *, task_id: str, container_id: str) -> TaskSample:
    """One stats document as figures: CPU % of one core summed over the cores used (as
    ``docker stats``), memory without the page cache, bytes over every network."""
    cpu, pre = raw.get("cpu_stats") or {}, raw.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (
        pre.get("cpu_usage") or {}
    ).get("total_usage", 0)
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    cores = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or [1])
    measured = pre.get("system_cpu_usage") and cpu_delta > 0 and system_delta > 0
    percent = cpu_delta / system_delta * cores * 100 if measured else 0.0  # none before it
    memory = raw.get("memory_stats") or {}
    details = memory.get("stats") or {}
    cache = details.get("inactive_file", details.get("total_inactive_file", details.get("cache")))
    networks = (raw.get("networks") or {}).values()
    return TaskSample(
        task_id=task_id,
        container_id=container_id,
        cpu_percent=round(percent, 2),
        memory_bytes=max(0, int(memory.get("usage", 0)) - int(cache or 0)),
        memory_limit_bytes=int(memory.get("limit", 0)),
        network_rx_bytes=sum(int(n.get("rx_bytes", 0)) for n in networks),
        network_tx_bytes=sum(int(n.get("tx_bytes", 0)) for n in networks),
        at=datetime.now(UTC),
    )


class _Stream:
    def __init__(self, connection: EngineConnection, container_id: str, task_id: str) -> None:
        self.container_id = container_id
        self.task_id = task_id
        self.listeners: set[Listener] = set()
        self._connection = connection
        self._response: Any = None
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slipway-stats", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            api = self._connection.client().api
            url = api._url("/containers/{0}/stats", self.container_id)
            # the SDK's stats() hides the response; this one is kept to be closed
            self._response = api._get(url, params={"stream": True}, stream=True, timeout=None)
            if self._closed.is_set():
                return
            api._raise_for_status(self._response)
            for line in self._response.iter_lines():
                if self._closed.is_set():
                    return
                if not line:
                    continue
                figures = sample(
                    json.loads(line), task_id=self.task_id, container_id=self.container_id
                )
                for listener in list(self.listeners):
                    listener(figures)
        except (DockerException, RequestException, OSError, ValueError) as exc:
            if not self._closed.is_set():
                log.info("stats of container %s ended: %s", self.container_id[:12], exc)
        except Exception:  # a response closed mid-read fails in http.client's own ways
            if not self._closed.is_set():
                log.exception("stats of container %s failed", self.container_id[:12])
        finally:
            self.close()

    def close(self) -> None:
        self._closed.set()
        response = self._response
        if response is not None:
            try:
                response.close()
            except Exception as exc:  # a connection half gone
                log.debug("closing stats of %s: %s", self.container_id[:12], exc)


class StatsStreams:
    """The process's stats streams, by container; safe from any thread."""

    def __init__(self, connection: EngineConnection) -> None:
        self._connection = connection
        self._streams: dict[str, _Stream] = {}
        self._lock = threading.Lock()
        self.opened = 0  # streams opened since start (tests and benchmarks read it)

    def open_streams(self) -> int:
        with self._lock:
            return len(self._streams)

    def watch(self, container_id: str, task_id: str, listener: Listener) -> Callable[[], None]:
        with self._lock:
            stream = self._streams.get(container_id)
            if stream is None:
                stream = self._streams[container_id] = _Stream(
                    self._connection, container_id, task_id
                )
                self.opened += 1
                stream.start()
            stream.listeners.add(listener)

        def leave() -> None:
            with self._lock:
                stream.listeners.discard(listener)
                if stream.listeners or self._streams.get(container_id) is not stream:
                    return
                del self._streams[container_id]
            stream.close()

        return leave

    def running_tasks(self, service_name: str) -> list[tuple[str, str]]:
        """``(task id, container id)`` of the service's running tasks."""
        api = self._connection.client().api
        tasks = api.tasks(filters={"service": service_name, "desired-state": "running"})
        found = []
        for task in tasks:
            cid = (task.get("Status", {}).get("ContainerStatus") or {}).get("ContainerID")
            if cid and task.get("Status", {}).get("State") == "running":
                found.append((str(task["ID"]), str(cid)))
        return found
