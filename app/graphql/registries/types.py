"""GraphQL types of registries. The password is write-only: only ``hasPassword`` shows it."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.db.models import Registry as RegistryRow
from app.graphql.relay import Node
from app.registry.address import stored_secure
from app.registry.base import RegistryCheckResult


@strawberry.type(description="A registry images are pushed to (and rollback copies kept in)")
class Registry(Node):
    id: strawberry.ID
    name: str
    url: str = strawberry.field(
        description="normalised: host[:port], or http(s)://host[:port] when a scheme was given"
    )
    host: str = strawberry.field(description="host[:port] as image references start with it")
    username: str | None
    image_prefix: str | None = strawberry.field(
        description="the namespace under the host: images are <host>/<imagePrefix>/<appName>"
    )
    has_password: bool = strawberry.field(description="the password itself is write-only")
    secure: bool = strawberry.field(
        description="https; false: plain http (an http:// URL, or a loopback host without a "
        "scheme, as Docker decides)"
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: RegistryRow) -> Registry:
        return cls(
            id=strawberry.ID(row.id),
            name=row.name,
            url=row.url,
            host=row.host,
            username=row.username,
            image_prefix=row.image_prefix,
            has_password=bool(row.password_enc),
            secure=stored_secure(row.url),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@strawberry.type(
    description="What testRegistry found, in words a person can act on. The check stops at "
    "the first step that fails: each step is true (passed), false (failed there) or null "
    "(not reached)"
)
class RegistryCheck:
    ok: bool = strawberry.field(description="reachable, a registry, logged in, push allowed")
    message: str = strawberry.field(description="what was found, or what to fix")
    reachable: bool | None = strawberry.field(
        description="GET /v2/ got an HTTP answer (false: connection refused, no such host, "
        "TLS error or no answer in time)"
    )
    is_registry: bool | None = strawberry.field(
        description="the answer came from a registry (the distribution API's header)"
    )
    credentials_accepted: bool | None = strawberry.field(
        description="the registry accepted the username and password (false: refused, or "
        "required and not set; null also when it asked for no login)"
    )
    push_allowed: bool | None = strawberry.field(
        description="a blob upload to <imagePrefix>/slipway-check was accepted (and cancelled)"
    )

    @classmethod
    def from_result(cls, result: RegistryCheckResult) -> RegistryCheck:
        return cls(
            ok=result.ok,
            message=result.message,
            reachable=result.reachable,
            is_registry=result.is_registry,
            credentials_accepted=result.credentials_accepted,
            push_allowed=result.push_allowed,
        )
