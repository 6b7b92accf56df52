"""Scopes on fields: every operation needs a key; deploying needs DEPLOY; keys need ADMIN."""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission

from app.types import Scope


class _Needs(BasePermission):
    scope: Scope = Scope.READ
    message = "an API key is required"

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:  # noqa: ARG002
        info.context.who().require(self.scope)  # raises Unauthenticated / Forbidden
        return True


class CanRead(_Needs):
    scope = Scope.READ


class CanDeploy(_Needs):
    scope = Scope.DEPLOY


class IsAdmin(_Needs):
    scope = Scope.ADMIN
