"""Build settings as the builders use them: proxy args and their masking, limits, the
target stage, and the ledger of images a classic build created."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from docker.errors import APIError, NotFound

from app.builders.cache import NO_SOURCES, BuildSteps, CacheLedger, clear_cached_images
from app.builders.dockerfile import checked_target
from app.builders.limits import allow_engine_limits, classic_limits, describe_limits
from app.builders.proxy import proxy_build_args, proxy_secrets
from app.errors import BuildError
from app.masking import Masker
from app.types import LogStream


def test_proxy_args_are_the_standard_names_in_both_cases() -> None:
    args = proxy_build_args("http://proxy:3128", "", "localhost,.internal")
    assert args == {
        "HTTP_PROXY": "http://proxy:3128",
        "http_proxy": "http://proxy:3128",
        "NO_PROXY": "localhost,.internal",
        "no_proxy": "localhost,.internal",
    }
    assert proxy_build_args() == {}


def test_proxy_credentials_are_masked_but_not_the_host() -> None:
    proxy = proxy_build_args("http://bob:s3cr%40t-pw@proxy.corp:3128", "https://tok@p2:443")
    secrets = proxy_secrets(proxy)
    mask = Masker(secrets, min_length=3)
    line = "Step 2/3 : via http://bob:s3cr%40t-pw@proxy.corp:3128 and s3cr@t-pw and https://tok@p2"
    shown = mask(line)
    assert "s3cr" not in shown and "tok@" not in shown
    assert "proxy.corp:3128" in shown and "p2" in shown
    assert proxy_secrets(proxy_build_args("http://proxy:3128")) == ()


def test_classic_limits_are_exact_engine_parameters() -> None:
    assert classic_limits(None, None) == {}
    assert classic_limits(64 * 1024 * 1024, 0.5) == {
        "memory": 64 * 1024 * 1024,
        "memswap": 64 * 1024 * 1024,  # no swap on top
        "cpuperiod": 100_000,
        "cpuquota": 50_000,
    }
    assert classic_limits(None, 0.001)["cpuquota"] == 1000  # the engine's smallest quota
    assert describe_limits(512 * 1024 * 1024, 1.5) == "memory 512 MiB, 1.5 CPUs"
    assert describe_limits(None, None) is None


def test_docker_py_accepts_the_cpu_quota_after_allowing_it() -> None:
    import docker.constants

    allow_engine_limits()
    allow_engine_limits()  # idempotent
    keys = docker.constants.CONTAINER_LIMITS_KEYS
    assert keys.count("cpuquota") == 1 and "cpuperiod" in keys


@pytest.mark.parametrize("name", ["build", "Web_2", "stage.1-a"])
def test_valid_target_stages(name: str) -> None:
    assert checked_target(name) == name


@pytest.mark.parametrize("name", ["-x", "1st", "a b", "a;b", "x" * 129])
def test_invalid_target_stages_fail_the_build(name: str) -> None:
    with pytest.raises(BuildError, match="not a valid stage name"):
        checked_target(name)


CLASSIC_OUTPUT = [
    "Step 1/5 : FROM busybox:1.36",
    " ---> bf71608b288a",
    "Step 2/5 : RUN echo a > /a",
    " ---> Using cache",
    " ---> 111111111111",
    "Step 3/5 : RUN echo b > /b",
    " ---> Running in 9f9f9f9f9f9f",
    "Removing intermediate container 9f9f9f9f9f9f",
    " ---> 222222222222",
    "Step 4/5 : ENV X=1",
    " ---> Running in 8e8e8e8e8e8e",
    "Removing intermediate container 8e8e8e8e8e8e",
    " ---> 333333333333",
    "Step 5/5 : COPY www /www",
    " ---> 444444444444",
    "Successfully built 444444444444",
]


def test_build_steps_notes_every_step_image_and_those_the_build_created() -> None:
    lines: list[str] = []

    def log(message: str, *, stream: LogStream = LogStream.STDOUT) -> None:
        lines.append(message)

    seen = BuildSteps(log)
    for line in CLASSIC_OUTPUT:
        seen(line)
    assert lines == CLASSIC_OUTPUT  # passed on unchanged
    assert seen.steps == ["111111111111", "222222222222", "333333333333", "444444444444"]
    # COPY commits without "Running in" (no container): still created by this build
    assert seen.created == ["222222222222", "333333333333", "444444444444"]
    assert seen.reused == 1


def _steps(steps: list[str], created: list[str]) -> BuildSteps:
    seen = BuildSteps(lambda *_a, **_k: None)
    seen.steps, seen.created = steps, created
    return seen


def test_ledger_sources_are_the_last_builds_and_created_ids_accumulate(tmp_path: Path) -> None:
    ledger = CacheLedger(tmp_path / "app" / "build-cache.json")
    assert ledger.ids() == [] and ledger.sources() == [NO_SOURCES]  # never the whole engine
    ledger.record(_steps(["a1", "b2"], ["a1", "b2"]), ok=True)
    ledger.record(_steps(["a1", "b2", "c3"], ["c3"]), ok=True)
    assert ledger.ids() == ["a1", "b2", "c3"]
    assert ledger.sources() == ["c3", "b2", "a1"]
    ledger.record(_steps(["a1", "f4"], ["f4"]), ok=False)  # a failed build's
    assert ledger.sources() == ["c3", "b2", "a1", "f4"], "complete builds' last steps first"
    for n in range(4):
        ledger.record(_steps([f"n{n}"], [f"n{n}"]), ok=True)
    assert ledger.sources() == ["n3", "n2", "n1"], "only the last three builds"
    assert ledger.path.stat().st_mode & 0o777 == 0o600
    ledger.forget_sources()
    assert ledger.sources() == [NO_SOURCES] and len(ledger.ids()) == 8
    ledger.write([])
    assert not ledger.path.exists()
    ledger.path.write_text("not json")
    assert ledger.ids() == [] and ledger.sources() == [NO_SOURCES]


class FakeApi:
    """Images by id: tags, children (a parent cannot go first), in-use flags."""

    def __init__(self) -> None:
        self.images: dict[str, dict[str, Any]] = {}
        self.removed: list[str] = []

    def add(self, image_id: str, *, parent: str | None = None, tags: tuple[str, ...] = ()) -> None:
        self.images[image_id] = {"parent": parent, "tags": list(tags), "used": False}

    def inspect_image(self, image_id: str) -> dict[str, Any]:
        if image_id not in self.images:
            raise NotFound("no such image")
        return {"Id": image_id, "RepoTags": self.images[image_id]["tags"]}

    def remove_image(self, image_id: str, noprune: bool = False) -> None:
        assert noprune, "never prune parents the ledger does not hold"
        if image_id not in self.images:
            raise NotFound("no such image")
        image = self.images[image_id]
        if image["used"] or any(i["parent"] == image_id for i in self.images.values()):
            raise APIError("conflict: image has dependent child images")
        del self.images[image_id]
        self.removed.append(image_id)


def test_clear_removes_only_what_nothing_else_needs(tmp_path: Path) -> None:
    api = FakeApi()
    api.add("base", tags=("busybox:1.36",))
    # the application's chain: a1 <- a2 <- a3 (a3 tagged: a deployment's image)
    api.add("a1", parent="base")
    api.add("a2", parent="a1")
    api.add("a3", parent="a2", tags=("slipway/a:1",))
    # a failed build's leftovers: f1 <- f2, nothing tagged
    api.add("f1", parent="a1")
    api.add("f2", parent="f1")
    # another application's build reused a1 and made its own b1 on top
    api.add("b1", parent="a1", tags=("slipway/b:1",))
    api.add("used", parent="base")
    api.images["used"]["used"] = True
    ledger = CacheLedger(tmp_path / "ledger")
    ledger.record(
        _steps(["a1", "a2", "a3"], ["a1", "a2", "a3", "f1", "f2", "used", "gone"]), ok=True
    )

    cleared = clear_cached_images(api, ledger)

    assert sorted(api.removed) == ["f1", "f2"]  # children first, then their parents
    assert api.removed.index("f2") < api.removed.index("f1")
    assert "b1" in api.images and "a1" in api.images  # another app's, and its parent
    assert cleared.removed == 2
    assert ledger.ids() == ["a1", "a2", "a3", "used"]  # kept, to try again later
    assert cleared.kept == 4
    assert ledger.sources() == [NO_SOURCES], "the next build does not use what is kept"
