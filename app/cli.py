"""``slipway serve | worker | migrate | export-schema | api-key create``."""

from __future__ import annotations

import argparse
import logging
import sys

from app.settings import Settings, get_settings


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from app.db.migrate import upgrade
    from app.main import create_app, server_config

    upgrade(settings.effective_database_url)
    mode = "embedded (in-process worker)" if settings.embedded else "distributed (API only)"
    logging.getLogger("slipway").info(
        "Slipway %s on http://%s:%d/graphql", mode, args.host, args.port
    )
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


def _api_key_create(settings: Settings, args: argparse.Namespace) -> int:
    from app.db.migrate import upgrade
    from app.db.repos import api_keys
    from app.db.session import Database
    from app.types import Scope

    upgrade(settings.effective_database_url)
    db = Database(settings.effective_database_url)
    with db.session() as session:
        row, secret = api_keys.create(
            session, name=args.name, scopes=[Scope(s) for s in args.scope]
        )
    sys.stderr.write(f"created API key {row.name!r} ({row.scopes}); it is shown this once:\n")
    sys.stdout.write(secret + "\n")
    return 0


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
    create.set_defaults(fn=_api_key_create)
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
