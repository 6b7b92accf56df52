"""The exact commands of the CLI builders, the missing-CLI error and the process runner."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from app.builders.unavailable import (
    HerokuBuildpacksBuilder,
    NixpacksBuilder,
    PaketoBuildpacksBuilder,
    RailpackBuilder,
    StaticBuilder,
    run_checked,
)
from app.errors import BuildError, Cancelled
from app.types import BuildSpec, CancelToken, LogStream


class Lines(list[str]):
    """A LogFn that keeps the messages."""

    def __call__(self, message: str, *, stream: LogStream = LogStream.STDOUT) -> None:
        self.append(message)


class FakeApi:
    def inspect_image(self, ref: str) -> dict[str, str]:
        return {"Id": f"sha256:{ref}"}


@pytest.fixture
def spec(tmp_path: Path) -> BuildSpec:
    (tmp_path / "web").mkdir()
    return BuildSpec(
        source_dir=tmp_path, tag="slipway/app:7", context_path="web",
        build_args={"NODE_ENV": "production", "X": "-a=b c"},
    )  # fmt: skip


def test_nixpacks_command(spec: BuildSpec) -> None:
    web = str((spec.source_dir / "web").resolve())
    assert NixpacksBuilder(docker_client=FakeApi()).command(spec) == [
        "nixpacks", "build", web, "--name", "slipway/app:7",
        "--env", "NODE_ENV=production", "--env", "X=-a=b c",
    ]  # fmt: skip


def test_heroku_command(spec: BuildSpec) -> None:
    web = str((spec.source_dir / "web").resolve())
    assert HerokuBuildpacksBuilder(docker_client=FakeApi()).command(spec) == [
        "pack", "build", "slipway/app:7", "--path", web, "--builder", "heroku/builder:24",
        "--env", "NODE_ENV=production", "--env", "X=-a=b c",
    ]  # fmt: skip


def test_paketo_command(spec: BuildSpec) -> None:
    web = str((spec.source_dir / "web").resolve())
    command = PaketoBuildpacksBuilder(docker_client=FakeApi()).command(spec)
    assert command[:7] == [
        "pack", "build", "slipway/app:7", "--path", web,
        "--builder", "paketobuildpacks/builder-jammy-base",
    ]  # fmt: skip


def test_railpack_command(spec: BuildSpec) -> None:
    web = str((spec.source_dir / "web").resolve())
    assert RailpackBuilder(docker_client=FakeApi()).command(spec) == [
        "railpack", "build", web, "--name", "slipway/app:7",
        "--env", "NODE_ENV=production", "--env", "X=-a=b c",
    ]  # fmt: skip


def test_no_cache_flags(tmp_path: Path) -> None:
    spec = BuildSpec(source_dir=tmp_path, tag="t", no_cache=True)
    assert NixpacksBuilder(docker_client=FakeApi()).command(spec)[-1] == "--no-cache"
    assert HerokuBuildpacksBuilder(docker_client=FakeApi()).command(spec)[-1] == "--clear-cache"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tag": "--rm"}, "image tag"),
        ({"context_path": "../x"}, "'..'"),
        ({"context_path": "/etc"}, "absolute"),
        ({"build_args": {"A=B": "x"}}, "invalid build argument"),
        ({"context_path": "missing"}, "build context not found"),
    ],
)
def test_hostile_specs_are_refused(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    spec = BuildSpec(source_dir=tmp_path, tag="t")
    spec = BuildSpec(**{**_fields(spec), **changes})  # type: ignore[arg-type]
    with pytest.raises(BuildError, match=message):
        NixpacksBuilder(docker_client=FakeApi()).command(spec)


def _fields(spec: BuildSpec) -> dict[str, object]:
    return {name: getattr(spec, name) for name in spec.__slots__}


def test_context_symlink_escaping_the_checkout_is_refused(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "out").symlink_to("/etc")
    spec = BuildSpec(source_dir=tmp_path / "repo", tag="t", context_path="out")
    with pytest.raises(BuildError, match="context path escapes the repository"):
        RailpackBuilder(docker_client=FakeApi()).command(spec)


@pytest.mark.parametrize(
    ("builder_class", "cli"),
    [
        (NixpacksBuilder, "nixpacks"),
        (HerokuBuildpacksBuilder, "pack"),
        (PaketoBuildpacksBuilder, "pack"),
        (RailpackBuilder, "railpack"),
    ],
)
def test_missing_cli_says_what_to_do(
    builder_class: type[NixpacksBuilder], cli: str, spec: BuildSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(BuildError) as info:
        builder_class(docker_client=FakeApi()).build(spec, log=_ignore, cancel=CancelToken())
    assert str(info.value) == (
        f"{cli} is not installed on the build server; install it or choose buildType DOCKERFILE"
    )


def _ignore(message: str, *, stream: LogStream = LogStream.STDOUT) -> None:
    pass


def _fake_cli(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def test_installed_cli_runs_with_list_args_and_streams(
    spec: BuildSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_cli(bin_dir, "railpack", 'for a in "$@"; do echo "arg:$a"; done; echo oops >&2')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin:/bin")
    logged = Lines()
    image = RailpackBuilder(docker_client=FakeApi()).build(spec, log=logged, cancel=CancelToken())
    assert image == "sha256:slipway/app:7"
    assert "arg:X=-a=b c" in logged and "oops" in logged
    assert logged[0].startswith("Running railpack build ")


def test_failing_cli_reports_exit_code(tmp_path: Path) -> None:
    script = tmp_path / "cli"
    _fake_cli(tmp_path, "cli", "echo bad thing; exit 4")
    with pytest.raises(BuildError, match="cli exited with code 4: bad thing"):
        run_checked([str(script)], log=_ignore, cancel=CancelToken())


def test_cancel_kills_the_cli_and_its_children(tmp_path: Path) -> None:
    _fake_cli(tmp_path, "cli", "echo started; sleep 30 & wait")
    cancel = CancelToken()
    lines: list[str] = []

    def log(message: str, *, stream: LogStream = LogStream.STDOUT) -> None:
        lines.append(message)
        threading.Timer(0.2, cancel.cancel).start()

    started = time.monotonic()
    with pytest.raises(Cancelled):
        run_checked([str(tmp_path / "cli")], log=log, cancel=cancel)
    assert time.monotonic() - started < 5
    assert lines == ["started"]


def test_static_dockerfile_serves_the_publish_dir_with_busybox() -> None:
    text = StaticBuilder(docker_client=FakeApi()).dockerfile_text()
    assert text.startswith("FROM busybox:1.36\n")
    assert "COPY . /www" in text
    assert '"httpd", "-f", "-p", "80", "-h", "/www"' in text


def test_the_logged_command_masks_build_argument_values(spec: BuildSpec) -> None:
    """Build arguments are secrets like env: the "Running ..." line shows names only."""
    from app.builders.unavailable import _shown

    shown = _shown(NixpacksBuilder(docker_client=FakeApi()).command(spec), spec)
    assert "NODE_ENV=********" in shown and "X=********" in shown
    assert not any("production" in arg or "-a=b c" in arg for arg in shown)
