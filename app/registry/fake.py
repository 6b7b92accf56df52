"""An in-memory ``RegistryClient`` for unit tests: manifests by repository, scripted checks."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.errors import RegistryError
from app.registry.base import RegistryCheckResult
from app.registry.client import repository_path
from app.types import RegistryTarget


@dataclass
class FakeRegistryClient:
    """``manifests[(host, repository)]`` holds digests; ``deletes_enabled`` False is a 405."""

    check_result: RegistryCheckResult = field(
        default_factory=lambda: RegistryCheckResult(
            ok=True,
            message="fake registry: push allowed",
            reachable=True,
            is_registry=True,
            credentials_accepted=True,
            push_allowed=True,
        )
    )
    deletes_enabled: bool = True
    manifests: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    checks: list[tuple[str, str]] = field(default_factory=list)  # (host, repository)
    deleted: list[tuple[str, str, str]] = field(default_factory=list)  # (host, repo, digest)

    def add(self, target: RegistryTarget, repository: str, digest: str) -> None:
        """As if ``digest`` had been pushed to ``repository``."""
        key = (target.host, repository_path(target, repository))
        self.manifests.setdefault(key, set()).add(digest)

    def check(self, target: RegistryTarget, *, repository: str) -> RegistryCheckResult:
        self.checks.append((target.host, repository_path(target, repository)))
        return self.check_result

    def delete(self, target: RegistryTarget, *, repository: str, digest: str) -> bool:
        if not self.deletes_enabled:
            raise RegistryError(f"{target.host} has deletes disabled (HTTP 405)")
        key = (target.host, repository_path(target, repository))
        present = digest in self.manifests.get(key, set())
        self.manifests.get(key, set()).discard(digest)
        if present:
            self.deleted.append((*key, digest))
        return present
