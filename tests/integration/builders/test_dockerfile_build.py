"""DockerfileBuilder and StaticBuilder against a real Docker engine."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.builders.dockerfile import DockerfileBuilder
from app.builders.unavailable import StaticBuilder
from app.errors import BuildError, Cancelled
from app.types import BuildSpec, CancelToken, LogStream
from tests.conftest import APPS

pytestmark = pytest.mark.docker


class Recorder:
    """Log lines with the time each arrived."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, str]] = []

    def __call__(self, message: str, *, stream: LogStream = LogStream.STDOUT) -> None:
        self.lines.append((time.monotonic(), message))

    def first(self, start: str) -> float:
        """When the first line starting with ``start`` arrived."""
        return next(at for at, message in self.lines if message.startswith(start))

    @property
    def messages(self) -> list[str]:
        return [message for _, message in self.lines]


@pytest.fixture
def tags(docker_client: Any) -> Iterator[Any]:
    """Factory of unique ``slipway-test/...`` tags, removed after the test."""
    made: list[str] = []

    def make(name: str) -> str:
        made.append(f"slipway-test/{name}:{uuid.uuid4().hex[:10]}")
        return made[-1]

    yield make
    for tag in made:
        try:
            docker_client.images.remove(tag, force=True)
        except Exception:  # noqa: BLE001 - the image may never have been built
            pass


def _image_exists(docker_client: Any, tag: str) -> bool:
    try:
        docker_client.images.get(tag)
    except Exception:  # noqa: BLE001 - docker.errors.ImageNotFound
        return False
    return True


def test_builds_static_ok_and_tags_it(docker_client: Any, tags: Any) -> None:
    tag, log = tags("static-ok"), Recorder()
    spec = BuildSpec(source_dir=APPS / "static-ok", tag=tag, labels={"slipway.test": "yes"})
    image_id = DockerfileBuilder(docker_client).build(spec, log=log, cancel=CancelToken())
    image = docker_client.images.get(tag)
    assert image.id == image_id and image_id.startswith("sha256:")
    assert image.labels["slipway.test"] == "yes"
    assert any(message.startswith("Step 1/") for message in log.messages)
    assert log.messages[-1] == f"Built {tag} ({image_id})"


def test_lines_arrive_while_the_build_runs(docker_client: Any, tags: Any, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox:1.36\nRUN echo first-line && sleep 2 && echo second-line"
        f" # {uuid.uuid4().hex}\n"  # never in the cache (no_cache would also pull the base)
    )
    tag, log = tags("streaming"), Recorder()
    spec = BuildSpec(source_dir=tmp_path, tag=tag)
    DockerfileBuilder(docker_client).build(spec, log=log, cancel=CancelToken())
    assert log.first("Step 2/2") <= log.first("first-line")
    # had the output been collected and logged at the end, these would be microseconds apart
    assert log.first("second-line") - log.first("first-line") > 1.5
    assert log.first("Successfully built") - log.first("Step 2/2") > 1.5


def test_failing_build_reports_the_exit_code(docker_client: Any, tags: Any) -> None:
    tag = tags("broken")
    spec = BuildSpec(source_dir=APPS / "broken", tag=tag)
    with pytest.raises(BuildError, match=r"docker build failed: .*returned a non-zero code: 3"):
        DockerfileBuilder(docker_client).build(spec, log=Recorder(), cancel=CancelToken())
    assert not _image_exists(docker_client, tag)


@pytest.mark.parametrize("dockerfile", ["../etc/passwd", "/etc/passwd", "www/../../x"])
def test_dockerfile_outside_the_checkout_is_refused(
    docker_client: Any, tags: Any, dockerfile: str
) -> None:
    tag = tags("escape")
    spec = BuildSpec(source_dir=APPS / "static-ok", tag=tag, dockerfile=dockerfile)
    with pytest.raises(BuildError, match="Dockerfile path"):
        DockerfileBuilder(docker_client).build(spec, log=Recorder(), cancel=CancelToken())
    assert not _image_exists(docker_client, tag)


def test_dockerfile_outside_the_context_dir_is_used(
    docker_client: Any, tags: Any, tmp_path: Path
) -> None:
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "Dockerfile.web").write_text(
        'FROM busybox:1.36\nCOPY index.html /www/\nCMD ["cat", "/www/index.html"]\n'
    )
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "index.html").write_text("hello from web\n")
    tag = tags("outside-context")
    spec = BuildSpec(
        source_dir=tmp_path, tag=tag, dockerfile="docker/Dockerfile.web", context_path="web"
    )
    DockerfileBuilder(docker_client).build(spec, log=Recorder(), cancel=CancelToken())
    output = docker_client.containers.run(tag, remove=True)
    assert output == b"hello from web\n"


def test_cancel_interrupts_a_long_run_step(docker_client: Any, tags: Any, tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    (tmp_path / "Dockerfile").write_text(
        f"FROM busybox:1.36\nRUN echo sleeping && sleep 30 && echo {marker}\n"
    )
    tag, cancel = tags("cancelled"), CancelToken()

    def log(message: str, *, stream: LogStream = LogStream.STDOUT) -> None:
        if message == "sleeping":
            threading.Timer(0.5, cancel.cancel, args=("user asked",)).start()

    started = time.monotonic()
    with pytest.raises(Cancelled, match="user asked"):
        DockerfileBuilder(docker_client).build(
            BuildSpec(source_dir=tmp_path, tag=tag), log=log, cancel=cancel  # marker: uncached
        )
    assert time.monotonic() - started < 10
    assert not _image_exists(docker_client, tag)
    assert _eventually(lambda: not _containers_running(docker_client, marker))


def _containers_running(docker_client: Any, marker: str) -> bool:
    containers = docker_client.api.containers(all=True)
    return any(marker in container["Command"] for container in containers)


def _eventually(condition: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_static_builder_serves_the_publish_dir(docker_client: Any, tags: Any) -> None:
    tag = tags("static")
    spec = BuildSpec(source_dir=APPS / "static-ok", tag=tag, context_path="www")
    StaticBuilder(docker_client=docker_client).build(spec, log=Recorder(), cancel=CancelToken())
    image = docker_client.images.get(tag)
    assert image.attrs["Config"]["Cmd"] == ["httpd", "-f", "-p", "80", "-h", "/www"]
    output = docker_client.containers.run(tag, ["cat", "/www/index.html"], remove=True)
    assert output == (APPS / "static-ok" / "www" / "index.html").read_bytes()
