"""``slipway serve | worker | migrate | export-schema | api-key create | list | revoke``."""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from app.settings import Settings, get_settings

if TYPE_CHECKING:
    from app.db.session import Database


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from app.db.migrate import upgrade
    from app.main import create_app, server_config

    upgrade(settings.effective_database_url)
    mode = "embedded (in-process worker)" if settings.embedded else "distributed (API only)"
    logging.getLogger("slipway").info(
        "Slipway %s on http://%s:%d/graphql", mode, args.host, args.port
    )
    settings = settings.model_copy(update={"host": args.host, "port": args.port})  # ours
    config = server_config(create_app(settings), settings, host=args.host, port=args.port)
    uvicorn.Server(config).run()
    return 0


def _worker(settings: Settings, _: argparse.Namespace) -> int:
    from app.queue.worker import run_until_signalled

    if settings.embedded:
        sys.stderr.write("slipway worker needs SLIPWAY_REDIS_URL (embedded mode runs in serve)\n")
        return 2
    run_until_signalled(settings)
    return 0


def _migrate(settings: Settings, _: argparse.Namespace) -> int:
    from app.db.migrate import upgrade

    upgrade(settings.effective_database_url)
    return 0


def _export_schema(_: Settings, __: argparse.Namespace) -> int:
    from app.graphql.schema import export_sdl

    sys.stdout.write(export_sdl())
    return 0


def _duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``12h``, ``30d``, ``2w``."""
    match = re.fullmatch(r"([1-9][0-9]{0,5})([smhdw])", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"expected a duration like 30d, 12h or 15m, got {text!r}")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    return timedelta(**{unit[match[2]]: int(match[1])})


def _keys_db(settings: Settings) -> Database:
    from app.db.migrate import upgrade
    from app.db.session import Database

    upgrade(settings.effective_database_url)
    return Database(settings.effective_database_url)


def _api_key_create(settings: Settings, args: argparse.Namespace) -> int:
    from app.db.base import utcnow
    from app.db.repos import api_keys
    from app.types import Scope

    expires = utcnow() + args.expires_in if args.expires_in else None
    db = _keys_db(settings)
    with db.session() as session:
        row, secret = api_keys.create(
            session, name=args.name, scopes=[Scope(s) for s in args.scope], expires_at=expires
        )
    until = f", expires {_when(row.expires_at)}" if row.expires_at else ""
    sys.stderr.write(
        f"created API key {row.name!r} ({row.scopes}{until}); it is shown this once:\n"
    )
    sys.stdout.write(secret + "\n")
    db.dispose()
    return 0


def _api_key_list(settings: Settings, args: argparse.Namespace) -> int:
    from app.db.base import utcnow
    from app.db.repos import api_keys

    db = _keys_db(settings)
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
    if args.json:
        sys.stdout.write(json.dumps(table, indent=2) + "\n")
        return 0
    columns = ["id", "name", "scopes", "prefix", "created", "lastUsed", "expires", "state"]
    widths = {c: max([len(c), *(len(str(t[c])) for t in table)]) for c in columns}
    for line in [dict(zip(columns, columns, strict=True)), *table]:
        sys.stdout.write("  ".join(str(line[c]).ljust(widths[c]) for c in columns).rstrip() + "\n")
    return 0


def _api_key_revoke(settings: Settings, args: argparse.Namespace) -> int:
    from app.db.repos import api_keys
    from app.errors import NotFound

    db = _keys_db(settings)
    try:
        with db.session(locking=True) as session:
            revoked = api_keys.revoke(session, args.id, keep_last_admin=False)
            admins = api_keys.usable_admin_count(session)
    except NotFound as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    finally:
        db.dispose()
    sys.stderr.write(f"API key {args.id} {'revoked' if revoked else 'was already revoked'}\n")
    if admins == 0:
        sys.stderr.write("no usable ADMIN key is left: `slipway api-key create` makes one\n")
    return 0


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else "-"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="slipway", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="the API server (and, in embedded mode, the worker)")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.set_defaults(fn=_serve)
    sub.add_parser("worker", help="Dramatiq workers (distributed mode)").set_defaults(fn=_worker)
    sub.add_parser("migrate", help="alembic upgrade head").set_defaults(fn=_migrate)
    sub.add_parser("export-schema", help="print the GraphQL SDL").set_defaults(fn=_export_schema)
    keys = sub.add_parser("api-key", help="manage API keys").add_subparsers(
        dest="action", required=True
    )
    create = keys.add_parser("create", help="create a key; prints it alone on the last line")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--scope", action="append", required=True, choices=["READ", "DEPLOY", "ADMIN"]
    )
    create.add_argument(
        "--expires-in", type=_duration, default=None, help="e.g. 30d, 12h, 2w (default: never)"
    )
    create.set_defaults(fn=_api_key_create)
    listing = keys.add_parser("list", help="every key: id, name, scopes, prefix, dates, state")
    listing.add_argument("--json", action="store_true", help="a JSON array instead of a table")
    listing.set_defaults(fn=_api_key_list)
    revoke = keys.add_parser("revoke", help="refuse a key from its next request on")
    revoke.add_argument("id")
    revoke.set_defaults(fn=_api_key_revoke)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per plugin otherwise
    args = parser().parse_args(argv)
    settings = get_settings()
    if getattr(args, "host", None) is None and args.command == "serve":
        args.host, args.port = settings.host, args.port or settings.port
    elif args.command == "serve" and args.port is None:
        args.port = settings.port
    result: int = args.fn(settings, args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
