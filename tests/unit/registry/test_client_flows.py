"""HttpRegistryClient against scripted registries (httpx.MockTransport): the Bearer token
flow of Docker Hub/GHCR/GitLab, refusals, and what each answer of a delete means.

The same client runs against real distribution registries in tests/integration/registry/;
these cover the answers a local registry cannot give (a token server, scoped refusals).
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import httpx
import pytest

from app.errors import RegistryAuthError, RegistryError, RegistryNetworkError
from app.registry.client import HttpRegistryClient, repository_path
from app.types import RegistryAuth, RegistryTarget

HOST = "registry.example.com"
REALM = "https://auth.example.com/token"
PASSWORD = "s3cret-Pa55"
DIGEST = "sha256:" + "ab" * 32
V2 = {"Docker-Distribution-API-Version": "registry/2.0"}


def target(user: str | None = "writer", password: str = PASSWORD, **kw: object) -> RegistryTarget:
    auth = RegistryAuth(username=user, password=password, registry=HOST) if user else None
    return RegistryTarget(id="r1", name="r", host=HOST, auth=auth, **kw)  # type: ignore[arg-type]


class TokenRegistry:
    """A registry that wants Bearer tokens; its token server grants push to ``writer``."""

    def __init__(self, realm: str = REALM) -> None:
        self.realm = realm
        self.requests: list[httpx.Request] = []

    def challenge(self, scope: str | None = None) -> dict[str, str]:
        extra = f',scope="{scope}",error="insufficient_scope"' if scope else ""
        return {"WWW-Authenticate": f'Bearer realm="{self.realm}",service="{HOST}"{extra}', **V2}

    def user(self, request: httpx.Request) -> str | None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user if password == PASSWORD else "refused"

    def token(self, request: httpx.Request) -> httpx.Response:
        user = self.user(request)
        if user == "refused":
            return httpx.Response(401, json={"details": "incorrect username or password"})
        scope = request.url.params.get("scope", "")
        actions = "pull,push" if user == "writer" else "pull"
        granted = scope.rsplit(":", 1)[0] + ":" + actions if scope else ""
        return httpx.Response(200, json={"token": f"tok|{granted}"})

    def scopes(self, request: httpx.Request) -> str | None:
        header = request.headers.get("authorization", "")
        return header.split("|", 1)[1] if header.startswith("Bearer tok|") else None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        url = str(request.url)
        if url.startswith(self.realm):
            return self.token(request)
        granted = self.scopes(request)
        path = request.url.path
        if path == "/v2/":
            return (
                httpx.Response(200, headers=V2)
                if granted is not None
                else httpx.Response(401, headers=self.challenge())
            )
        repo = path.split("/v2/", 1)[1].split("/blobs/")[0]
        if path.endswith("/blobs/uploads/") and request.method == "POST":
            need = f"repository:{repo}:pull,push"
            if granted != need:
                return httpx.Response(401, headers=self.challenge(need), json=_denied())
            return httpx.Response(
                202, headers={"Location": f"/v2/{repo}/blobs/uploads/u1?_state=x"}
            )
        if "/blobs/uploads/u1" in path and request.method == "DELETE":
            return httpx.Response(204)
        return httpx.Response(404)


def _denied() -> dict[str, object]:
    return {"errors": [{"code": "UNAUTHORIZED", "message": f"no {PASSWORD}", "detail": None}]}


def client(handler: Callable[[httpx.Request], httpx.Response]) -> HttpRegistryClient:
    return HttpRegistryClient(timeout=2, transport=httpx.MockTransport(handler))


def test_bearer_flow_grants_push_and_cancels_the_upload() -> None:
    registry = TokenRegistry()
    result = client(registry).check(target(), repository=f"{HOST}/team/slipway-check")
    assert result.ok, result.message
    assert result.message == (
        f"{HOST} is a registry; credentials of user 'writer' accepted; "
        "push to team/slipway-check allowed"
    )
    token_calls = [r for r in registry.requests if str(r.url).startswith(REALM)]
    scopes = [r.url.params.get("scope") for r in token_calls]
    assert scopes == [None, "repository:team/slipway-check:pull,push"]
    assert all(r.url.params.get("service") == HOST for r in token_calls)
    cancelled = [r for r in registry.requests if r.method == "DELETE"]
    assert [r.url.path for r in cancelled] == ["/v2/team/slipway-check/blobs/uploads/u1"]
    assert all(PASSWORD not in str(r.url) for r in registry.requests)


def test_a_user_who_may_only_pull_is_told_so() -> None:
    result = client(TokenRegistry()).check(target("reader"), repository="team/app")
    assert not result.ok
    assert (
        result.message
        == f"user 'reader' may pull but not push to team/app at {HOST} (UNAUTHORIZED)"
    )
    assert PASSWORD not in result.message


def test_wrong_password_at_the_token_server() -> None:
    result = client(TokenRegistry()).check(target(password="wrong"), repository="team/app")
    assert not result.ok
    assert result.message == f"credentials refused by {HOST} (token server auth.example.com)"
    assert "wrong" not in result.message


def test_no_credentials_on_a_token_registry() -> None:
    result = client(TokenRegistry()).check(target(None), repository="team/app")
    assert (result.ok, result.message) == (
        False,
        f"{HOST} requires credentials: set username and password",
    )


def test_credentials_are_never_sent_to_a_plain_http_token_server() -> None:
    registry = TokenRegistry(realm="http://auth.example.com/token")
    result = client(registry).check(target(), repository="team/app")
    assert not result.ok
    assert "refusing to send the credentials unencrypted" in result.message
    assert not any(r.url.host == "auth.example.com" for r in registry.requests)


def test_an_upload_location_on_another_host_gets_no_credentials() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/v2/":
            return httpx.Response(200, headers=V2)
        return httpx.Response(202, headers={"Location": "https://elsewhere.example/upload/1"})

    result = client(handler).check(target(), repository="app")
    assert result.ok
    assert [r.url.host for r in seen] == [HOST, HOST]  # no DELETE sent to elsewhere.example


@pytest.mark.parametrize(
    ("status", "headers", "words"),
    [
        (
            200,
            {},
            "not a registry (no Docker-Distribution-API-Version header at "
            f"https://{HOST}/v2/, HTTP 200)",
        ),
        (401, {"WWW-Authenticate": 'Basic realm="x"'}, "not a registry"),  # basic auth, no header
        (404, {}, "HTTP 404"),
        (503, V2, f"{HOST} answered HTTP 503 to GET /v2/"),
    ],
)
def test_answers_to_the_first_call(status: int, headers: dict[str, str], words: str) -> None:
    result = client(lambda _: httpx.Response(status, headers=headers)).check(
        target(), repository="app"
    )
    assert not result.ok and words in result.message


def test_a_registry_that_refuses_pushes_outright() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/":
            return httpx.Response(200, headers=V2)
        return httpx.Response(405, headers=V2, json={"errors": [{"code": "UNSUPPORTED"}]})

    result = client(handler).check(target(), repository="app")
    assert result.message == f"{HOST} does not take pushes to app (HTTP 405 (UNSUPPORTED))"


def _delete(status: int, user: str | None = "writer") -> bool:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "DELETE"
        assert request.url.path == f"/v2/team/app/manifests/{DIGEST}"
        return httpx.Response(status, headers=V2)

    return client(handler).delete(target(user), repository=f"{HOST}/team/app", digest=DIGEST)


def test_delete_answers() -> None:
    assert _delete(202) is True
    assert _delete(404) is False
    with pytest.raises(RegistryError, match="deletes disabled .*storage.delete.enabled"):
        _delete(405)
    with pytest.raises(RegistryAuthError, match="requires credentials"):
        _delete(401, user=None)
    with pytest.raises(RegistryAuthError, match="user 'writer' may not delete"):
        _delete(403)
    with pytest.raises(RegistryNetworkError, match="HTTP 503"):
        _delete(503)


def test_delete_refuses_what_is_not_a_digest_or_a_repository() -> None:
    never = client(lambda _: pytest.fail("no request may be sent"))  # type: ignore[arg-type,return-value]
    for digest in ("latest", "sha256:../../v2", "sha256:" + "a" * 10):
        with pytest.raises(RegistryError, match="not a manifest digest"):
            never.delete(target(), repository="app", digest=digest)
    for repo in ("../app", "App", "team//app", "app/", "a?b"):
        with pytest.raises(RegistryError, match="not a repository name"):
            never.delete(target(), repository=repo, digest=DIGEST)


def test_repository_path_strips_the_host_only() -> None:
    t = target()
    assert repository_path(t, f"{HOST}/team/app") == "team/app"
    assert repository_path(t, "team/app") == "team/app"
    with pytest.raises(RegistryError):
        repository_path(t, "other.example.com:5000/team/app")  # another registry's name


def _steps(result: object) -> tuple[object, ...]:
    return tuple(
        getattr(result, f)
        for f in ("reachable", "is_registry", "credentials_accepted", "push_allowed")
    )


def _open(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/v2/":
        return httpx.Response(200, headers=V2)
    return httpx.Response(202, headers={"Location": "/v2/app/blobs/uploads/u1"})


def _refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


@pytest.mark.parametrize(
    ("handler", "user", "password", "steps"),
    [
        (TokenRegistry(), "writer", PASSWORD, (True, True, True, True)),
        (TokenRegistry(), "reader", PASSWORD, (True, True, True, False)),
        (TokenRegistry(), "writer", "wrong", (True, True, False, None)),
        (TokenRegistry(), None, PASSWORD, (True, True, False, None)),
        (_open, None, PASSWORD, (True, True, None, True)),  # no login asked for
        (lambda _: httpx.Response(200), "writer", PASSWORD, (True, False, None, None)),
        (_refused, "writer", PASSWORD, (False, None, None, None)),
    ],
)
def test_the_check_says_how_far_it_got(
    handler: Callable[[httpx.Request], httpx.Response],
    user: str | None,
    password: str,
    steps: tuple[bool | None, ...],
) -> None:
    result = client(handler).check(target(user, password), repository="team/app")
    assert _steps(result) == steps, result.message
    assert result.ok is (steps[3] is True)
