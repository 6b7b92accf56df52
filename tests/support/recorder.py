"""A LogFn that keeps what it is given, for tests of adapters that log."""

from __future__ import annotations

from app.types import LogStream


class Recorder:
    def __init__(self) -> None:
        self.lines: list[tuple[LogStream, str]] = []

    def __call__(self, message: str, *, stream: LogStream = LogStream.STDOUT) -> None:
        self.lines.append((stream, message))

    @property
    def text(self) -> str:
        return "\n".join(message for _, message in self.lines)
