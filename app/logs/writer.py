"""The one writer of a deployment's log: numbers, masks, appends, publishes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from app.logs.bus.base import Bus
from app.logs.files import last_seq
from app.logs.messages import End, Lines
from app.masking import MIN_ENV_SECRET, Masker
from app.metrics import instruments as metrics
from app.types import LogLine, LogStream


def logs_topic(deployment_id: str) -> str:
    return f"logs:{deployment_id}"


class LogWriter:
    """Thread-safe; every line gets the next seq, goes to the file, then to the bus.

    Opening an existing file continues its numbering, so a log can be resumed after a crash.
    """

    def __init__(
        self, *, path: Path, deployment_id: str, bus: Bus, secrets: Iterable[str] = ()
    ) -> None:
        self.path = path
        self.topic = logs_topic(deployment_id)
        self._bus = bus
        self._mask = Masker(secrets, min_length=MIN_ENV_SECRET)
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.seq = last_seq(path)
        self._file = path.open("a", encoding="utf-8")
        if self._file.tell() and not _ends_with_newline(path):
            self._file.write("\n")  # a crash tore the last line; start a fresh one
        self.step: str | None = None
        self.closed = False

    def write(
        self, message: str, *, stream: LogStream = LogStream.STDOUT, step: str | None = None
    ) -> None:
        """Append ``message`` (split into lines; blank trailing lines dropped)."""
        texts = message.rstrip("\r\n").split("\n") if message else [""]
        now = datetime.now(UTC)
        with self._lock:
            if self.closed:
                return
            step = step if step is not None else self.step
            mask = self._mask if self._mask else None
            # The fields every line of this call shares, encoded once: only seq and the
            # text differ (see files.py for the format).
            head = f",{_json(now.isoformat())},{_json(stream.value)},{_json(step)},"
            seq = self.seq
            lines = []
            rows = []
            for raw in texts:
                seq += 1
                text = raw.rstrip("\r")
                if mask is not None:
                    text = mask(text)
                lines.append(LogLine(seq, now, stream, step, text))
                rows.append(f"[{seq}{head}{_json(text)}]\n")
            self.seq = seq
            self._file.write("".join(rows))
            self._file.flush()  # in the file before on the bus: a reader fills gaps from it
            self._bus.publish(self.topic, Lines(tuple(lines)))
            metrics.log_lines_published(len(lines))

    def system(self, message: str) -> None:
        self.write(message, stream=LogStream.SYSTEM, step=self.step)

    def abandon(self) -> None:
        """Stop writing without a word: another process has already ended this log."""
        with self._lock:
            if not self.closed:
                self.closed = True
                self._file.close()

    def close(self) -> int:
        """Close the file and announce the last seq; returns it."""
        with self._lock:
            if not self.closed:
                self.closed = True
                self._file.close()
                self._bus.publish(self.topic, End(self.seq))
            return self.seq


# One encoder for every value: json.dumps with options builds a new one on each call.
_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(-1, 2)
        return fh.read(1) == b"\n"
