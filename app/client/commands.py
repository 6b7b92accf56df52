"""The CLI's remote commands: each talks to a server over the API, never to its database.

``apps``, ``status``, ``deploy``, ``redeploy``, ``rollback``, ``cancel``, ``logs``, ``queue``,
the remote ``api-key list``/``revoke``. Each returns its exit code (errors.py): 0, 1 when the
command or the followed deployment failed, 130 when the deployment was cancelled or Ctrl-C
pressed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from app.client import documents as q
from app.client.connection import Connection
from app.client.errors import CANCELLED, FAILED, ClientError
from app.client.follow import LogFollower
from app.client.http import Api
from app.client.render import PlainLog, RichLog, is_terminal, log_view, table, write_json

TERMINAL = {"DONE": 0, "ERROR": FAILED, "CANCELLED": CANCELLED}
LOG_PAGE = 5000


def exit_code(status: str) -> int:
    """0 for DONE, 1 for ERROR, 130 for CANCELLED."""
    return TERMINAL[status]


# --- applications -----------------------------------------------------------------------


def all_applications(api: Api) -> Iterator[dict[str, Any]]:
    after: str | None = None
    while True:
        page = api.call(q.APPLICATIONS, after=after)["applications"]
        for edge in page["edges"]:
            yield edge["node"]
        if not page["pageInfo"]["hasNextPage"]:
            return
        after = page["pageInfo"]["endCursor"]


def resolve_app(api: Api, ref: str) -> dict[str, Any]:
    """The application with this id, else this ``appName``, else this name (if only one)."""
    found: dict[str, Any] | None = api.call(q.APPLICATION, id=ref)["application"]
    if found:
        return found
    apps = list(all_applications(api))
    for app in apps:
        if app["appName"] == ref:
            return app
    named = [app for app in apps if app["name"] == ref]
    if len(named) > 1:
        ids = ", ".join(app["id"] for app in named)
        raise ClientError(f"{len(named)} applications are named {ref!r} ({ids}): give the id")
    if not named:
        raise ClientError(f"no application has the id or name {ref!r}", code="NOT_FOUND")
    return named[0]


def apps(api: Api, output: str) -> int:
    rows = list(all_applications(api))
    if output == "json":
        write_json(rows)
        return 0
    columns = ["NAME", "ID", "STATUS", "SOURCE", "BUILD", "SERVICE"]
    keys = ["name", "id", "status", "sourceType", "buildType", "appName"]
    table(columns, [[row[k] for k in keys] for row in rows])
    return 0


def status(api: Api, ref: str, output: str) -> int:
    app = resolve_app(api, ref)
    edges = api.call(q.LATEST, app=app["id"])["deployments"]["edges"]
    latest = edges[0]["node"] if edges else None
    if output == "json":
        write_json({"application": app, "lastDeployment": latest})
        return 0
    out = sys.stdout
    out.write(f"{app['name']}  {app['status']}  (id {app['id']}, service {app['appName']})\n")
    if latest is None:
        out.write("no deployments yet\n")
        return 0
    out.write(
        f"last deployment {latest['id']} {latest['status']} ({latest['trigger']}, "
        f"created {latest['createdAt']})\n"
    )
    if latest.get("errorMessage"):
        out.write(f"  error: {latest['errorMessage']}\n")
    for step in latest["steps"]:
        took = step["durationMs"]
        out.write(f"  {step['step']:<14} {step['outcome']:<10} {'' if took is None else took}ms\n")
    return 0


def queue(api: Api, output: str) -> int:
    jobs = api.call(q.QUEUE)["deploymentQueue"]
    if output == "json":
        write_json(jobs)
        return 0
    columns = ["STATE", "POS", "DEPLOYMENT", "APP", "STATUS", "TRIGGER", "CREATED"]
    rows = [
        [
            job["state"],
            job["position"],
            job["deployment"]["id"],
            job["deployment"]["application"]["name"],
            job["deployment"]["status"],
            job["deployment"]["trigger"],
            job["deployment"]["createdAt"],
        ]
        for job in jobs
    ]
    table(columns, rows)
    return 0


# --- deployments --------------------------------------------------------------------------


def start(
    api: Api, connection: Connection, ref: str, *, redeploy: bool, follow: bool, output: str
) -> int:
    """deployApplication / redeployApplication; with ``follow`` its log until it ends."""
    app = resolve_app(api, ref)
    if redeploy:
        deployment = api.call(q.REDEPLOY, app=app["id"])["redeployApplication"]
    else:
        deployment = api.call(q.DEPLOY, app=app["id"])["deployApplication"]
    if follow:
        return follow_deployment(api, connection, deployment, output=output)
    if output == "json":
        write_json(deployment)
        return 0
    where = f" (position {deployment['queuePosition']})" if deployment["queuePosition"] else ""
    sys.stderr.write(f"deployment of {app['name']} {deployment['status']}{where}:\n")
    sys.stdout.write(deployment["id"] + "\n")
    return 0


def rollback(
    api: Api, connection: Connection, deployment_id: str, *, follow: bool, output: str
) -> int:
    """rollbackDeployment: a new deployment releasing that DONE deployment's image again."""
    deployment = api.call(q.ROLLBACK, id=deployment_id)["rollbackDeployment"]
    if follow:
        return follow_deployment(api, connection, deployment, output=output)
    if output == "json":
        write_json(deployment)
        return 0
    sys.stderr.write(f"rollback to deployment {deployment_id} {deployment['status']}:\n")
    sys.stdout.write(deployment["id"] + "\n")
    return 0


