"""Helpers for the Swarm runtime tests."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from app.types import LogStream, PortSpec, PublishMode

# The test apps run as PID 1 and ignore SIGTERM, so each stop would wait out Docker's
# 10 s grace period (stop-first updates with host ports wait for it): these exit at once.
HTTPD = ("sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait")
SLEEP = ("sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait")


@dataclass
class Lines:
    """A LogFn that keeps what it is given."""

    lines: list[tuple[LogStream, str]] = field(default_factory=list)

    def __call__(self, message: str, *, stream: LogStream = LogStream.STDOUT) -> None:
        self.lines.append((stream, message))

    def text(self) -> str:
        return "\n".join(message for _, message in self.lines)


def free_port() -> int:
    """A TCP port nothing listens on at the moment."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def host_port(target: int = 8080) -> PortSpec:
    """A host-mode published port (the routing mesh does not route on these machines)."""
    return PortSpec(published_port=free_port(), target_port=target, publish_mode=PublishMode.HOST)
