"""Turning the Engine API's build stream into log lines, and checking build paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.builders.dockerfile import DockerfileBuilder, LineBuffer, follow_build, resolve_build_paths
from app.errors import BuildError, Cancelled
from app.types import BuildSpec, CancelToken, LogStream


class Lines(list[str]):
    """A LogFn that keeps the messages."""

    def __call__(self, message: str, *, stream: LogStream = LogStream.STDOUT) -> None:
        self.append(message)


def _follow(chunks: list[dict[str, Any]]) -> tuple[str | None, list[str]]:
    lines = Lines()
    image = follow_build(chunks, log=lines, check=lambda: None)
    return image, lines


def test_stream_chunks_become_whole_lines() -> None:
    image, lines = _follow(
        [
            {"stream": "Step 1/2 : FROM busybox:1.36\n ---> 3839"},
            {"stream": "79501079\n"},
            {"stream": "\n"},
            {"status": "Downloading", "id": "abc", "progress": "[=>  ]"},
            {"stream": "50%\r100%\n"},
            {"aux": {"ID": "sha256:beef"}},
            {"stream": "Successfully built beef"},
        ]
    )
    assert image == "sha256:beef"
    assert lines == [
        "Step 1/2 : FROM busybox:1.36",
        " ---> 383979501079",
        "abc: Downloading [=>  ]",
        "100%",
        "Successfully built beef",
    ]


def test_error_chunk_is_a_build_error_after_flushing_output() -> None:
    lines = Lines()
    chunks: list[dict[str, Any]] = [
        {"stream": "partial output"},
        {"errorDetail": {"code": 3, "message": "x"}, "error": "returned a non-zero code: 3"},
    ]
    with pytest.raises(BuildError, match="docker build failed: returned a non-zero code: 3"):
        follow_build(chunks, log=lines, check=lambda: None)
    assert lines == ["partial output"]


def test_cancellation_is_checked_between_chunks() -> None:
    cancel = CancelToken()
    seen = Lines()

    def chunks() -> Any:
        yield {"stream": "one\n"}
        cancel.cancel("stop")
        yield {"stream": "two\n"}
        raise AssertionError("must not read on")

    with pytest.raises(Cancelled, match="stop"):
        follow_build(chunks(), log=seen, check=cancel.check)
    assert seen == ["one"]


def test_line_buffer_keeps_partial_lines() -> None:
    lines = Lines()
    buffer = LineBuffer(lines)
    buffer.feed("a")
    buffer.feed("b\nc")
    assert lines == ["ab"]
    buffer.flush()
    assert lines == ["ab", "c"]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "docker").mkdir(parents=True)
    (root / "docker" / "Dockerfile.prod").write_text("FROM busybox:1.36\n")
    (root / "web").mkdir()
    return root


def test_paths_resolve_inside_the_checkout(repo: Path) -> None:
    spec = BuildSpec(
        source_dir=repo, tag="t", dockerfile="docker/Dockerfile.prod", context_path="web"
    )
    assert resolve_build_paths(spec) == (
        (repo / "web").resolve(),
        (repo / "docker" / "Dockerfile.prod").resolve(),
    )


@pytest.mark.parametrize(
    ("dockerfile", "message"),
    [
        ("../etc/passwd", "must not contain '..'"),
        ("/etc/passwd", "absolute"),
        ("Dockerfile", "Dockerfile not found at Dockerfile"),
        ("docker", "Dockerfile not found at docker"),
        ("link", "Dockerfile path escapes the repository"),
    ],
)
def test_bad_dockerfile_paths_are_refused(repo: Path, dockerfile: str, message: str) -> None:
    (repo / "link").symlink_to("/etc/passwd")
    with pytest.raises(BuildError, match=message):
        resolve_build_paths(BuildSpec(source_dir=repo, tag="t", dockerfile=dockerfile))


def test_engine_errors_become_build_errors(repo: Path, tmp_path: Path) -> None:
    import docker

    client = docker.DockerClient(base_url=f"unix://{tmp_path}/no.sock", version="1.41")
    spec = BuildSpec(source_dir=repo, tag="t", dockerfile="docker/Dockerfile.prod")
    with pytest.raises(BuildError, match="docker build of t failed: "):
        DockerfileBuilder(client).build(spec, log=Lines(), cancel=CancelToken())
    client.close()