def cancel(api: Api, ref: str, output: str) -> int:
    app = resolve_app(api, ref)
    deployment = api.call(q.CANCEL, app=app["id"])["cancelDeployment"]
    if output == "json":
        write_json(deployment)
        return 0
    if deployment is None:
        sys.stderr.write(f"{app['name']} has no deployment to cancel\n")
    elif deployment["status"] == "RUNNING":
        sys.stderr.write(f"deployment {deployment['id']} of {app['name']} is being stopped\n")
    else:
        sys.stderr.write(f"deployment {deployment['id']} of {app['name']} {deployment['status']}\n")
    return 0


def deployment_of(api: Api, deployment_id: str) -> dict[str, Any]:
    found: dict[str, Any] | None = api.call(q.DEPLOYMENT, id=deployment_id)["deployment"]
    if found is None:
        raise ClientError(f"no deployment has the id {deployment_id!r}", code="NOT_FOUND")
    return found


def logs(
    api: Api, connection: Connection, deployment_id: str, *, follow: bool, after: int, output: str
) -> int:
    deployment = deployment_of(api, deployment_id)
    if follow:
        return follow_deployment(api, connection, deployment, output=output, after_seq=after)
    lines: list[dict[str, Any]] = []
    view = RichLog() if output != "json" and is_terminal(sys.stdout) else PlainLog()
    while True:
        page = api.call(q.LOG_PAGE, id=deployment_id, after=after, limit=LOG_PAGE)
        batch = page["deployment"]["logs"]
        if output == "json":
            lines.extend(batch)
        elif batch:
            view.lines(batch)
        if len(batch) < LOG_PAGE:
            break
        after = batch[-1]["seq"]
    if output == "json":
        write_json(lines)
    return 0


def follow_deployment(
    api: Api,
    connection: Connection,
    deployment: dict[str, Any],
    *,
    output: str,
    after_seq: int = 0,
    give_up_after: float = 300.0,
) -> int:
    """Its log lines as they come (resuming after a drop), then its end: the exit code."""
    view = log_view(output)
    view.begin(deployment)
    follower: LogFollower
    try:
        follower = LogFollower(
            connection,
            deployment["id"],
            after_seq=after_seq,
            on_lines=view.lines,
            on_retry=lambda reason: view.retry(reason, follower.last_seq),
            give_up_after=give_up_after,
        )
        follower.run()
        final = _retrying(lambda: _finished(api, deployment["id"]), give_up_after)
    finally:
        view.close()
    view.end(final)
    return exit_code(final["status"])


def _finished(api: Api, deployment_id: str) -> dict[str, Any]:
    """The deployment once it has ended (the log stream completes just before its row says
    so on some paths: wait a little for it)."""
    deadline = time.monotonic() + 30
    while True:
        found = deployment_of(api, deployment_id)
        if found["status"] in TERMINAL or time.monotonic() > deadline:
            if found["status"] not in TERMINAL:
                raise ClientError(f"the log stream ended but the deployment is {found['status']}")
            return found
        time.sleep(0.2)


def _retrying(call: Callable[[], dict[str, Any]], give_up_after: float) -> dict[str, Any]:
    """``call`` again while the server cannot be reached (an error with no GraphQL code)."""
    deadline = time.monotonic() + give_up_after
    delay = 0.2
    while True:
        try:
            return call()
        except ClientError as exc:
            if exc.code is not None or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


# --- API keys -----------------------------------------------------------------------------


def api_keys(api: Api, as_json: bool) -> int:
    """As the local ``api-key list``: the same columns and JSON shape, from ``apiKeys``."""
    now = datetime.now(UTC)
    rows = [
        {
            "id": k["id"],
            "name": k["name"],
            "scopes": ",".join(sorted(k["scopes"])),
            "prefix": k["prefix"],
            "created": _when(k["createdAt"]),
            "lastUsed": _when(k["lastUsedAt"]),
            "expires": _when(k["expiresAt"]),
            "state": "revoked"
            if k["revokedAt"]
            else "expired"
            if k["expiresAt"] and _moment(k["expiresAt"]) <= now
            else "active",
        }
        for k in api.call(q.API_KEYS)["apiKeys"]
    ]
    if as_json:
        write_json(rows)
        return 0
    columns = ["id", "name", "scopes", "prefix", "created", "lastUsed", "expires", "state"]
    table(columns, [[row[c] for c in columns] for row in rows])
    return 0


def revoke_api_key(api: Api, key_id: str) -> int:
    revoked = api.call(q.REVOKE_KEY, id=key_id)["revokeApiKey"]
    sys.stderr.write(f"API key {key_id} {'revoked' if revoked else 'was already revoked'}\n")
    return 0


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _when(text: str | None) -> str:
    return _moment(text).strftime("%Y-%m-%dT%H:%M:%SZ") if text else "-"
