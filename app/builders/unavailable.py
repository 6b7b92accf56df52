"""Builders that shell out to a CLI (nixpacks, pack, railpack), and the static-site builder.

The CLIs are not installed on every build server: each builder knows the exact command
it would run and fails with a clear message when its CLI is missing.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from app.builders.dockerfile import DockerfileBuilder, checked_build_args, resolve_context_dir
from app.errors import BuildError
from app.masking import MASK
from app.processes import run_streaming
from app.types import BuildSpec, CancelToken, LogFn, LogStream


class CliBuilder:
    """Runs ``command(spec)`` and returns the id of the image it tagged ``spec.tag``."""

    cli: ClassVar[str]

    def __init__(self, *, docker_client: Any) -> None:
        self._api: Any = getattr(docker_client, "api", docker_client)

    def command(self, spec: BuildSpec) -> list[str]:
        """The argv this builder runs for ``spec`` (``argv[0]`` is the bare CLI name)."""
        raise NotImplementedError

    def build(self, spec: BuildSpec, *, log: LogFn, cancel: CancelToken) -> str:
        """Run the CLI, streaming its output; raise BuildError if it is missing or fails."""
        command = self.command(spec)
        executable = shutil.which(self.cli)
        if executable is None:
            raise BuildError(
                f"{self.cli} is not installed on the build server; "
                "install it or choose buildType DOCKERFILE"
            )
        cancel.check()
        log(f"Running {' '.join(_shown(command, spec))}", stream=LogStream.SYSTEM)
        run_checked([executable, *command[1:]], log=log, cancel=cancel)
        try:
            return str(self._api.inspect_image(spec.tag)["Id"])
        except Exception as exc:  # noqa: BLE001 - any docker failure means "no image"
            raise BuildError(f"{self.cli} finished but image {spec.tag} is missing") from exc


def _env_flags(spec: BuildSpec) -> list[str]:
    flags: list[str] = []
    for key, value in checked_build_args(spec).items():
        flags += ["--env", f"{key}={value}"]
    return flags


def _shown(command: list[str], spec: BuildSpec) -> list[str]:
    """``command`` as it may be logged: build argument values (secrets) masked."""
    hidden = {f"{key}={value}": f"{key}={MASK}" for key, value in spec.build_args.items()}
    return [hidden.get(arg, arg) for arg in command]


def _checked(spec: BuildSpec) -> tuple[str, str]:
    """(context directory, tag), neither able to pass as an option."""
    if not spec.tag or spec.tag.startswith("-"):
        raise BuildError(f"image tag must be non-empty and not start with '-': {spec.tag!r}")
    return str(resolve_context_dir(spec)), spec.tag


class NixpacksBuilder(CliBuilder):
    """``nixpacks build DIR --name TAG [--env K=V]...``"""

    cli = "nixpacks"

    def command(self, spec: BuildSpec) -> list[str]:
        directory, tag = _checked(spec)
        no_cache = ["--no-cache"] if spec.no_cache else []
        return ["nixpacks", "build", directory, "--name", tag, *_env_flags(spec), *no_cache]


class PackBuilder(CliBuilder):
    """``pack build TAG --path DIR --builder IMAGE [--env K=V]...``"""

    cli = "pack"
    builder_image: ClassVar[str]

    def command(self, spec: BuildSpec) -> list[str]:
        directory, tag = _checked(spec)
        clear = ["--clear-cache"] if spec.no_cache else []
        return [
            "pack", "build", tag, "--path", directory, "--builder", self.builder_image,
            *_env_flags(spec), *clear,
        ]  # fmt: skip


class HerokuBuildpacksBuilder(PackBuilder):
    builder_image = "heroku/builder:24"


class PaketoBuildpacksBuilder(PackBuilder):
    builder_image = "paketobuildpacks/builder-jammy-base"


class RailpackBuilder(CliBuilder):
    """``railpack build DIR --name TAG [--env K=V]...``"""

    cli = "railpack"

    def command(self, spec: BuildSpec) -> list[str]:
        directory, tag = _checked(spec)
        return ["railpack", "build", directory, "--name", tag, *_env_flags(spec)]


def run_checked(command: list[str], *, log: LogFn, cancel: CancelToken) -> None:
    """:func:`app.processes.run_streaming`; a non-zero exit is a BuildError with the last
    lines."""
    try:
        code, tail = run_streaming(command, log=log, cancel=cancel)
    except OSError as exc:
        raise BuildError(f"could not start {Path(command[0]).name}: {exc}") from exc
    if code != 0:
        raise BuildError(f"{Path(command[0]).name} exited with code {code}: {' | '.join(tail)}")


STATIC_DOCKERFILE = """\
FROM {base_image}
COPY . /www
EXPOSE 80
CMD ["httpd", "-f", "-p", "80", "-h", "/www"]
"""


class StaticBuilder:
    """Serves ``spec.context_path`` (the publish directory) with busybox httpd on port 80."""

    base_image = "busybox:1.36"

    def __init__(self, *, docker_client: Any) -> None:
        self._dockerfile_builder = DockerfileBuilder(docker_client)

    def dockerfile_text(self) -> str:
        return STATIC_DOCKERFILE.format(base_image=self.base_image)

    def build(self, spec: BuildSpec, *, log: LogFn, cancel: CancelToken) -> str:
        """Build an httpd image whose /www is the publish directory."""
        context_dir = resolve_context_dir(spec)
        with tempfile.TemporaryDirectory(prefix="slipway-static-") as tmp:
            dockerfile = Path(tmp) / "Dockerfile"
            dockerfile.write_text(self.dockerfile_text())
            return self._dockerfile_builder.build_context(
                context_dir=context_dir, dockerfile=dockerfile, spec=spec, log=log, cancel=cancel
            )
