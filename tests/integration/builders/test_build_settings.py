"""Build settings on a real engine with the classic builder: the target stage, exact
memory/CPU limits, the proxy build args, clean builds that pull fresh base images, and the
ledger of created images that clearBuildCache removes without touching another's cache."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from app.builders.cache import CacheLedger, clear_cached_images
from app.builders.dockerfile import DockerfileBuilder
from app.builders.proxy import proxy_build_args
from app.errors import BuildError
from app.types import BuildSpec, CancelToken
from tests.integration.builders.test_dockerfile_build import Recorder, tags  # noqa: F401
from tests.support.base_images import registry_base

pytestmark = pytest.mark.docker


@pytest.fixture(autouse=True)
def leftovers(docker_client: Any, tmp_path: Path) -> Iterator[CacheLedger]:
    """The images this module's builds create; the dangling ones are removed afterwards."""
    ledger = CacheLedger(tmp_path / "test-builds.ids")
    yield ledger
    clear_cached_images(docker_client, ledger)


def _build(docker_client: Any, spec: BuildSpec) -> tuple[str, list[str]]:
    if spec.cache_ledger is None:
        spec = replace(spec, cache_ledger=spec.source_dir.parent / "test-builds.ids")
    log = Recorder()
    image_id = DockerfileBuilder(docker_client).build(spec, log=log, cancel=CancelToken())
    return image_id, log.messages


def _context(tmp_path: Path, name: str, dockerfile: str) -> Path:
    context = tmp_path / name
    context.mkdir()
    (context / "Dockerfile").write_text(dockerfile)
    return context


def test_the_target_stage_is_the_one_built(docker_client: Any, tags: Any, tmp_path: Path) -> None:  # noqa: F811
    context = _context(
        tmp_path,
        "stages",
        "FROM busybox:1.36 AS build\nRUN echo built > /artifact\n"
        "FROM busybox:1.36 AS runtime\nCOPY --from=build /artifact /artifact\n"
        "LABEL stage=runtime\n"
        "FROM busybox:1.36 AS broken\nRUN exit 7\n",
    )
    tag = tags("stage")
    with pytest.raises(BuildError, match="non-zero code: 7"):
        _build(docker_client, BuildSpec(source_dir=context, tag=tag))
    _, messages = _build(docker_client, BuildSpec(source_dir=context, tag=tag, target="runtime"))
    assert any("(stage runtime)" in m for m in messages)
    image = docker_client.images.get(tag)
    assert image.labels["stage"] == "runtime"
    assert docker_client.containers.run(tag, ["cat", "/artifact"], remove=True) == b"built\n"


def test_memory_and_cpu_limits_hold_in_every_run_step(
    docker_client: Any,
    tags: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    marker = uuid.uuid4().hex
    context = _context(
        tmp_path,
        "limits",
        f"FROM busybox:1.36\nRUN echo {marker} && "
        "(cat /sys/fs/cgroup/memory.max 2>/dev/null || "
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes) && "
        "(cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us)\n",
    )
    spec = BuildSpec(
        source_dir=context, tag=tags("limits"), memory_limit=64 * 1024 * 1024, cpu_limit=0.5
    )
    _, messages = _build(docker_client, spec)
    assert "Build limits: memory 64 MiB, 0.5 CPUs for each step" in messages
    assert str(64 * 1024 * 1024) in messages  # the memory cgroup of the RUN container
    assert any(m.split()[0] == "50000" for m in messages if m.strip())  # quota of 0.5 x 100 ms


