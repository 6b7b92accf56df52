"""SwarmRuntime image retention on a real engine: images of deployments that are gone are
removed, except another installation's (``slipway.instance``) and images in use; a
rollback point's image is removed by reference, past stopped containers but never off a
running one."""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest

from app.runtime.swarm import SwarmRuntime

pytestmark = pytest.mark.docker


def _image(docker_client: Any, tag: str, labels: dict[str, str]) -> str:
    lines = "".join(f'LABEL "{k}"="{v}"\n' for k, v in labels.items())
    dockerfile = io.BytesIO(f"FROM busybox:1.36\n{lines}".encode())
    image, _ = docker_client.images.build(fileobj=dockerfile, tag=tag, rm=True)
    return str(image.id)


def _exists(docker_client: Any, ref: str) -> bool:
    try:
        docker_client.images.get(ref)
    except Exception:  # noqa: BLE001 - ImageNotFound
        return False
    return True


def test_retention_leaves_another_installations_images(docker_client: Any) -> None:
    run = uuid.uuid4().hex[:8]
    mine, theirs, legacy = (f"slipway/retention-{run}:{w}" for w in ("mine", "theirs", "old"))
    _image(docker_client, mine, {"slipway.deployment": f"m{run}", "slipway.instance": "aaaa"})
    _image(docker_client, theirs, {"slipway.deployment": f"t{run}", "slipway.instance": "bbbb"})
    _image(docker_client, legacy, {"slipway.deployment": f"o{run}"})
    runtime = SwarmRuntime(docker_client, instance="aaaa")
    asked: list[str] = []

    def none_exist(ids: list[str]) -> set[str]:  # no deployment of ours exists
        asked.extend(ids)
        return set()

    try:
        removed = runtime.prune_images(none_exist)
        # (another test server on this engine may have pruned ours first: what retention
        # considered is the proof, and "theirs" must have survived it)
        assert {f"m{run}", f"o{run}"} <= set(asked) and f"t{run}" not in asked, asked
        assert theirs not in removed and _exists(docker_client, theirs)
        assert not _exists(docker_client, mine)
    finally:
        for tag in (mine, theirs, legacy):
            if _exists(docker_client, tag):
                docker_client.images.remove(tag, force=True)


def test_remove_image_is_never_forced_off_a_running_container(docker_client: Any) -> None:
    run = uuid.uuid4().hex[:8]
    tag = f"slipway/retention-{run}:used"
    _image(docker_client, tag, {"slipway.deployment": f"u{run}"})
    container = docker_client.containers.run(tag, ["sleep", "60"], detach=True)
    runtime = SwarmRuntime(docker_client)
    try:
        assert runtime.image_present(tag)
        assert runtime.remove_image(tag) is False and _exists(docker_client, tag), "running"
        container.stop(timeout=1)  # an ended task's container, as Swarm keeps them
        assert runtime.remove_image(tag) is True and not runtime.image_present(tag)
        assert runtime.remove_image(tag) is False, "already gone"
    finally:
        container.remove(force=True)
        if _exists(docker_client, tag):
            docker_client.images.remove(tag, force=True)
