"""``slipway``: the server's own commands, and a client of a running server (app/client)."""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from app.client.errors import CANCELLED, CLOSED_PIPE, ClientError

if TYPE_CHECKING:
    from app.client.connection import Connection
    from app.client.http import Api
    from app.db.session import Database
    from app.settings import Settings

SCOPES = ("READ", "DEPLOY", "ADMIN")
HELP = """Slipway: the server's own commands, and a client of a running server.

\b
On the server's machine:
  serve, worker, migrate, export-schema, api-key create
  (api-key list and revoke without --url work on the database directly)

\b
Anywhere, talking to a server over its API (SLIPWAY_URL, SLIPWAY_API_KEY):
  apps, status, deploy, redeploy, rollback, cancel, logs, queue, api-key list, api-key revoke
  --output json: one JSON document; with --follow, JSON lines (one object a line)

\b
Exit codes:
  0    success (a followed deployment ended DONE)
  1    failure (an API error, an unreachable server; a followed deployment ERROR)
  2    bad usage
  130  cancelled (a followed deployment CANCELLED, or Ctrl-C)
  141  stdout's reader went away (| head): the follow stops, the deployment goes on
"""
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _server_logging() -> None:
    """Log lines for the server's own commands (the client commands log nothing)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per plugin otherwise


def _settings() -> Settings:
    from app.settings import get_settings

    _server_logging()
    return get_settings()


@click.group(context_settings=CONTEXT, help=HELP)
def cli() -> None:
    pass


# --- the server's own commands -------------------------------------------------------------


@cli.command(help="the API server (and, in embedded mode, the worker)")
@click.option("--host", default=None, help="default: SLIPWAY_HOST")
@click.option("--port", type=int, default=None, help="default: SLIPWAY_PORT")
def serve(host: str | None, port: int | None) -> int:
    import uvicorn

    from app.db.migrate import upgrade
    from app.main import create_app, server_config

    settings = _settings()
    host = settings.host if host is None else host
    port = settings.port if port is None else port
    upgrade(settings.effective_database_url)
    mode = "embedded (in-process worker)" if settings.embedded else "distributed (API only)"
    logging.getLogger("slipway").info("Slipway %s on http://%s:%d/graphql", mode, host, port)
    settings = settings.model_copy(update={"host": host, "port": port})  # ours
    config = server_config(create_app(settings), settings, host=host, port=port)
    uvicorn.Server(config).run()
    return 0


@cli.command(help="Dramatiq workers (distributed mode)")
def worker() -> int:
    from app.queue.worker import run_until_signalled

    settings = _settings()
    if settings.embedded:
        sys.stderr.write("slipway worker needs SLIPWAY_REDIS_URL (embedded mode runs in serve)\n")
        return 2
    run_until_signalled(settings)
    return 0


@cli.command(help="alembic upgrade head")
def migrate() -> int:
    from app.db.migrate import upgrade

    upgrade(_settings().effective_database_url)
    return 0


@cli.command("export-schema", help="print the GraphQL SDL")
def export_schema() -> int:
    from app.graphql.schema import export_sdl

    sys.stdout.write(export_sdl())
    return 0


class _Duration(click.ParamType):  # type: ignore[type-arg]
    """``90s``, ``15m``, ``12h``, ``30d``, ``2w``."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, timedelta):
            return value
        match = re.fullmatch(r"([1-9][0-9]{0,5})([smhdw])", str(value).strip())
        if match is None:
            self.fail(f"expected a duration like 30d, 12h or 15m, got {value!r}", param, ctx)
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
        return timedelta(**{unit[match[2]]: int(match[1])})


class _Scope(click.Choice[str]):
    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value not in self.choices:
            self.fail(f"invalid choice: {value!r} (choose from {', '.join(SCOPES)})", param, ctx)
        return value


def _keys_db(settings: Settings) -> Database:
    from app.db.migrate import upgrade
    from app.db.session import Database

    upgrade(settings.effective_database_url)
    return Database(settings.effective_database_url)


@cli.group("api-key", help="manage API keys (list/revoke: on the server with --url)")
def api_key_group() -> None:
    pass