def test_proxy_args_reach_run_steps_but_stay_out_of_the_image(
    docker_client: Any,
    tags: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    proxy_url = f"http://user:pw-{uuid.uuid4().hex[:8]}@proxy.invalid:3128"
    context = _context(
        tmp_path,
        "proxy",
        'FROM busybox:1.36\nRUN echo "via=$HTTP_PROXY no=$no_proxy" > /seen && cat /seen\n',
    )
    tag = tags("proxy")
    spec = BuildSpec(
        source_dir=context, tag=tag, proxy=proxy_build_args(proxy_url, "", "localhost")
    )
    _, messages = _build(docker_client, spec)
    assert f"via={proxy_url} no=localhost" in messages  # the writer masks it in a deployment
    image = docker_client.images.get(tag)
    assert proxy_url not in str(image.attrs["Config"]), "not persisted into the image config"
    assert proxy_url not in str(image.history()), "nor into docker history"


@pytest.fixture
def base_ref(docker_client: Any, registry_addr: str) -> Iterator[str]:
    """A base image in the local registry, so that a clean build can pull it offline."""
    with registry_base(docker_client, registry_addr) as ref:
        yield ref


def test_a_clean_build_uses_no_cache_and_pulls_the_base_fresh(
    docker_client: Any,
    tags: Any,  # noqa: F811
    tmp_path: Path,
    base_ref: str,
    leftovers: CacheLedger,
) -> None:
    context = _context(
        tmp_path, "clean", f"FROM {base_ref}\nRUN echo step-{uuid.uuid4().hex} > /step\n"
    )
    first, _ = _build(docker_client, BuildSpec(source_dir=context, tag=tags("clean")))
    # The registry gets a new version of the base; the engine still has the old one.
    old_base = docker_client.images.get(base_ref).id
    newer = _context(tmp_path, "newer-base", "FROM busybox:1.36\nLABEL base.version=2\n")
    docker_client.images.build(path=str(newer), tag=base_ref, rm=True)
    docker_client.images.push(base_ref)
    newer_id = docker_client.images.get(base_ref).id
    docker_client.api.tag(old_base, base_ref)
    leftovers.write([*leftovers.ids(), newer_id])  # untagged now; removed after the test

    cached_id, cached = _build(docker_client, BuildSpec(source_dir=context, tag=tags("clean")))
    assert " ---> Using cache" in cached
    assert "base.version" not in docker_client.images.get(cached_id).labels

    clean_id, clean = _build(
        docker_client, BuildSpec(source_dir=context, tag=tags("clean"), no_cache=True)
    )
    assert " ---> Using cache" not in clean
    assert any("Pulling from" in m or "Downloaded newer image" in m for m in clean), clean
    assert docker_client.images.get(clean_id).labels.get("base.version") == "2"
    assert clean_id != first


def test_each_application_has_its_own_cache_and_clearing_it_leaves_anothers(
    docker_client: Any,
    tags: Any,  # noqa: F811
    tmp_path: Path,
    base_ref: str,
) -> None:
    run = uuid.uuid4().hex
    shared = f"FROM {base_ref}\nRUN echo shared-{run} > /shared\n"
    ledger_a, ledger_b = CacheLedger(tmp_path / "a.json"), CacheLedger(tmp_path / "b.json")
    good_a = _context(tmp_path, "a", f"{shared}RUN echo a > /a\n")
    bad_a = _context(tmp_path, "a-bad", f"{shared}RUN echo left-{run} > /l\nRUN exit 3\n")
    good_b = _context(tmp_path, "b", f"{shared}RUN echo b > /b\n")
    bad_b = _context(
        tmp_path, "b-bad", f"FROM {base_ref}\nRUN echo b-left-{run} > /l\nRUN exit 4\n"
    )

    def build(context: Path, ledger: CacheLedger, name: str, **extra: Any) -> int:
        """The number of steps the build took from the cache."""
        spec = BuildSpec(source_dir=context, tag=tags(name), cache_ledger=ledger.path, **extra)
        try:
            return _build(docker_client, spec)[1].count(" ---> Using cache")
        except BuildError:
            return -1

    assert build(good_a, ledger_a, "a") == 0
    assert build(bad_a, ledger_a, "a-bad") == -1  # leaves the image of "echo left" behind
    leftover_a = ledger_a.ids()[-1]
    assert build(good_b, ledger_b, "b") == 0, "another application's steps are not B's cache"
    assert build(bad_b, ledger_b, "b-bad") == -1
    leftover_b = ledger_b.ids()[-1]
    assert build(good_a, ledger_a, "a") == 2 and build(good_b, ledger_b, "b") == 2
    # A clean build of A makes newer images for the same steps; B keeps to its own.
    assert build(good_a, ledger_a, "a", no_cache=True) == 0
    assert build(good_b, ledger_b, "b") == 2, "B's next build still hits its cache"

    images_b = [*ledger_b.ids(), *[t for t in _tags(docker_client) if "/b:" in t]]
    tagged_a = [t for t in _tags(docker_client) if "/a:" in t]
    assert len(tagged_a) == 3 and len(images_b) >= 5

    cleared = clear_cached_images(docker_client, ledger_a)

    assert cleared.removed >= 1 and not _exists(docker_client, leftover_a)
    assert all(_exists(docker_client, i) for i in images_b), "nothing of B's is touched"
    assert all(_exists(docker_client, t) for t in tagged_a), "A's images stay"
    assert leftover_b in images_b
    assert build(good_a, ledger_a, "a") == 0, "the cleared application rebuilds"
    assert build(good_b, ledger_b, "b") == 2, "B still hits its cache"
    assert build(good_a, ledger_a, "a") == 2, "and A caches again"
    for tag in _tags(docker_client):
        if "/a:" in tag or "/b:" in tag:
            docker_client.images.remove(tag)
    for ledger in (ledger_a, ledger_b):  # the restored and leftover images go too
        clear_cached_images(docker_client, ledger)


def _tags(docker_client: Any) -> list[str]:
    return [t for image in docker_client.images.list(name="slipway-test/*") for t in image.tags]


def _exists(docker_client: Any, ref: str) -> bool:
    try:
        docker_client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True
