"""DockerPusher and PushProgress against a scripted engine stream: which lines are logged
(per layer, throttled), where the digest comes from, and how each engine error is sorted.

The same pusher runs against the real engine and registries in
tests/integration/registry/test_push_real.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from app.errors import Cancelled, RegistryAuthError, RegistryError, RegistryNetworkError
from app.masking import MASK, Masker
from app.registry.push import DockerPusher, PushProgress, push_error
from app.types import CancelToken, LogStream, RegistryAuth, RegistryTarget
from tests.support.recorder import Recorder

HOST = "registry.example.com"
PASSWORD = "pa55-w0rd-never-shown"
DIGEST = "sha256:" + "c0" * 32
REPO = f"{HOST}/team/web"


def target(user: str | None = "deployer") -> RegistryTarget:
    auth = RegistryAuth(username=user, password=PASSWORD, registry=HOST) if user else None
    return RegistryTarget(id="r1", name="main", host=HOST, image_prefix="team", auth=auth)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def pushing(layer: str, current: int, total: int) -> dict[str, Any]:
    return {
        "status": "Pushing",
        "id": layer,
        "progressDetail": {"current": current, "total": total},
        "progress": "[=>   ]",
    }


def test_a_pushing_layer_is_logged_on_state_change_and_then_at_most_every_interval() -> None:
    log, clock = Recorder(), Clock()
    progress = PushProgress(log, interval=2.0, clock=clock)
    progress.feed({"status": "The push refers to repository [registry.example.com/team/web]"})
    progress.feed({"status": "Preparing", "id": "aaa", "progressDetail": {}})
    progress.feed({"status": "Preparing", "id": "bbb", "progressDetail": {}})
    progress.feed({"status": "Waiting", "id": "bbb", "progressDetail": {}})
    for step in range(100):  # 100 events over 5 s: one line when it starts, then every 2 s
        clock.now = step * 0.05
        progress.feed(pushing("aaa", (step + 1) * 1_000_000, 100_000_000))
    clock.now = 5.0
    progress.feed({"status": "Pushed", "id": "aaa", "progressDetail": {}})
    progress.feed({"status": "Layer already exists", "id": "bbb", "progressDetail": {}})
    progress.feed({"status": "1: digest: " + DIGEST + " size: 740"})
    assert [message for _, message in log.lines] == [
        "The push refers to repository [registry.example.com/team/web]",
        "aaa: Preparing",
        "bbb: Preparing",
        "bbb: Waiting",
        "aaa: Pushing 1% (1.0 MB of 100.0 MB)",
        "aaa: Pushing 41% (41.0 MB of 100.0 MB)",  # at 2.0 s
        "aaa: Pushing 81% (81.0 MB of 100.0 MB)",  # at 4.0 s
        "aaa: Pushed",
        "bbb: Layer already exists",
    ]
    assert progress.digest == DIGEST
    assert progress.summary() == "2 layers: 1 pushed, 1 already in the registry"


def test_each_layer_has_its_own_throttle() -> None:
    log, clock = Recorder(), Clock()
    progress = PushProgress(log, interval=2.0, clock=clock)
    progress.feed(pushing("aaa", 1, 10))
    progress.feed(pushing("bbb", 1, 10))
    clock.now = 1.0
    progress.feed(pushing("aaa", 5, 10))  # both inside their interval
    progress.feed(pushing("bbb", 5, 10))
    clock.now = 2.5
    progress.feed(pushing("bbb", 9, 10))
    assert [m for _, m in log.lines] == [
        "aaa: Pushing 10% (0.0 MB of 0.0 MB)",
        "bbb: Pushing 10% (0.0 MB of 0.0 MB)",
        "bbb: Pushing 90% (0.0 MB of 0.0 MB)",
    ]


def test_repeated_states_are_one_line_and_a_retry_countdown_one_per_attempt() -> None:
    log, clock = Recorder(), Clock()
    progress = PushProgress(log, interval=2.0, clock=clock)
    for left in (5, 4, 3, 2, 1, 10, 9, 8):  # the engine's countdowns: 5 s, then 10 s
        clock.now += 1
        progress.feed({"status": f"Retrying in {left} second{'s' if left > 1 else ''}", "id": "a"})
        progress.feed({"status": "Waiting", "id": "bbb"})
    progress.feed({"status": "Pushing", "id": "a", "progressDetail": {"current": 1, "total": 2}})
    progress.feed({"status": "Retrying in 5 seconds", "id": "a"})
    assert [m for _, m in log.lines] == [
        "a: Retrying in 5 seconds",
        "bbb: Waiting",
        "a: Retrying in 10 seconds",
        "a: Pushing 50% (0.0 MB of 0.0 MB)",
        "a: Retrying in 5 seconds",
    ]


def test_mounted_layers_count_as_already_in_the_registry_and_aux_gives_the_digest() -> None:
    progress = PushProgress(Recorder())
    progress.feed({"status": "Mounted from team/other", "id": "aaa"})
    progress.feed({"progressDetail": {}, "aux": {"Tag": "1", "Digest": DIGEST, "Size": 740}})
    assert progress.digest == DIGEST
    assert progress.summary() == "1 layers: 0 pushed, 1 already in the registry"


def test_an_error_event_is_raised_with_its_message() -> None:
    progress = PushProgress(Recorder())
    with pytest.raises(Exception, match="unauthorized: authentication required"):
        progress.feed(
            {
                "errorDetail": {"message": "unauthorized: authentication required"},
                "error": "unauthorized: authentication required",
            }
        )


@pytest.mark.parametrize(
    ("reason", "kind", "words"),
    [
        ("unauthorized: authentication required", RegistryAuthError, "refused the credentials"),
        ("denied: requested access to the resource is denied", RegistryAuthError, "refused"),
        ("received unexpected HTTP status: 403 Forbidden", RegistryAuthError, "refused"),
        (
            'Get "http://r:5000/v2/": dial tcp 127.0.0.1:5000: connect: connection refused',
            RegistryNetworkError,
            "cannot reach registry 'main' (registry.example.com)",
        ),
        (
            "read tcp 1.2.3.4:5->6.7.8.9:443: read: connection reset by peer",
            RegistryNetworkError,
            "",
        ),
        ("net/http: TLS handshake timeout", RegistryNetworkError, ""),
        ("dial tcp: lookup r on 1.1.1.1:53: i/o timeout", RegistryNetworkError, ""),
        ("received unexpected HTTP status: 502 Bad Gateway", RegistryNetworkError, ""),
        ("received unexpected HTTP status: 503 Service Unavailable", RegistryNetworkError, ""),
        ("toomanyrequests: rate limit exceeded", RegistryNetworkError, ""),
        ("blob upload invalid: digest mismatch", RegistryError, "failed"),
        (
            'Get "https://r/v2/": http: server gave HTTP response to HTTPS client',
            RegistryError,
            "insecure-registries",
        ),
    ],
)
def test_engine_errors_are_sorted(reason: str, kind: type[RegistryError], words: str) -> None:
    error = push_error(reason, target=target(), ref=f"{REPO}:1", mask=Masker([PASSWORD]))
    assert type(error) is kind
    assert words in str(error)
    assert "registry.example.com" in str(error)


def test_refused_without_credentials_says_to_set_them() -> None:
    error = push_error(
        "no basic auth credentials", target=target(None), ref=f"{REPO}:1", mask=Masker([])
    )
    assert isinstance(error, RegistryAuthError)
    assert str(error) == (
        "registry 'main' (registry.example.com) requires credentials to push "
        "registry.example.com/team/web:1 (set the registry's username and password): "
        "no basic auth credentials"
    )


def test_a_password_the_engine_echoes_is_masked() -> None:
    error = push_error(
        f"unauthorized: bad password {PASSWORD}", target=target(), ref="x", mask=Masker([PASSWORD])
    )
    assert PASSWORD not in str(error) and MASK in str(error)
    assert "user 'deployer'" in str(error)


class FakeApi:
    """The parts of docker's APIClient the pusher uses, with a scripted push stream."""

    def __init__(self, events: list[Mapping[str, Any]], *, block: CancelToken | None = None):
        self.events = events
        self.block = block
        self.hooks: dict[str, list[Any]] = {"response": []}
        self.tags: list[tuple[str, str, str]] = []
        self.pushes: list[dict[str, Any]] = []

    def tag(self, image: str, repository: str, tag: str, force: bool = False) -> bool:
        self.tags.append((image, repository, tag))
        return True

    def push(self, repository: str, **kwargs: Any) -> Iterator[Mapping[str, Any]]:
        self.pushes.append({"repository": repository, **kwargs})
        return self._events()

    def _events(self) -> Iterator[Mapping[str, Any]]:
        yield from self.events
        if self.block is not None:
            self.block.cancel("cancelled by a test")
            yield {"status": "Pushing", "id": "aaa", "progressDetail": {}}


