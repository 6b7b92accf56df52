"""Where a repository URL points, and whether Slipway may go there.

With ``SLIPWAY_BLOCK_PRIVATE_SOURCES`` on, a fetch first resolves the repository's host and
refuses it when any address it resolves to is not a public one (loopback, private,
link-local such as the 169.254.169.254 metadata service, unique-local, unspecified,
multicast, reserved, shared), so a repository URL cannot reach the services beside
Slipway. The refusal never says which address or port answered, so it cannot be used to
map them. For http(s) the address checked is then pinned for git (``http.curloptResolve``)
and redirects are not followed, so a second lookup or a redirect cannot lead elsewhere.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.errors import SourceError

_SCP_LIKE = re.compile(r"(?:[^@/]+@)?(\[[^\]]+\]|[^:/]+):(?!//)")
DEFAULT_PORTS = {"https": 443, "http": 80, "ssh": 22, "git": 9418}
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Endpoint:
    """The host and port a git URL connects to (None for a local ``file://`` path)."""

    scheme: str
    host: str
    port: int


def endpoint(url: str) -> Endpoint | None:
    """The host a repository (or absolute submodule) URL connects to; None for file://."""
    if "://" not in url:
        match = _SCP_LIKE.match(url)
        return Endpoint("ssh", match.group(1).strip("[]"), 22) if match else None
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file" or not parts.hostname:
        return None
    return Endpoint(scheme, parts.hostname, parts.port or DEFAULT_PORTS.get(scheme, 0))


def is_public(address: Address) -> bool:
    """True for an address on the public internet (and nothing else)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not (
        address.is_multicast
        or address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_reserved
        or address.is_unspecified
    )


def refused(host: str, what: str = "repository") -> SourceError:
    return SourceError(
        f"the {what} host {host!r} is not allowed: it is not a public internet address "
        "(loopback, private, link-local and metadata addresses are refused because "
        "SLIPWAY_BLOCK_PRIVATE_SOURCES is on)"
    )


def resolve_public(target: Endpoint, what: str = "repository") -> list[str]:
    """Every address ``target.host`` resolves to, if all are public; else SourceError.

    The message is the same whichever address was found, and says nothing of ports."""
    try:
        infos = socket.getaddrinfo(target.host, target.port or None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise SourceError(f"the {what} host {target.host!r} could not be resolved") from exc
    addresses = sorted({str(info[4][0]).split("%", 1)[0] for info in infos})
    if not addresses or not all(is_public(ipaddress.ip_address(a)) for a in addresses):
        raise refused(target.host, what)
    return addresses


def pin_config(target: Endpoint, addresses: list[str]) -> list[tuple[str, str]]:
    """git config that makes its http(s) requests go to ``addresses`` and no further."""
    config = [("http.followRedirects", "false")]
    if target.scheme in ("http", "https"):
        shown = ",".join(f"[{a}]" if ":" in a else a for a in addresses)
        config.append(("http.curloptResolve", f"{target.host}:{target.port}:{shown}"))
    return config


def relative_escapes(url: str, *, parent: str) -> bool:
    """True when a relative submodule URL (``../x``) climbs above ``parent``'s path, where
    git would resolve it into another host."""
    climbs = 0
    rest = url
    while rest.startswith(("./", "../")):
        climbs += rest.startswith("../")
        rest = rest.split("/", 1)[1]
    if "://" in parent:
        path = urlsplit(parent).path
    else:
        path = parent.split(":", 1)[1] if ":" in parent else parent
    depth = len([p for p in posixpath.normpath("/" + path).split("/") if p])
    return climbs > depth
