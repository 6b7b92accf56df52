"""The enums of the API, declared once from app.types."""

from __future__ import annotations

import enum

import strawberry

from app import types as t

ApplicationStatus = strawberry.enum(t.ApplicationStatus)
DeploymentStatus = strawberry.enum(t.DeploymentStatus)
SourceType = strawberry.enum(t.SourceType)
BuildType = strawberry.enum(t.BuildType)
DeploymentTrigger = strawberry.enum(t.DeploymentTrigger)
LogStream = strawberry.enum(t.LogStream)
PublishMode = strawberry.enum(t.PublishMode)
Scope = strawberry.enum(t.Scope)


@strawberry.enum
class QueueState(enum.Enum):
    WAITING = "WAITING"
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    DELAYED = "DELAYED"