GOOD = [
    {"status": "The push refers to repository [registry.example.com/team/web]"},
    {"status": "Preparing", "id": "aaa", "progressDetail": {}},
    {"status": "Pushed", "id": "aaa", "progressDetail": {}},
    {"status": "dep1: digest: " + DIGEST + " size: 528"},
    {"progressDetail": {}, "aux": {"Tag": "dep1", "Digest": DIGEST, "Size": 528}},
]


def test_push_tags_pushes_with_auth_config_and_returns_the_digest_ref() -> None:
    api, log = FakeApi(GOOD), Recorder()
    pushed = DockerPusher(api).push(
        "slipway/web:dep1",
        target=target(),
        repository=REPO,
        tag="dep1",
        log=log,
        cancel=CancelToken(),
    )
    assert pushed.ref == f"{REPO}@{DIGEST}"
    assert api.tags == [("slipway/web:dep1", REPO, "dep1")]
    assert api.pushes == [
        {
            "repository": REPO,
            "tag": "dep1",
            "stream": True,
            "decode": True,
            "auth_config": {"username": "deployer", "password": PASSWORD, "serveraddress": HOST},
        }
    ]
    assert api.hooks == {"response": []}  # the catcher went on a per-call view only
    assert log.lines[-1] == (
        LogStream.SYSTEM,
        f"Pushed {REPO}:dep1 ({DIGEST}); 1 layers: 1 pushed, 0 already in the registry",
    )
    assert PASSWORD not in log.text


