"""Per-request dataloaders: one query per list, never one per row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from strawberry.dataloader import DataLoader

from app.db.models import Application, DeploymentEvent
from app.db.repos import applications, deployments, events
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
