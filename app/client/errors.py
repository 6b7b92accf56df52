"""What can go wrong talking to a server, as one line for the user and an exit code."""

from __future__ import annotations

from typing import Any

FAILED = 1  # the command failed (an API error, an unreachable server), or the deployment did
USAGE = 2  # bad usage: a missing setting or argument (click's usage errors exit 2 too)
CANCELLED = 130  # the deployment was cancelled, or the user pressed Ctrl-C (128 + SIGINT)
CLOSED_PIPE = 141  # stdout's reader went away (`slipway logs -f ID | head`): 128 + SIGPIPE


class ClientError(Exception):
    """A failure to report as ``error: <message>`` on stderr and exit with ``exit_code``."""

    def __init__(self, message: str, *, code: str | None = None, exit_code: int = FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.exit_code = exit_code

    def __str__(self) -> str:
        return f"{self.message} ({self.code})" if self.code else self.message


class UsageError(ClientError):
    """A missing or bad setting: exit 2 as click's own usage errors."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=USAGE)


def from_graphql(errors: list[dict[str, Any]]) -> ClientError:
    """The first GraphQL error as a ClientError (its ``extensions.code``; the others counted)."""
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    message = str(first.get("message") or "the server answered with an error")
    extensions = first.get("extensions")
    code = extensions.get("code") if isinstance(extensions, dict) else None
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more errors)"
    return ClientError(message, code=str(code) if code else None)