def test_no_credentials_is_an_empty_auth_config_never_docker_login_state() -> None:
    api = FakeApi(GOOD)
    DockerPusher(api).push(
        "i",
        target=target(None),
        repository=REPO,
        tag="dep1",
        log=Recorder(),
        cancel=CancelToken(),
    )
    assert api.pushes[0]["auth_config"] == {}  # None would make the SDK read ~/.docker


def test_a_stream_without_a_digest_is_an_error() -> None:
    with pytest.raises(RegistryError, match="reported no digest"):
        DockerPusher(FakeApi(GOOD[:3])).push(
            "i",
            target=target(),
            repository=REPO,
            tag="dep1",
            log=Recorder(),
            cancel=CancelToken(),
        )


def test_a_repository_of_another_host_is_refused_before_anything_is_sent() -> None:
    api = FakeApi(GOOD)
    with pytest.raises(RegistryError, match="is not a repository of registry"):
        DockerPusher(api).push(
            "i",
            target=target(),
            repository="evil.example.com/web",
            tag="1",
            log=Recorder(),
            cancel=CancelToken(),
        )
    assert api.tags == [] and api.pushes == []


def test_refused_credentials_in_the_stream_raise_an_auth_error() -> None:
    events = [
        *GOOD[:2],
        {"errorDetail": {"message": "unauthorized: authentication required"}, "error": "x"},
    ]
    with pytest.raises(RegistryAuthError) as caught:
        DockerPusher(FakeApi(events)).push(
            "i", target=target(), repository=REPO, tag="1", log=Recorder(), cancel=CancelToken()
        )
    assert str(caught.value) == (
        "registry 'main' (registry.example.com) refused the credentials of user 'deployer' "
        "pushing registry.example.com/team/web:1: unauthorized: authentication required"
    )


def test_a_cancel_during_the_stream_raises_cancelled() -> None:
    cancel = CancelToken()
    api = FakeApi(GOOD[:2], block=cancel)
    with pytest.raises(Cancelled, match="cancelled by a test"):
        DockerPusher(api).push(
            "i", target=target(), repository=REPO, tag="1", log=Recorder(), cancel=cancel
        )
