"""The providers by the name in the URL: ``/webhooks/<name>/<applicationId>``."""

from __future__ import annotations

from app.webhooks.base import Provider
from app.webhooks.bitbucket import Bitbucket
from app.webhooks.gitea import Gitea
from app.webhooks.github import GitHub
from app.webhooks.gitlab import GitLab

PROVIDERS: dict[str, Provider] = {p.name: p for p in (GitHub(), GitLab(), Gitea(), Bitbucket())}


def provider(name: str) -> Provider | None:
    return PROVIDERS.get(name.lower())
