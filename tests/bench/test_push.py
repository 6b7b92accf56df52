"""Benchmark: the PUSH_IMAGE step against ``docker push`` of an equal image, same run.

Both push to the htpasswd registry of scripts/services (127.0.0.1:5001) with its test
user, each time to a fresh repository. Every push gets its own freshly built image:
busybox plus one layer of LAYER_BYTES random bytes that no registry has seen, so both
paths really compress and upload that layer (and both find the busybox layer already in
the registry: "Mounted from"/"Layer already exists"). Pushing one image twice would not
be fair: the engine would mount the second push's layers from the first repository.

- step: ``PushImage().run(ctx)``, the step the engine runs, with the real adapters'
  pusher (``EnginePusher``: ping, tag, push with ``auth_config``, per-layer throttled log)
  and a real ``LogWriter`` (file and bus), timed from its start to its return;
- cli: the same tag call, then ``/usr/bin/docker push <ref>`` with DOCKER_HOST and
  DOCKER_CONFIG set to a temporary directory it logged in to (``docker login``, outside
  the timing), timed around the tag and the process.

Runs come in pairs whose order alternates (step then cli, then cli then step), after one
warm-up each. Figures are printed; the asserts check only that each push really reached
the registry under the digest it reported.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.engine.adapters import real_adapters
from app.engine.context import Adapters, RunContext, Workspace
from app.engine.snapshot import AppSnapshot, DeploymentSnapshot
from app.engine.steps import PushImage
from app.logs.bus.memory import MemoryBus
from app.logs.writer import LogWriter
from app.settings import Settings
from app.types import (
    BuildType,
    CancelToken,
    DeploymentTrigger,
    RegistryAuth,
    RegistryTarget,
    SourceType,
)
from tests.bench.raw_docker import DOCKER
from tests.bench.stats import median, seconds
from tests.support.auth_registry import AuthRegistry
from tests.support.random_images import manifest_digest, random_image, remove_image

pytestmark = [pytest.mark.docker, pytest.mark.registry]

RUNS = 7
LAYER_BYTES = 32 * 1000 * 1000
PREFIX = "slipway-bench"
TARGET_RATIO = 1.2


def _snapshot(app_name: str, target: RegistryTarget, log_path: Path) -> DeploymentSnapshot:
    app = AppSnapshot(
        id="bench-app",
        app_name=app_name,
        source_type=SourceType.GIT,
        build_type=BuildType.DOCKERFILE,
        git=None,
        docker_image=None,
        dockerfile="Dockerfile",
        context_path=".",
        build_args={},
        env={},
        ports=(),
        mounts=(),
        replicas=1,
        cpu_limit=None,
        memory_limit=None,
        health_check=None,
        health_check_path=None,
        health_timeout=None,
        command=None,
        secrets=(target.auth.password,) if target.auth else (),
        registry=target,
    )
    return DeploymentSnapshot(
        id=uuid.uuid4().hex[:24],
        trigger=DeploymentTrigger.MANUAL,
        log_path=str(log_path),
        app=app,
    )


class StepPusher:
    """Runs the PUSH_IMAGE step on a built image, as the engine does."""

    def __init__(self, adapters: Adapters, target: RegistryTarget, work: Path) -> None:
        self.adapters = adapters
        self.target = target
        self.work = work
        self.bus = MemoryBus()

    def push(self, image: str) -> tuple[float, str, int]:
        """Seconds the step took, the image reference it recorded, its log line count."""
        app_name = f"step-{uuid.uuid4().hex[:8]}"
        snap = _snapshot(app_name, self.target, self.work / f"{app_name}.log")
        writer = LogWriter(
            path=Path(snap.log_path), deployment_id=snap.id, bus=self.bus, secrets=snap.app.secrets
        )
        writer.step = "PUSH_IMAGE"
        ctx = RunContext(
            deployment=snap,
            writer=writer,
            cancel=CancelToken(),
            adapters=self.adapters,
            workspace=Workspace(self.work / app_name),
            health_timeout=60,
            endpoint_mode="dnsrr",
            fetch_retries=3,
            image_ref=image,
        )
        started = time.monotonic()
        PushImage().run(ctx)
        elapsed = time.monotonic() - started
        writer.close()
        assert ctx.image_ref is not None and "@sha256:" in ctx.image_ref
        lines = len(Path(snap.log_path).read_text().splitlines())
        return elapsed, ctx.image_ref, lines


class CliPusher:
    """``docker push`` with the CLI, logged in once into a temporary config directory."""

    def __init__(self, registry: AuthRegistry, config: Path) -> None:
        self.registry = registry
        self.config = config
        self.env = {**os.environ, "DOCKER_CONFIG": str(config)}
        subprocess.run(
            [DOCKER, "login", "-u", registry.username, "--password-stdin", registry.addr],
            input=registry.password,
            text=True,
            env=self.env,
            check=True,
            capture_output=True,
            timeout=60,
        )

    def push(self, docker_client: Any, image: str) -> tuple[float, str, int]:
        """Seconds ``docker push`` took, ``repository@digest`` it printed, its line count."""
        repository = f"{self.registry.addr}/{PREFIX}/cli-{uuid.uuid4().hex[:8]}"
        tag = uuid.uuid4().hex[:24]
        started = time.monotonic()  # the tag is timed, as in the step
        docker_client.api.tag(image, repository, tag)
        res = subprocess.run(
            [DOCKER, "push", f"{repository}:{tag}"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        elapsed = time.monotonic() - started
        assert res.returncode == 0, res.stderr[-2000:]
        found = re.search(r"digest: (sha256:[0-9a-f]{64})", res.stdout)
        assert found, res.stdout[-2000:]
        return elapsed, f"{repository}@{found.group(1)}", len(res.stdout.splitlines())


@pytest.fixture
def images(docker_client: Any, tmp_path: Path) -> Iterator[Any]:
    """Factory of fresh random images; they (and their pushed tags) are removed after."""
    made: list[str] = []

    def make() -> str:
        image = random_image(docker_client, tmp_path / f"img-{len(made)}", size=LAYER_BYTES)
        made.append(image)
        return image

    yield make
    for image in made:
        remove_image(docker_client, image)


def _check(reg: AuthRegistry, ref: str) -> None:
    """The registry serves ``repository@digest``'s manifest under that digest."""
    repository, digest = ref.split("@", 1)
    path = repository.removeprefix(f"{reg.addr}/")
    assert manifest_digest(reg.addr, path, digest, (reg.username, reg.password)) == digest


