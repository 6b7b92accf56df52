"""Running `slipway` as a user or a pipeline would: a child process, the key in its
environment (never in its argv), stdout a pipe unless a test gives it a terminal."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SLIPWAY = str(Path(sys.executable).with_name("slipway"))
ANSI = re.compile(r"\x1b\[")


def cli_env(url: str, key: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLIPWAY_")}
    env.pop("NO_COLOR", None)
    return {**env, "SLIPWAY_URL": url, "SLIPWAY_API_KEY": key, **extra}


def server_root(graphql_url: str) -> str:
    """``http://127.0.0.1:PORT``: what a user sets SLIPWAY_URL to."""
    return graphql_url.removesuffix("/graphql")


def slipway(
    url: str, key: str, *args: str, timeout: float = 60, **extra: str
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [SLIPWAY, *args],
        cwd=ROOT,
        env=cli_env(url, key, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    check_clean(done.stdout, done.stderr, key)
    return done


def popen(url: str, key: str, *args: str, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [SLIPWAY, *args],
        cwd=ROOT,
        env=cli_env(url, key, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def check_clean(stdout: str, stderr: str, key: str) -> None:
    """No traceback, and the key is never printed."""
    assert "Traceback" not in stderr, stderr
    assert not key or (key not in stdout and key not in stderr)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def on_terminal(
    url: str, key: str, *args: str, timeout: float = 60, **extra: str
) -> tuple[int, str]:
    """`slipway` with stdout and stderr on a pseudo-terminal: its exit code and what it drew."""
    import pty
    import select
    import time

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [SLIPWAY, *args],
        cwd=ROOT,
        env={**cli_env(url, key, **extra), "TERM": "xterm-256color", "COLUMNS": "120"},
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(leader)
    code = proc.wait(timeout=10)
    text = b"".join(chunks).decode(errors="replace")
    check_clean(text, "", key)
    return code, text
