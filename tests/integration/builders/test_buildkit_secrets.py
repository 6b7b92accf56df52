"""Build secrets on a real engine: BuildKit through the docker CLI mounts them for RUN
steps, and they are in no layer, not in docker history and not in the image config."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from app.builders.dockerfile import DockerfileBuilder
from app.errors import BuildError, Cancelled
from app.types import BuildSpec, CancelToken, LogStream
from tests.integration.builders.test_dockerfile_build import Recorder, tags  # noqa: F401
from tests.services import missing
from tests.support.image_layers import places_holding

pytestmark = pytest.mark.docker


def buildkit_cli() -> str:
    """A docker CLI that builds with BuildKit (Debian's 20.10 here; SLIPWAY_TEST_DOCKER_CLI)."""
    cli = os.environ.get("SLIPWAY_TEST_DOCKER_CLI") or "docker"  # the default, resolved
    if not shutil.which(cli):
        missing(f"a docker CLI with BuildKit at {cli} (SLIPWAY_TEST_DOCKER_CLI)")
    return cli


@pytest.fixture
def builder(docker_client: Any) -> DockerfileBuilder:
    return DockerfileBuilder(
        docker_client, docker_host=os.environ.get("DOCKER_HOST"), docker_cli=buildkit_cli()
    )


def _context(tmp_path: Path, dockerfile: str) -> Path:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(dockerfile)
    (context / "app.txt").write_text("hello\n")
    return context


def test_secret_is_mounted_for_run_and_absent_from_the_image(
    builder: DockerfileBuilder,
    docker_client: Any,
    tags: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    secret = f"bk-secret-{uuid.uuid4().hex}"
    digest = hashlib.sha256(secret.encode()).hexdigest()
    context = _context(
        tmp_path,
        "FROM busybox:1.36 AS build\n"
        "ARG GREETING\n"
        "COPY app.txt /app.txt\n"
        # the step reads the secret, from its default path and from a target of its own
        "RUN --mount=type=secret,id=api_token sha256sum /run/secrets/api_token "
        f'&& echo "greeting=$GREETING" # {uuid.uuid4().hex}\n'  # BuildKit keys no secret
        "RUN --mount=type=secret,id=api_token,target=/etc/token "
        "cp /etc/token /tmp/copy && rm /tmp/copy && echo used-and-removed\n"
        "LABEL stage=build\n"
        "FROM busybox:1.36 AS other\nRUN exit 5\n",
    )
    tag = tags("secret")
    log = Recorder()
    image_id = builder.build(
        BuildSpec(
            source_dir=context,
            tag=tag,
            target="build",
            secrets={"api_token": secret},
            build_args={"GREETING": "hi-there"},
            labels={"slipway.test": "yes"},
        ),
        log=log,
        cancel=CancelToken(),
    )
    text = "\n".join(log.messages)
    assert digest in text, "the RUN step read the secret's exact bytes"
    assert "greeting=hi-there" in text and "used-and-removed" in text
    assert "Building with BuildKit (1 build secrets mounted" in text
    image = docker_client.images.get(tag)
    assert image.id == image_id
    assert image.labels == {"slipway.test": "yes", "stage": "build"}
    assert places_holding(docker_client, tag, secret, tmp_path) == []
    assert secret not in text


def test_a_failing_secret_build_and_its_private_files(
    builder: DockerfileBuilder,
    tags: Any,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    context = _context(
        tmp_path,
        "FROM busybox:1.36\nRUN --mount=type=secret,id=t test -s /run/secrets/t\nRUN exit 6\n",
    )
    with pytest.raises(BuildError, match="exit code 1"):
        builder.build(
            BuildSpec(source_dir=context, tag=tags("secret-fail"), secrets={"t": "v-v-v"}),
            log=Recorder(),
            cancel=CancelToken(),
        )
    assert list(temp.iterdir()) == [], "the secret files are removed after a failure too"


def test_cancel_kills_the_cli_and_the_build_stops(
    builder: DockerfileBuilder,
    docker_client: Any,
    tags: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    marker = uuid.uuid4().hex[:12]
    context = _context(
        tmp_path,
        f"FROM busybox:1.36\nRUN --mount=type=secret,id=t echo sleeping-{marker} && sleep 47\n",
    )
    tag, cancel = tags("secret-cancel"), CancelToken()

    def log(message: str, *, stream: LogStream = LogStream.STDOUT) -> None:
        if f"sleeping-{marker}" in message and "echo" not in message:
            threading.Timer(0.5, cancel.cancel, args=("user asked",)).start()

    started = time.monotonic()
    with pytest.raises(Cancelled, match="user asked"):
        builder.build(
            BuildSpec(source_dir=context, tag=tag, secrets={"t": "x-y-z"}), log=log, cancel=cancel
        )
    assert time.monotonic() - started < 20
    deadline = time.monotonic() + 20
    while _running(f"sleeping-{marker}") and time.monotonic() < deadline:
        time.sleep(0.3)
    assert not _running(f"sleeping-{marker}"), "the RUN step's process is gone"
    with pytest.raises(Exception):  # noqa: B017 - docker.errors.ImageNotFound
        docker_client.images.get(tag)


def _running(marker: str) -> bool:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return any(marker in line and "sleep 47" in line for line in out.splitlines())


def test_the_search_finds_a_value_that_is_in_the_image(
    docker_client: Any,
    tags: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The control: a value written to a file, and one in the config, are found."""
    value = f"planted-{uuid.uuid4().hex}"
    context = _context(
        tmp_path, f"FROM busybox:1.36\nRUN echo {value[:20]}{value[20:]} > /f\nENV X={value}\n"
    )
    tag = tags("planted")
    DockerfileBuilder(docker_client).build(
        BuildSpec(source_dir=context, tag=tag), log=Recorder(), cancel=CancelToken()
    )
    found = places_holding(docker_client, tag, value, tmp_path)
    assert any("layer.tar: f" in place for place in found), found
    assert "docker history" in found and "image inspect (config)" in found
