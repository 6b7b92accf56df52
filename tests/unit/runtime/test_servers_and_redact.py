"""servers.py without an engine, and redact.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import Unavailable
from app.runtime.redact import redact
from app.runtime.servers import docker_client


def test_unreachable_engine_is_unavailable(tmp_path: Path) -> None:
    url = f"unix://{tmp_path}/no-docker.sock"
    with pytest.raises(Unavailable, match=f"cannot reach the Docker engine at {url}"):
        docker_client(url, timeout=2)


def test_redact_masks_env_values() -> None:
    env = {"TOKEN": "s3cret-value", "S": "s3cret", "DEBUG": "1"}
    text = "token s3cret-value and s3cret, DEBUG=1"
    assert redact(text, env) == "token ******** and ********, DEBUG=1"
