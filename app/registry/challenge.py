"""The ``WWW-Authenticate`` challenge a registry answers 401 with (RFC 7235).

Distribution registries with htpasswd ask ``Basic realm="..."``; Docker Hub, GHCR,
GitLab and Harbor ask ``Bearer realm="https://auth.example/token",service="...",
scope="repository:team/app:pull,push"``: the client gets a token from the realm (with
the credentials as Basic auth) and sends it as ``Authorization: Bearer``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_PARAM = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')
MAX_HEADER = 4096  # a longer challenge is not one we can answer


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # "basic" or "bearer", lower case
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")


def parse_challenge(header: str | None) -> Challenge | None:
    """The first challenge in ``header``; None when there is none or it is malformed."""
    if not header or len(header) > MAX_HEADER:
        return None
    scheme, _, rest = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme not in ("basic", "bearer"):
        return None
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        match = _PARAM.match(rest, pos)
        if match is None or match.end() == pos:
            break
        quoted, bare = match.group(2), match.group(3)
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare or ""
        params.setdefault(match.group(1).lower(), value)
        pos = match.end()
    return Challenge(scheme=scheme, params=params)