def test_push_step_vs_docker_push(
    shared_auth_registry: AuthRegistry, docker_client: Any, images: Any, tmp_path: Path
) -> None:
    reg = shared_auth_registry
    settings = Settings(data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]
    auth = RegistryAuth(username=reg.username, password=reg.password, registry=reg.addr)
    target = RegistryTarget(
        id="bench", name="bench", host=reg.addr, image_prefix=PREFIX, auth=auth, secure=False
    )
    (tmp_path / "step").mkdir()
    step = StepPusher(real_adapters(settings), target, tmp_path / "step")
    cli = CliPusher(reg, tmp_path / "docker-config")

    warm_step, warm_cli = step.push(images())[0], cli.push(docker_client, images())[0]
    step_times: list[float] = []
    cli_times: list[float] = []
    step_lines: list[int] = []
    cli_lines: list[int] = []
    for run in range(RUNS):
        for path in ("step", "cli") if run % 2 == 0 else ("cli", "step"):
            if path == "step":
                elapsed, ref, lines = step.push(images())
                step_times.append(elapsed)
                step_lines.append(lines)
            else:
                elapsed, ref, lines = cli.push(docker_client, images())
                cli_times.append(elapsed)
                cli_lines.append(lines)
            _check(reg, ref)

    step_median, cli_median = median(step_times), median(cli_times)
    ratio = step_median / cli_median
    pairs = median([a / b for a, b in zip(step_times, cli_times, strict=True)])
    load = os.getloadavg()[0]
    print(
        f"\nBENCH push: step_median={step_median:.3f}s cli_median={cli_median:.3f}s "
        f"ratio={ratio:.3f} (target <= {TARGET_RATIO}) median_pair_ratio={pairs:.3f} "
        f"load1={load:.1f}\n"
        f"  each push: a fresh {LAYER_BYTES / 1e6:.0f} MB random layer uploaded, the busybox "
        f"base already in the registry; a fresh repository on {reg.addr} (htpasswd)\n"
        f"  step runs  {seconds(step_times)}  log lines {step_lines}\n"
        f"  cli runs   {seconds(cli_times)}  output lines {cli_lines}\n"
        f"  warm-up    step={warm_step:.3f}s cli={warm_cli:.3f}s (not counted)"
    )
