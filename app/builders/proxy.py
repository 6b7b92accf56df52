"""The HTTP(S) proxy of image builds, from settings: build args, and what to mask.

``HTTP_PROXY``, ``HTTPS_PROXY`` and ``NO_PROXY`` (and their lower-case forms) are among
Docker's predefined build args: every ``RUN`` sees them, and Docker keeps them out of the
image config and ``docker history`` unless a Dockerfile declares them with ``ARG``. A
proxy URL may carry credentials (``http://user:password@proxy:3128``): those are masked
wherever a deployment's text is shown.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from app.settings import Settings

PROXY_ARGS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")


def proxy_build_args(
    http_proxy: str = "", https_proxy: str = "", no_proxy: str = ""
) -> dict[str, str]:
    """The build args for the proxy settings that are set, in both cases."""
    values = dict(zip(PROXY_ARGS, (http_proxy, https_proxy, no_proxy), strict=True))
    args: dict[str, str] = {}
    for name, value in values.items():
        if value:
            args[name] = args[name.lower()] = value
    return args


def settings_proxy(settings: Settings) -> dict[str, str]:
    """:func:`proxy_build_args` of ``SLIPWAY_BUILD_HTTP_PROXY`` & co."""
    return proxy_build_args(
        settings.build_http_proxy, settings.build_https_proxy, settings.build_no_proxy
    )


def proxy_secrets(proxy: dict[str, str]) -> tuple[str, ...]:
    """The credentials inside the proxy URLs (``user:password``, the password, decoded
    forms too), for the deployment's masker; a URL without credentials shows as it is."""
    found: set[str] = set()
    for value in proxy.values():
        try:
            parts = urlsplit(value if "://" in value else f"http://{value}")
        except ValueError:
            continue
        userinfo = parts.netloc.rpartition("@")[0]
        if not userinfo:
            continue
        found.add(userinfo)
        _user, _, password = userinfo.partition(":")
        if password:
            found |= {password, unquote(password)}
    return tuple(sorted(found))
