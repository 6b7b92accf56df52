"""Registry addresses: the URL a person gives for a registry, checked and normalised.

Accepted: ``host[:port]`` or ``http(s)://host[:port]`` with at most a trailing ``/``.
Refused: credentials in the URL (they go in username/password, encrypted), a path, query
or fragment (the namespace goes in ``imagePrefix``), other schemes, and a host Docker would
not read as a registry: ``name/app`` without a dot, a port or ``localhost`` means the
Docker Hub namespace ``name``, so such an image would be pushed somewhere else entirely.

``host`` is what image references start with (lower case; Docker Hub is ``docker.io``).
Without a scheme, Docker talks https to a registry, except on loopback (127.0.0.0/8 and
``localhost``), which it treats as an insecure registry over plain http: ``secure`` says
the same. ``api_base`` is where the HTTP API answers (Docker Hub's is not ``docker.io``).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from app.errors import BadInput

URL_MAX = 500  # registries.url
HOST_MAX = 255  # registries.host
REPOSITORY_MAX = 255  # Docker's limit on a whole repository name, host included
APP_NAME_ROOM = 64  # "/" + an appName (at most 63 characters)
DOCKER_HUB = "docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}
_HUB_API = "https://registry-1.docker.io"

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_PORT = re.compile(r"^[0-9]{1,5}$")
# One path component of a repository name (the distribution spec's grammar).
COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")


@dataclass(frozen=True, slots=True)
class RegistryAddress:
    host: str  # host[:port] as in image references
    scheme: str | None  # "http", "https", or None: as Docker decides

    @property
    def secure(self) -> bool:
        """https, unless the URL says http or names a loopback host without a scheme."""
        if self.scheme is not None:
            return self.scheme == "https"
        return not is_loopback(self.host)


def parse_registry_url(value: str) -> RegistryAddress:
    """``value`` checked and normalised; BadInput saying what is wrong otherwise."""
    url = value.strip()
    if not url:
        raise BadInput("url must not be empty: give host[:port] or https://host[:port]")
    if len(url) > URL_MAX:
        raise BadInput(f"url must be at most {URL_MAX} characters, got {len(url)}")
    if _UNSAFE.search(url):
        raise BadInput("url must not contain spaces, control characters or backslashes")
    scheme, rest = _split_scheme(url)
    if "@" in rest:
        raise BadInput("url must not hold credentials: set username and password instead")
    if "?" in rest or "#" in rest:
        raise BadInput("url must not have a query or fragment: give host[:port]")
    if rest.endswith("/"):
        rest = rest[:-1]
    if "/" in rest:
        raise BadInput(
            "url must be host[:port] without a path; a namespace under the host goes in imagePrefix"
        )
    return RegistryAddress(host=_host_port(rest), scheme=scheme)


def _split_scheme(url: str) -> tuple[str | None, str]:
    if "://" not in url:
        return None, url
    scheme, rest = url.split("://", 1)
    scheme = scheme.lower()
    if scheme not in ("http", "https"):
        raise BadInput(f"url scheme must be http or https, got {scheme[:20]!r}")
    return scheme, rest


def _host_port(text: str) -> str:
    if text.startswith("["):
        raise BadInput("url: IPv6 literals are not usable in image references; use a host name")
    host, _, port = text.partition(":")
    host = host.lower()
    if not host or len(host) > 253 or not _HOSTNAME.match(host):
        raise BadInput(f"url: {host[:100]!r} is not a host name or IPv4 address")
    if port or text.endswith(":"):
        if not _PORT.match(port) or not 1 <= int(port) <= 65535:
            raise BadInput(f"url: port must be within 1-65535, got {port[:10]!r}")
        port = str(int(port))
    if host in _HUB_ALIASES and not port:
        return DOCKER_HUB
    if "." not in host and not port and host != "localhost":
        raise BadInput(
            f"url: {host!r} has no dot and no port, so Docker would read {host}/app as the "
            f"Docker Hub namespace {host!r}; give its full name or host:port"
        )
    hostport = f"{host}:{port}" if port else host
    if len(hostport) > HOST_MAX:
        raise BadInput(f"url: the host must be at most {HOST_MAX} characters")
    return hostport


def is_loopback(host: str) -> bool:
    """``host[:port]`` names this machine: 127.0.0.0/8 or localhost (no DNS lookup)."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_image_prefix(value: str, *, host: str) -> str | None:
    """The namespace under ``host`` (``team/images``), or None for an empty string."""
    prefix = value.strip()
    if not prefix:
        return None
    room = REPOSITORY_MAX - len(host) - 1 - APP_NAME_ROOM
    if len(prefix) > room:
        raise BadInput(
            f"imagePrefix must be at most {room} characters with this host, got {len(prefix)}"
        )
    for part in prefix.split("/"):
        if not COMPONENT.match(part):
            raise BadInput(
                f"imagePrefix {prefix[:100]!r}: each '/'-separated part must be lower-case "
                "letters and digits, joined by '.', '_', '__' or '-' (no empty parts, no '..')"
            )
    return prefix


def api_base(host: str, *, secure: bool) -> str:
    """Where the registry's HTTP API answers: ``https://host`` (Docker Hub: registry-1)."""
    if host == DOCKER_HUB:
        return _HUB_API
    return f"{'https' if secure else 'http'}://{host}"


def stored_secure(url: str) -> bool:
    """``secure`` of a stored URL (checked when it was written; tolerant of odd old rows)."""
    try:
        return parse_registry_url(url).secure
    except BadInput:
        return not url.lower().startswith("http://")
