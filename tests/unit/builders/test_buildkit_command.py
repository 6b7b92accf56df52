"""The BuildKit CLI's command and environment: no secret or build arg value in argv."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from app.builders import buildkit
from app.builders.buildkit import BuildKitCli, _write_secrets, buildkit_command, buildkit_env
from app.errors import BuildError
from app.types import BuildSpec, CancelToken, LogStream

SECRET = "s3cret-token-value"


def _spec(tmp_path: Path, **extra: object) -> BuildSpec:
    return BuildSpec(
        source_dir=tmp_path,
        tag="slipway/web:1",
        labels={"slipway.deployment": "1"},
        secrets={"npm": SECRET},
        **extra,  # type: ignore[arg-type]
    )


def test_command_has_no_values_of_secrets_or_build_args(tmp_path: Path) -> None:
    args = {"TOKEN": "arg-value-1", "HTTP_PROXY": "http://u:pw@p:3128", "PATH": "/opt/bin"}
    command = buildkit_command(
        cli="/usr/bin/docker",
        context_dir=tmp_path / "ctx",
        dockerfile=tmp_path / "Dockerfile",
        spec=_spec(tmp_path, no_cache=True),
        build_args=args,
        target="runtime",
        secret_files={"npm": tmp_path / "secret-0"},
        iidfile=tmp_path / "iid",
    )
    joined = " ".join(command)
    assert SECRET not in joined and "arg-value-1" not in joined and "pw@" not in joined
    assert command[:3] == ["/usr/bin/docker", "build", "--progress=plain"]
    assert ["--build-arg", "TOKEN"] == command[
        command.index("TOKEN") - 1 : command.index("TOKEN") + 1
    ]
    assert "PATH=/opt/bin" in command, "a name the CLI's own env needs goes in argv"
    assert f"id=npm,src={tmp_path / 'secret-0'}" in command
    assert ["--target", "runtime"] == command[
        command.index("--target") : command.index("--target") + 2
    ]
    assert "--no-cache" in command and "--pull" in command
    assert command[-2:] == ["--", str(tmp_path / "ctx")]
    assert "slipway.deployment=1" in command


def test_env_carries_buildkit_the_engine_and_the_values(tmp_path: Path) -> None:
    environ = {"PATH": "/usr/bin", "HOME": "/root", "SLIPWAY_SECRET_KEY": "k", "AWS_KEY": "x"}
    env = buildkit_env(
        {"TOKEN": "v", "PATH": "/opt"}, docker_host="unix:///run/d.sock", environ=environ
    )
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "DOCKER_BUILDKIT": "1",
        "DOCKER_HOST": "unix:///run/d.sock",
        "TOKEN": "v",
    }, "nothing else of Slipway's environment reaches the CLI"
    assert (
        buildkit_env({}, docker_host=None, environ={"DOCKER_HOST": "tcp://e:2376"})["DOCKER_HOST"]
        == "tcp://e:2376"
    )


def test_secret_files_are_private(tmp_path: Path) -> None:
    files = _write_secrets(tmp_path, {"a": "one", "../b": "two"})
    assert [p.name for p in files.values()] == ["secret-0", "secret-1"]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in files.values())
    assert files["a"].read_text() == "one"


def test_tag_that_could_be_an_option_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="tag"):
        buildkit_command(
            cli="docker",
            context_dir=tmp_path,
            dockerfile=tmp_path / "Dockerfile",
            spec=BuildSpec(source_dir=tmp_path, tag="--push"),
            build_args={},
            target=None,
            secret_files={},
            iidfile=tmp_path / "iid",
        )


def test_missing_cli_is_a_clear_build_error(tmp_path: Path) -> None:
    builder = BuildKitCli(cli="no-such-docker-cli")
    with pytest.raises(BuildError, match="docker CLI with BuildKit.*no-such-docker-cli"):
        builder.build(
            context_dir=tmp_path,
            dockerfile=tmp_path / "Dockerfile",
            spec=_spec(tmp_path),
            build_args={},
            target=None,
            log=lambda _m, *, stream=LogStream.STDOUT: None,
            cancel=CancelToken(),
        )


def test_a_cli_without_buildkit_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "docker"
    fake.write_text(
        '#!/bin/sh\nls "$(dirname "$(echo "$@" | sed \'s/.*src=\\([^ ]*\\).*/\\1/\')")"\n'
        "echo 'ERROR: BuildKit is enabled but the buildx component is missing' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    lines: list[str] = []
    with pytest.raises(BuildError, match="buildx plugin.*SLIPWAY_DOCKER_CLI"):
        BuildKitCli(cli=str(fake)).build(
            context_dir=tmp_path,
            dockerfile=tmp_path / "Dockerfile",
            spec=_spec(tmp_path),
            build_args={},
            target=None,
            log=lambda m, *, stream=LogStream.STDOUT: lines.append(m),
            cancel=CancelToken(),
        )
    assert "secret-0" in lines, "the secret file existed while the CLI ran"
    assert any("buildx component is missing" in line for line in lines)
    assert list(temp.iterdir()) == [], "the private directory is gone afterwards"


def _cli(path: Path, version: str, *, buildx: bool) -> Path:
    """A stand-in docker CLI printing ``version`` for --version; buildx as told."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = --version ] && {{ echo "Docker version {version}, build x"; exit 0; }}\n'
        f'[ "$1" = buildx ] && exit {0 if buildx else 1}\n'
        "exit 2\n"
    )
    path.chmod(0o755)
    return path


def test_the_default_cli_is_the_first_that_builds_with_buildkit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 28.x client without buildx first on PATH (as on this machine) is passed over for
    a 20.10 one; one with buildx is taken; an explicit setting is used as given."""
    newer = _cli(tmp_path / "path" / "docker", "28.2.2", buildx=False)
    distro = _cli(tmp_path / "usr" / "docker", "20.10.24+dfsg1", buildx=False)
    monkeypatch.setenv("PATH", str(newer.parent))
    monkeypatch.setattr(buildkit, "_CANDIDATES", (str(distro),))
    buildkit.buildkit_cli.cache_clear()
    try:
        assert buildkit.buildkit_cli("docker") == str(distro)
        assert buildkit.buildkit_cli(str(newer)) == str(newer), "a setting is taken as given"
        buildkit.buildkit_cli.cache_clear()
        _cli(newer, "28.2.2", buildx=True)
        assert buildkit.buildkit_cli("docker") == str(newer)
        buildkit.buildkit_cli.cache_clear()
        _cli(newer, "28.2.2", buildx=False)
        monkeypatch.setattr(buildkit, "_CANDIDATES", ())
        # none can: the one found is used, and its failure names buildx (test above)
        assert buildkit.buildkit_cli("docker") == str(newer)
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))
        buildkit.buildkit_cli.cache_clear()
        assert buildkit.buildkit_cli("docker") is None
    finally:
        buildkit.buildkit_cli.cache_clear()
