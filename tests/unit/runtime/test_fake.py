"""FakeRuntime: the in-memory runtime others use in unit tests of the pipeline."""

from __future__ import annotations

import threading
import time

import pytest

from app.errors import Cancelled, HealthCheckError, ReleaseError
from app.runtime.base import Runtime
from app.runtime.fake import FakeRuntime
from app.types import CancelToken, LogStream, ServiceSpec


class Lines(list[str]):
    def __call__(self, message: str, *, stream: LogStream = LogStream.STDOUT) -> None:
        self.append(message)


def test_release_records_create_then_update() -> None:
    runtime: Runtime = FakeRuntime()
    log = Lines()
    first = runtime.release(ServiceSpec(name="web", image="web:1"), log=log)
    second = runtime.release(ServiceSpec(name="web", image="web:2"), log=log)
    assert first.created and not second.created
    assert second.previous_image == "web:1" and second.service_id == first.service_id
    assert log == [
        "creating service web with image web:1",
        "updating service web: image web:1 -> web:2",
    ]


def test_verify_succeeds_or_fails_as_configured() -> None:
    spec = ServiceSpec(name="web", image="web:1")
    ok = FakeRuntime()
    ok.verify(spec, ok.release(spec, log=Lines()), timeout=1, log=Lines(), cancel=CancelToken())
    assert ok.verified == ["web"]

    bad = FakeRuntime(verify_error="port 8080 does not answer")
    release = bad.release(spec, log=Lines())
    with pytest.raises(HealthCheckError, match="port 8080 does not answer"):
        bad.verify(spec, release, timeout=1, log=Lines(), cancel=CancelToken())


def test_release_error() -> None:
    with pytest.raises(ReleaseError, match="no such image"):
        FakeRuntime(release_error="no such image").release(
            ServiceSpec(name="web", image="web:1"), log=Lines()
        )


def test_hang_until_cancelled() -> None:
    runtime = FakeRuntime(hang=True)
    spec = ServiceSpec(name="web", image="web:1")
    release = runtime.release(spec, log=Lines())
    cancel = CancelToken()
    threading.Timer(0.1, cancel.cancel, kwargs={"reason": "stop"}).start()
    started = time.monotonic()
    with pytest.raises(Cancelled, match="stop"):
        runtime.verify(spec, release, timeout=30, log=Lines(), cancel=cancel)
    assert time.monotonic() - started < 1


def test_hang_times_out() -> None:
    runtime = FakeRuntime(hang=True)
    spec = ServiceSpec(name="web", image="web:1")
    release = runtime.release(spec, log=Lines())
    with pytest.raises(HealthCheckError, match="within 0.2s"):
        runtime.verify(spec, release, timeout=0.2, log=Lines(), cancel=CancelToken())


def test_remove() -> None:
    runtime = FakeRuntime()
    runtime.release(ServiceSpec(name="web", image="web:1"), log=Lines())
    runtime.remove("web")
    runtime.remove("web")
    assert runtime.removed == ["web"] and runtime.services == {}
