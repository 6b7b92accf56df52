"""How the CLI shows things: rich on a terminal (colours, a spinner), plain text when piped,
JSON for scripts. Log messages are printed as text, never read as rich markup."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any, Protocol, TextIO

from rich.console import Console
from rich.status import Status
from rich.table import Table
from rich.text import Text

STREAM_STYLES = {"STDERR": "red", "SYSTEM": "cyan"}
STEP_STYLE = "bold blue"  # the engine's "==> STEP" lines
STATUS_STYLES = {"DONE": "bold green", "ERROR": "bold red", "CANCELLED": "bold yellow"}


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def console(stream: TextIO) -> Console:
    """rich on ``stream``: colours only on a terminal and without NO_COLOR (rich reads it)."""
    return Console(file=stream, no_color="NO_COLOR" in os.environ or None, highlight=False)


def write_json(document: Any, stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    out.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    out.flush()


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Aligned columns: a rich table on a terminal, plain padded text when piped."""
    cells = [["-" if v is None else str(v) for v in row] for row in rows]
    if is_terminal(sys.stdout):
        view = Table(*columns, box=None, header_style="bold", pad_edge=False)
        for row in cells:
            view.add_row(*(Text(c) for c in row))
        console(sys.stdout).print(view)
        return
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    for row in [list(columns), *cells]:
        line = "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row))
        sys.stdout.write(line.rstrip() + "\n")
    sys.stdout.flush()


class LogView(Protocol):
    """What a follow shows: lines as they come, reconnections, the deployment's end."""

    def begin(self, deployment: dict[str, Any]) -> None: ...
    def lines(self, batch: list[dict[str, Any]]) -> None: ...
    def retry(self, reason: str, last_seq: int) -> None: ...
    def end(self, deployment: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


def summary(deployment: dict[str, Any]) -> str:
    """``deployment 0192… DONE`` with its error and step durations."""
    text = f"deployment {deployment['id']} {deployment['status']}"
    if deployment.get("errorMessage"):
        text += f": {deployment['errorMessage']}"
    return text


def step_durations(deployment: dict[str, Any]) -> list[str]:
    out = []
    for step in deployment.get("steps") or []:
        took = step.get("durationMs")
        seconds = f" {took / 1000:.1f}s" if isinstance(took, int) else ""
        out.append(f"{step['step']} {step['outcome']}{seconds}")
    return out


class PlainLog:
    """Piped: each message on its own line, exactly as logged (the engine's own ``==> STEP``
    lines mark the steps); the summary on stderr. A batch is one write and one flush."""

    def __init__(self, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> None:
        self.out, self.err = out, err

    def begin(self, deployment: dict[str, Any]) -> None:
        self.err.write(f"following deployment {deployment['id']} ({deployment['status']})\n")
        self.err.flush()

    def lines(self, batch: list[dict[str, Any]]) -> None:
        self.out.write("".join([line["message"] + "\n" for line in batch]))
        self.out.flush()

    def retry(self, reason: str, last_seq: int) -> None:
        self.err.write(f"connection lost ({reason}); resuming after line {last_seq}\n")
        self.err.flush()

    def end(self, deployment: dict[str, Any]) -> None:
        steps = step_durations(deployment)
        self.err.write(summary(deployment) + (f" [{', '.join(steps)}]" if steps else "") + "\n")
        self.err.flush()

    def close(self) -> None:
        pass


class RichLog:
    """On a terminal: the step lines in bold, lines coloured by stream, a spinner naming the
    step under way."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.console = console(out)
        self.step: str | None = None
        self.status: Status | None = None

    def begin(self, deployment: dict[str, Any]) -> None:
        title = f" {deployment['title']}" if deployment.get("title") else ""
        self.console.print(Text(f"deployment {deployment['id']}{title}", style="bold"))
        self.status = self.console.status(f"{deployment['status'].lower()}…", spinner="dots")
        self.status.start()

    def lines(self, batch: list[dict[str, Any]]) -> None:
        """One print per batch (the live spinner is redrawn once, not once a line)."""
        text = Text()
        for n, line in enumerate(batch):
            step = line.get("step")
            if step and step != self.step:
                self.step = step
                if self.status is not None:
                    self.status.update(f"{step}…")
            stream, message = line.get("stream") or "", line["message"]
            style = STEP_STYLE if stream == "SYSTEM" and message.startswith("==> ") else ""
            text.append(message, style=style or STREAM_STYLES.get(stream) or None)
            if n < len(batch) - 1:
                text.append("\n")
        self.console.print(text, soft_wrap=True)

    def retry(self, reason: str, last_seq: int) -> None:
        self.console.print(Text(f"connection lost ({reason}); resuming", style="yellow"))
        if self.status is not None:
            self.status.update(f"reconnecting after line {last_seq}…")

    def end(self, deployment: dict[str, Any]) -> None:
        self.close()
        status = deployment["status"]
        self.console.print(Text(summary(deployment), style=STATUS_STYLES.get(status, "bold")))
        for step in step_durations(deployment):
            self.console.print(Text(f"  {step}", style="dim"))

    def close(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None


class JsonLinesLog:
    """``--output json`` with a follow: one JSON object a line. ``{"type": "line", ...}`` per
    log line, then ``{"type": "deployment", ...}`` with the end state."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out

    def begin(self, deployment: dict[str, Any]) -> None:
        pass

    def lines(self, batch: list[dict[str, Any]]) -> None:
        dumps = json.dumps
        self.out.write("".join(dumps({"type": "line", **line}) + "\n" for line in batch))
        self.out.flush()

    def retry(self, reason: str, last_seq: int) -> None:
        sys.stderr.write(f"connection lost ({reason}); resuming after line {last_seq}\n")
        sys.stderr.flush()

    def end(self, deployment: dict[str, Any]) -> None:
        self.out.write(json.dumps({"type": "deployment", **deployment}) + "\n")
        self.out.flush()

    def close(self) -> None:
        pass


def log_view(output: str) -> LogView:
    if output == "json":
        return JsonLinesLog()
    return RichLog() if is_terminal(sys.stdout) else PlainLog()
