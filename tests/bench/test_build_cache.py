"""Benchmark: a cached build against a clean one, of an unchanged repository.

The BUILD_IMAGE step's builder on the real engine, given the spec that step gives it (a
tag and labels per deployment, the application's cache ledger), builds static-ok behind a
``RUN sleep 5`` step, its base image in the local registry so that a clean build can pull
it. After a first build fills the cache, builds alternate: with the cache, and clean
(``cleanCache``: ``--no-cache --pull``). Each is timed from the builder call to the image
id. (Measured at the builder rather than through whole deployments: another Slipway on a
shared test engine may remove a deployment's image before it is released, which has
nothing to do with the build; the e2e tests cover the API path.) Target: the cached
build's median at most 20% of the clean one's.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.builders.dockerfile import DockerfileBuilder
from app.types import BuildSpec, CancelToken, LogStream
from tests.bench.stats import median, seconds
from tests.conftest import APPS
from tests.support.base_images import registry_base

pytestmark = pytest.mark.docker

RUNS = 5
SLOW_STEP_S = 5
TARGET = 0.20


@pytest.fixture
def base(docker_client: Any, registry_addr: str) -> Iterator[str]:
    with registry_base(docker_client, registry_addr) as ref:
        yield ref


@pytest.fixture
def repository(docker_client: Any) -> Iterator[str]:
    name = f"slipway/bench-cache-{uuid.uuid4().hex[:8]}"
    yield name
    for image in docker_client.images.list(name=name):
        docker_client.images.remove(image.id, force=True)


def test_cached_build_against_clean_build(
    docker_client: Any, tmp_path: Path, base: str, repository: str
) -> None:
    source = tmp_path / "code"
    shutil.copytree(APPS / "static-ok", source)
    (source / "Dockerfile").write_text(
        f"FROM {base}\n"
        f"RUN sleep {SLOW_STEP_S} && echo built-{uuid.uuid4().hex} > /built\n"
        "COPY www /www\nEXPOSE 8080\n"
        'CMD ["httpd","-f","-v","-p","8080","-h","/www"]\n'
    )
    builder = DockerfileBuilder(docker_client, docker_host=os.environ.get("DOCKER_HOST"))
    ledger = tmp_path / "build-cache.ids"

    def build(*, clean: bool) -> tuple[float, list[str]]:
        deployment = uuid.uuid4().hex[:24]
        spec = BuildSpec(
            source_dir=source,
            tag=f"{repository}:{deployment}",
            labels={"slipway.application": "bench", "slipway.deployment": deployment},
            no_cache=clean,
            cache_ledger=ledger,
        )
        lines: list[str] = []

        def log(message: str, *, stream: LogStream = LogStream.STDOUT) -> None:
            lines.append(message)

        started = time.perf_counter()
        builder.build(spec, log=log, cancel=CancelToken())
        return time.perf_counter() - started, lines

    build(clean=False)  # the first build of the application: it fills the cache
    cached: list[float] = []
    clean: list[float] = []
    for run in range(RUNS):
        for is_clean in (False, True) if run % 2 == 0 else (True, False):
            elapsed, lines = build(clean=is_clean)
            assert (" ---> Using cache" in lines) is (not is_clean), lines
            (clean if is_clean else cached).append(elapsed)
    ratio = median(cached) / median(clean)
    print(
        f"\nbuild cache: unchanged repository, a {SLOW_STEP_S} s RUN step, {RUNS} builds each"
        f"\n  cached build: median {median(cached):.3f}s {seconds(cached)}"
        f"\n  clean build (cleanCache: no cache, base image pulled): median "
        f"{median(clean):.3f}s {seconds(clean)}"
        f"\n  cached / clean = {ratio:.3f} (target <= {TARGET})"
    )
    assert median(clean) >= SLOW_STEP_S, "the clean builds ran the slow step"
