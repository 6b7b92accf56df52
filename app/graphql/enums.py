"""The enums of the API: app.types' enums, registered with Strawberry once, here."""

from __future__ import annotations

import enum

import strawberry

from app import types as t

for _enum in (
    t.ApplicationHealth,
    t.ApplicationStatus,
    t.DeploymentStatus,
    t.SourceType,
    t.BuildType,
    t.DeploymentTrigger,
    t.TriggerType,
    t.LogStream,
    t.PublishMode,
    t.Scope,
    t.NotificationEvent,
):
    strawberry.enum(_enum)

ApplicationHealth = t.ApplicationHealth
ApplicationStatus = t.ApplicationStatus
DeploymentStatus = t.DeploymentStatus
SourceType = t.SourceType
BuildType = t.BuildType
DeploymentTrigger = t.DeploymentTrigger
TriggerType = t.TriggerType
LogStream = t.LogStream
PublishMode = t.PublishMode
Scope = t.Scope
NotificationEvent = t.NotificationEvent


@strawberry.enum
class QueueState(enum.Enum):
    WAITING = "WAITING"
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    DELAYED = "DELAYED"
