"""Checks on user-supplied git URLs, ref names, paths and env keys (pure, no I/O).

Every value that ends up in a command line or a path passes through here first;
a rejected value raises :class:`BadInput` saying what was wrong with it.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from cryptography.exceptions import UnsupportedAlgorithm

from app.errors import BadInput, Forbidden
from app.types import Scope

URL_SCHEMES = frozenset({"https", "http", "ssh", "git", "file"})
CREDENTIAL_SCHEMES = frozenset({"https", "http"})

_WHITESPACE_OR_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# user@host:path, the scp-like syntax git accepts for ssh
_SCP_LIKE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._~+-]*@[A-Za-z0-9_][A-Za-z0-9.-]*:(?!//).+")
_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*|\[[0-9A-Fa-f:.]+\]")
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def validate_repository(url: str) -> str:
    """Return ``url`` if it is an https/http/ssh/git/file URL or ``user@host:path``."""
    if not url:
        raise BadInput("repository URL is empty")
    if url.startswith("-"):
        raise BadInput(f"repository URL must not start with '-': {url!r}")
    if _WHITESPACE_OR_CONTROL.search(url):
        raise BadInput(f"repository URL contains whitespace or control characters: {url!r}")
    if "://" not in url:
        if _SCP_LIKE.fullmatch(url):
            return url
        raise BadInput(
            f"repository must be an https, http, ssh, git or file URL or user@host:path, "
            f"got {url!r}"
        )
    _check_url(url)
    return url


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError as exc:
        raise BadInput(f"repository URL is malformed ({exc}): {url!r}") from exc
    if parts.scheme.lower() not in URL_SCHEMES:
        raise BadInput(
            f"repository URL scheme must be one of {', '.join(sorted(URL_SCHEMES))}, "
            f"got {parts.scheme or url!r}"
        )
    if parts.scheme.lower() == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise BadInput(f"file URL must be file:///absolute/path, got {url!r}")
        return
    userinfo, _, host = parts.netloc.rpartition("@")
    if userinfo.startswith("-"):
        raise BadInput(f"repository URL user must not start with '-': {url!r}")
    host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if not _HOST.fullmatch(host):
        raise BadInput(f"repository URL has no valid host: {url!r}")
    if not parts.path or parts.path == "/":
        raise BadInput(f"repository URL has no repository path: {url!r}")


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """Split ``user:password@`` off an http(s) URL: (clean url, username, password).

    Other URLs are returned unchanged (an ssh user is not a secret).
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in CREDENTIAL_SCHEMES or "@" not in parts.netloc:
        return url, None, None
    userinfo, hostport = parts.netloc.rsplit("@", 1)
    user, sep, password = userinfo.partition(":")
    clean = urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment))
    return clean, unquote(user) or None, unquote(password) if sep else None


def validate_ref(name: str, what: str = "branch") -> str:
    """Return ``name`` if git would accept it as a ref name and it cannot pass as an option."""
    if not name:
        raise BadInput(f"{what} name is empty")
    problem = _ref_problem(name)
    if problem:
        raise BadInput(f"invalid {what} name {name!r}: {problem}")
    return name


def _ref_problem(name: str) -> str | None:
    checks = (
        (name.startswith("-"), "must not start with '-'"),
        (
            bool(_REF_FORBIDDEN.search(name)),
            "must not contain spaces, control characters or any of ~ ^ : ? * [ \\",
        ),
        (".." in name, "must not contain '..'"),
        ("@{" in name, "must not contain '@{'"),
        (name == "@", "must not be '@'"),
        (
            name.startswith("/") or name.endswith("/") or "//" in name,
            "must not start or end with '/' or contain '//'",
        ),
        (name.endswith("."), "must not end with '.'"),
        (
            any(part.startswith(".") or part.endswith(".lock") for part in name.split("/")),
            "no component may start with '.' or end with '.lock'",
        ),
    )
    return next((message for failed, message in checks if failed), None)


def validate_relative_path(path: str, what: str = "path") -> str:
    """Return ``path`` normalised, relative to a checkout ("." for "", "/" or ".")."""
    if _CONTROL.search(path):
        raise BadInput(f"{what} contains NUL or control characters: {path!r}")
    if path.strip("/") == "":
        return "."
    if path.startswith("/"):
        raise BadInput(f"{what} must be relative to the repository, got absolute {path!r}")
    if ".." in path.split("/"):
        raise BadInput(f"{what} must not contain '..' components: {path!r}")
    normalised = posixpath.normpath(path)
    if normalised.startswith("-") or path.startswith("-"):
        raise BadInput(f"{what} must not start with '-': {path!r}")
    return normalised


