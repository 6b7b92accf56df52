"""Scopes on fields: every operation needs a key; deploying needs DEPLOY; keys need ADMIN."""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission

from app.errors import Forbidden, Unauthenticated
from app.types import Scope


class _Needs(BasePermission):
    scope: Scope = Scope.READ
    message = "an API key is required"

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:  # noqa: ARG002
        principal = info.context.principal
        if principal is None:
            raise Unauthenticated("an API key is required (x-api-key or Authorization: Bearer)")
        if self.scope not in principal.scopes:
            raise Forbidden(f"this API key lacks the {self.scope.value} scope")
        return True


class CanRead(_Needs):
    scope = Scope.READ


class CanDeploy(_Needs):
    scope = Scope.DEPLOY


class IsAdmin(_Needs):
    scope = Scope.ADMIN