@api_key_group.command("create", help="create a key in the database; prints it on the last line")
@click.option("--name", required=True)
@click.option("--scope", "scopes", multiple=True, required=True, type=_Scope(SCOPES))
@click.option(
    "--expires-in", type=_Duration(), default=None, help="e.g. 30d, 12h, 2w (default: never)"
)
def api_key_create(name: str, scopes: tuple[str, ...], expires_in: timedelta | None) -> int:
    from app.db.base import utcnow
    from app.db.repos import api_keys
    from app.types import Scope

    settings = _settings()
    expires = utcnow() + expires_in if expires_in else None
    db = _keys_db(settings)
    with db.session() as session:
        row, secret = api_keys.create(
            session, name=name, scopes=[Scope(s) for s in scopes], expires_at=expires
        )
    until = f", expires {_when(row.expires_at)}" if row.expires_at else ""
    sys.stderr.write(
        f"created API key {row.name!r} ({row.scopes}{until}); it is shown this once:\n"
    )
    sys.stdout.write(secret + "\n")
    db.dispose()
    return 0


# --- talking to a server --------------------------------------------------------------------

_OUTPUT = click.option(
    "--output",
    "-o",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one JSON document (with --follow: JSON lines, one object a line)",
)


def _connection_options(required: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn = click.option(
            "--api-key",
            "api_key",
            envvar="SLIPWAY_API_KEY",
            show_envvar=True,
            default=None,
            help="prefer the environment variable: a flag is visible to other local users",
        )(fn)
        return click.option(
            "--url",
            envvar="SLIPWAY_URL",
            show_envvar=True,
            default=None,
            help="the server, http(s)://host:port" + ("" if required else " (unset: local)"),
        )(fn)

    return decorate


def remote(fn: Callable[..., int]) -> Callable[..., int]:
    """A command that talks to a server: ``--url``/``--api-key``, errors as one line."""

    @_connection_options(required=True)
    @functools.wraps(fn)
    def command(url: str | None, api_key: str | None, **kwargs: Any) -> int:
        return _talk(url, api_key, lambda api, connection: fn(api, connection, **kwargs))

    return command


def _talk(url: str | None, key: str | None, run: Callable[[Api, Connection], int]) -> int:
    from httpx import HTTPError
    from websockets.exceptions import WebSocketException

    from app.client.connection import Connection
    from app.client.http import Api

    try:
        connection = Connection.of(url, key)
        with Api(connection) as api:
            return run(api, connection)
    except ClientError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return exc.exit_code
    except BrokenPipeError:
        # Whoever read stdout stopped: end quietly, as `| head` expects (stdout pointed at
        # /dev/null so that the interpreter's last flush does not fail again).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return CLOSED_PIPE
    except (HTTPError, WebSocketException, OSError, json.JSONDecodeError) as exc:
        sys.stderr.write(f"error: {exc.__class__.__name__}: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return CANCELLED


@cli.command(help="list the applications")
@_OUTPUT
@remote
def apps(api: Api, _: Connection, output: str) -> int:
    from app.client import commands

    return commands.apps(api, output)


@cli.command(help="an application's status and its last deployment (APP: name or id)")
@click.argument("app")
@_OUTPUT
@remote
def status(api: Api, _: Connection, app: str, output: str) -> int:
    from app.client import commands

    return commands.status(api, app, output)


_FOLLOW = click.option(
    "--follow", "-f", is_flag=True, help="print the log live until the deployment ends"
)


@cli.command(help="deploy APP (name or id); prints the deployment id, or follows it")
@click.argument("app")
@_FOLLOW
@_OUTPUT
@remote
def deploy(api: Api, connection: Connection, app: str, follow: bool, output: str) -> int:
    from app.client import commands

    return commands.start(api, connection, app, redeploy=False, follow=follow, output=output)


@cli.command(help="rebuild the source APP fetched last, without fetching")
@click.argument("app")
@_FOLLOW
@_OUTPUT
@remote
def redeploy(api: Api, connection: Connection, app: str, follow: bool, output: str) -> int:
    from app.client import commands

    return commands.start(api, connection, app, redeploy=True, follow=follow, output=output)


@cli.command(help="release DEPLOYMENT's image again (a new ROLLBACK deployment); prints its id")
@click.argument("deployment")
@_FOLLOW
@_OUTPUT
@remote
def rollback(api: Api, connection: Connection, deployment: str, follow: bool, output: str) -> int:
    from app.client import commands

    return commands.rollback(api, connection, deployment, follow=follow, output=output)


@cli.command(help="cancel APP's queued deployments and stop its running one")
@click.argument("app")
@_OUTPUT
@remote
def cancel(api: Api, _: Connection, app: str, output: str) -> int:
    from app.client import commands

    return commands.cancel(api, app, output)


@cli.command(help="a deployment's log; --follow: until it ends (exit 0 DONE, 1 ERROR, 130)")
@click.argument("deployment")
@_FOLLOW
@click.option(
    "--after-seq", type=click.IntRange(min=0), default=0, help="only the lines after this seq"
)
@_OUTPUT
@remote
def logs(
    api: Api, connection: Connection, deployment: str, follow: bool, after_seq: int, output: str
) -> int:
    from app.client import commands

    return commands.logs(api, connection, deployment, follow=follow, after=after_seq, output=output)


@cli.command(help="running, waiting, scheduled and recently finished deployments")
@_OUTPUT
@remote
def queue(api: Api, _: Connection, output: str) -> int:
    from app.client import commands

    return commands.queue(api, output)


# --- api-key list / revoke: on the server with --url, else on the database ---------------------


@api_key_group.command("list", help="every key: id, name, scopes, prefix, dates, state")
@click.option("--json", "as_json", is_flag=True, help="a JSON array instead of a table")
@_connection_options(required=False)
def api_key_list(as_json: bool, url: str | None, api_key: str | None) -> int:
    if url:
        from app.client import commands

        return _talk(url, api_key, lambda api, _: commands.api_keys(api, as_json))
    from app.db.base import utcnow
    from app.db.repos import api_keys

    db = _keys_db(_settings())
    with db.session() as session:
        rows, now = api_keys.list_all(session), utcnow()
    db.dispose()
    table = [
        {
            "id": r.id,
            "name": r.name,
            "scopes": r.scopes,
            "prefix": r.prefix,
            "created": _when(r.created_at),
            "lastUsed": _when(r.last_used_at),
            "expires": _when(r.expires_at),
            "state": "revoked" if r.revoked_at else "active" if r.usable(now) else "expired",
        }
        for r in rows
    ]
    if as_json:
        sys.stdout.write(json.dumps(table, indent=2) + "\n")
        return 0
    columns = ["id", "name", "scopes", "prefix", "created", "lastUsed", "expires", "state"]
    widths = {c: max([len(c), *(len(str(t[c])) for t in table)]) for c in columns}
    for line in [dict(zip(columns, columns, strict=True)), *table]:
        sys.stdout.write("  ".join(str(line[c]).ljust(widths[c]) for c in columns).rstrip() + "\n")
    return 0


@api_key_group.command("revoke", help="refuse a key from its next request on")
@click.argument("key_id", metavar="ID")
@_connection_options(required=False)
def api_key_revoke(key_id: str, url: str | None, api_key: str | None) -> int:
    if url:
        from app.client import commands

        return _talk(url, api_key, lambda api, _: commands.revoke_api_key(api, key_id))
    from app.db.repos import api_keys
    from app.errors import NotFound

    db = _keys_db(_settings())
    try:
        with db.session(locking=True) as session:
            revoked = api_keys.revoke(session, key_id, keep_last_admin=False)
            admins = api_keys.usable_admin_count(session)
    except NotFound as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    finally:
        db.dispose()
    sys.stderr.write(f"API key {key_id} {'revoked' if revoked else 'was already revoked'}\n")
    if admins == 0:
        sys.stderr.write("no usable ADMIN key is left: `slipway api-key create` makes one\n")
    return 0


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else "-"


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit code (click's usage errors: 2, with the usage on stderr)."""
    try:
        result = cli.main(args=argv, prog_name="slipway", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:  # Ctrl-C outside a remote command (click turns it into Abort)
        sys.stderr.write("interrupted\n")
        return CANCELLED
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    raise SystemExit(main())
