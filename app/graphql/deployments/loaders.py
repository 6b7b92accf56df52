"""Per-request dataloaders: one query per list, never one per row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session
from strawberry.dataloader import DataLoader

from app.db.models import Application, Deployment, DeploymentEvent
from app.db.repos import applications, deployments, events
from app.db.repos.paging import Page, Window
from app.graphql.context import Context


def applications_loader(ctx: Context) -> DataLoader[str, Application | None]:
    async def load(ids: Sequence[str]) -> list[Application | None]:
        found = await ctx.db(applications.by_ids, list(ids))
        return [found.get(i) for i in ids]

    return ctx.loader("applications", lambda: DataLoader(load_fn=load))


def queue_positions_loader(ctx: Context) -> DataLoader[str, int | None]:
    async def load(ids: Sequence[str]) -> list[int | None]:
        found = await ctx.db(deployments.queue_positions, list(ids))
        return [found.get(i) for i in ids]

    return ctx.loader("queue_positions", lambda: DataLoader(load_fn=load))


def events_loader(ctx: Context) -> DataLoader[str, list[DeploymentEvent]]:
    async def load(ids: Sequence[str]) -> list[list[DeploymentEvent]]:
        found: dict[str, Any] = await ctx.db(events.for_deployments, list(ids))
        return [found.get(i, []) for i in ids]

    return ctx.loader("events", lambda: DataLoader(load_fn=load))


PageKey = tuple[str, Window]  # application id, the page asked for


def application_deployments_loader(ctx: Context) -> DataLoader[PageKey, Page[Deployment]]:
    """``Application.deployments`` of every application in a list: one statement per page
    shape (size, cursors, direction), whatever the number of applications."""

    def load_all(session: Session, keys: Sequence[PageKey]) -> list[Page[Deployment]]:
        shapes: dict[Window, list[str]] = {}
        for app_id, window in keys:
            shapes.setdefault(window, []).append(app_id)
        found: dict[PageKey, Page[Deployment]] = {}
        for window, app_ids in shapes.items():
            if len(app_ids) == 1:  # one application: the plain page, which LIMIT bounds
                page = deployments.page(
                    session, application_id=app_ids[0], statuses=None, window=window
                )
                found[(app_ids[0], window)] = page
                continue
            many = deployments.pages(session, application_ids=app_ids, window=window)
            found.update({(app_id, window): p for app_id, p in many.items()})
        return [found[key] for key in keys]

    async def load(keys: Sequence[PageKey]) -> list[Page[Deployment]]:
        return await ctx.db(load_all, keys)

    return ctx.loader("application_deployments", lambda: DataLoader(load_fn=load))