def validate_env_key(key: str) -> str:
    """Return ``key`` if it is a valid environment variable / build argument name."""
    if not _ENV_KEY.fullmatch(key):
        raise BadInput(f"environment variable name must match [A-Za-z_][A-Za-z0-9_]*, got {key!r}")
    return key


_KNOWN_HOST_LINE = re.compile(
    r"(@(cert-authority|revoked) )?\S+ [A-Za-z0-9@._-]+ [A-Za-z0-9+/=]+( .*)?"
)
MAX_WATCH_PATHS = 50


def validate_ssh_key(text: str) -> str:
    """Return ``text`` if it is one unencrypted private key ssh can use."""
    from cryptography.hazmat.primitives import serialization

    data = text.strip().encode() + b"\n"
    loaders = (serialization.load_ssh_private_key, serialization.load_pem_private_key)
    for load in loaders:
        try:
            load(data, password=None)
        except TypeError as exc:  # encrypted: a passphrase is needed
            raise BadInput("sshKey is protected by a passphrase; give an unencrypted key") from exc
        except (ValueError, UnsupportedAlgorithm):
            continue
        return data.decode()
    raise BadInput("sshKey is not a private key in OpenSSH or PEM format")


def validate_known_hosts(text: str) -> str:
    """Return ``text`` if every non-comment line looks like ``host keytype base64key``."""
    lines = [line.strip() for line in text.splitlines()]
    for number, line in enumerate(lines, 1):
        if not line or line.startswith("#"):
            continue
        if _CONTROL.search(line) or not _KNOWN_HOST_LINE.fullmatch(line):
            raise BadInput(f"knownHosts line {number} is not 'host keytype key': {line[:80]!r}")
    return "\n".join(line for line in lines if line) + ("\n" if text.strip() else "")


def validate_watch_paths(patterns: list[str]) -> list[str]:
    """Glob patterns relative to the repository root (``src/**``, ``*.md``)."""
    if len(patterns) > MAX_WATCH_PATHS:
        raise BadInput(f"at most {MAX_WATCH_PATHS} watchPaths, got {len(patterns)}")
    clean = []
    for pattern in patterns:
        pattern = pattern.strip()
        if not pattern or len(pattern) > 500 or _CONTROL.search(pattern):
            raise BadInput(f"watch path {pattern!r} must be 1-500 printable characters")
        clean.append(pattern.lstrip("/"))
    return clean


_COMMIT_SHA = re.compile(r"[0-9a-fA-F]{7,64}")
# Schemes a repository may name for its submodules (ext::, fd:: and friends never).
SUBMODULE_SCHEMES = frozenset({"https", "http", "ssh", "git"})


def validate_commit_sha(sha: str) -> str:
    """Return ``sha`` lowercased if it is 7-64 hex digits (an abbreviated or full commit id)."""
    if not _COMMIT_SHA.fullmatch(sha):
        raise BadInput(f"commit sha must be 7 to 64 hexadecimal digits, got {sha!r}")
    return sha.lower()


def validate_submodule_url(url: str, *, parent: str) -> str:
    """Return a ``.gitmodules`` URL if it may be fetched for a repository cloned from ``parent``.

    The URL comes from the repository, not the user: relative ones (``../lib.git``) resolve
    against the parent; absolute ones must be http(s), ssh or git (``file://`` only when the
    parent itself is a local ``file://`` repository), and never an option or a transport helper.
    """
    if url.startswith(("./", "../")):
        if _WHITESPACE_OR_CONTROL.search(url):
            raise BadInput(f"submodule URL contains whitespace or control characters: {url!r}")
        return url
    validate_repository(url)
    scheme = urlsplit(url).scheme.lower() if "://" in url else "ssh"
    allowed = SUBMODULE_SCHEMES | ({"file"} if parent.lower().startswith("file://") else set())
    if scheme not in allowed:
        raise BadInput(
            f"submodule URL scheme must be one of {', '.join(sorted(allowed))}, got {url!r}"
        )
    return url


def is_local_repository(url: str | None) -> bool:
    return bool(url) and str(url).lower().startswith("file:")


def check_local_source(
    cols: Mapping[str, Any], *, current_repository: str | None, scopes: Collection[Scope]
) -> None:
    """A ``file://`` repository reads this server's own disk (and lets its ``.gitmodules``
    name more of it): setting one, or turning on submodules of one, needs ADMIN."""
    if Scope.ADMIN in scopes or not ("repository" in cols or cols.get("submodules")):
        return
    repository = cols.get("repository") or current_repository
    if is_local_repository(repository):
        raise Forbidden(
            "a file:// repository reads this server's own disk: only an ADMIN key may set one "
            "or turn on its submodules; use an http(s), ssh or git URL"
        )
