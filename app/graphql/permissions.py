"""Scopes on fields: every operation needs a key; deploying needs DEPLOY; keys need ADMIN."""

from __future__ import annotations

from typing import Any

from strawberry.extensions import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension

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


class MayDeploy(BasePermission):
    """For fields a READ key sees as null (with ``hidden_from_read``), not as an error."""

    message = "shown to DEPLOY and ADMIN keys only"

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:  # noqa: ARG002
        principal = info.context.principal
        return principal is not None and Scope.DEPLOY in principal.scopes


def hidden_from_read() -> list[FieldExtension]:
    """Field extensions: the value for DEPLOY and ADMIN keys, null for READ keys."""
    only = PermissionExtension(permissions=[MayDeploy()], fail_silently=True, use_directives=False)
    return [only]
