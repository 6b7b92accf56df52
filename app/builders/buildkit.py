"""Dockerfile builds with build secrets: BuildKit through the docker CLI.

The Engine API's classic builder cannot mount secrets, and docker-py has no BuildKit
client, so a build with ``buildSecrets`` runs ``DOCKER_BUILDKIT=1 docker build --secret
id=<id>,src=<file>`` against the same engine (``DOCKER_HOST`` is the engine's address).
``RUN --mount=type=secret,id=<id>`` then sees ``/run/secrets/<id>`` during that step
only: BuildKit mounts it from the client's session and never writes it to a layer, the
image config or ``docker history``.

- Each secret is written to a 0600 file in a private (0700) temporary directory that is
  removed when the build ends, however it ends. Secret values never go in argv.
- Build arg values (and the proxy args) reach the CLI through its environment
  (``--build-arg NAME`` takes the value from there), not its argv, except a name that
  would change the CLI's own environment (``PATH``, ``HOME``, ``DOCKER_*``).
- The CLI leads its own process group; cancelling kills it, which closes its session,
  and the engine stops the build.
- Output (``--progress=plain``) is streamed line by line; the deployment's log writer
  masks it. BuildKit's own cache is the engine's (``CACHED`` marks a reused step): it is
  not kept per application like the classic builder's, and BuildKit in Docker 20.10
  ignores per-build memory and CPU limits, so those builds run without them and the log
  says so.

Needs a docker CLI that builds with BuildKit: Docker >= 18.09 up to 22.x as it is
(``DOCKER_BUILDKIT=1``), 23 and later with the buildx plugin installed
(``SLIPWAY_DOCKER_CLI`` picks the binary; left at ``docker``, the first docker CLI
that can is used: PATH's, then /usr/bin/docker and /usr/local/bin/docker).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from app.errors import BuildError
from app.filemodes import PRIVATE_FILE
from app.processes import run_streaming
from app.types import BuildSpec, CancelToken, LogFn, LogStream

# Variables of the CLI's own environment that it keeps from ours.
_PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "XDG_RUNTIME_DIR")
_DOCKER_ENV = ("DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "DOCKER_CONTEXT")


DEFAULT_CLI = "docker"
# Where a BuildKit-capable CLI may be when the one on PATH is not (a newer client
# without the buildx plugin in front of a distribution's Docker 20.10, say).
_CANDIDATES = ("/usr/bin/docker", "/usr/local/bin/docker")


@functools.lru_cache(maxsize=8)
def buildkit_cli(configured: str) -> str | None:
    """The docker CLI to build with BuildKit: ``configured`` as given (on PATH or a
    path) when it is not the default; for the default, the first ``docker`` (PATH, then
    the usual places) that can: a client before 23 (BuildKit built in) or one with the
    buildx plugin. None when there is none at all; with no capable one, the first found
    (its failure then names buildx). Looked up once per process."""
    if configured != DEFAULT_CLI:
        return shutil.which(configured)
    found = [p for p in dict.fromkeys([shutil.which(DEFAULT_CLI), *_CANDIDATES]) if p]
    found = [p for p in found if os.access(p, os.X_OK)]
    return next((p for p in found if _builds_with_buildkit(p)), found[0] if found else None)


def _builds_with_buildkit(cli: str) -> bool:
    def ok(*args: str) -> subprocess.CompletedProcess[str] | None:
        try:
            done = subprocess.run(
                [cli, *args], capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done if done.returncode == 0 else None

    version = ok("--version")  # "Docker version 20.10.24+dfsg1, build ..." (no engine needed)
    if version is None:
        return False
    match = re.search(r"version (\d+)\.", version.stdout)
    if match and int(match.group(1)) < 23:
        return True
    return ok("buildx", "version") is not None


def _own_name(name: str) -> bool:
    """A build arg name the CLI's environment cannot carry without changing the CLI."""
    return name in _PASSED_ENV or name.startswith("DOCKER_") or name.startswith("BUILDKIT_")


def buildkit_command(
    *,
    cli: str,
    context_dir: Path,
    dockerfile: Path,
    spec: BuildSpec,
    build_args: Mapping[str, str],
    target: str | None,
    secret_files: Mapping[str, Path],
    iidfile: Path,
) -> list[str]:
    """The argv: no secret value, and no build arg value except those of :func:`_own_name`."""
    if not spec.tag or spec.tag.startswith("-"):
        raise BuildError(f"image tag must be non-empty and not start with '-': {spec.tag!r}")
    command = [
        cli, "build", "--progress=plain", "--file", str(dockerfile), "--tag", spec.tag,
        "--iidfile", str(iidfile),
    ]  # fmt: skip
    for name, value in build_args.items():
        command += ["--build-arg", f"{name}={value}" if _own_name(name) else name]
    for key, value in spec.labels.items():
        command += ["--label", f"{key}={value}"]
    for secret_id, path in secret_files.items():
        command += ["--secret", f"id={secret_id},src={path}"]
    if target:
        command += ["--target", target]
    if spec.no_cache:
        command += ["--no-cache", "--pull"]
    return [*command, "--", str(context_dir)]


def buildkit_env(
    build_args: Mapping[str, str], *, docker_host: str | None, environ: Mapping[str, str]
) -> dict[str, str]:
    """The CLI's environment: BuildKit on, the engine's address, the build arg values."""
    env = {k: environ[k] for k in (*_PASSED_ENV, *_DOCKER_ENV) if k in environ}
    env["DOCKER_BUILDKIT"] = "1"
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    elif "DOCKER_HOST" in environ:
        env["DOCKER_HOST"] = environ["DOCKER_HOST"]
    env |= {name: value for name, value in build_args.items() if not _own_name(name)}
    return env


class BuildKitCli:
    """``DOCKER_BUILDKIT=1 docker build`` with secret mounts, against one engine."""

    def __init__(self, *, docker_host: str | None = None, cli: str = "docker") -> None:
        self.docker_host = docker_host
        self.cli = cli

    def build(
        self,
        *,
        context_dir: Path,
        dockerfile: Path,
        spec: BuildSpec,
        build_args: Mapping[str, str],
        target: str | None,
        log: LogFn,
        cancel: CancelToken,
    ) -> str:
        """Build ``spec.tag`` with its secrets mounted; return the image id."""
        executable = buildkit_cli(self.cli)
        if executable is None:
            raise BuildError(
                f"build secrets need the docker CLI with BuildKit on the build server: "
                f"{self.cli!r} is not installed (SLIPWAY_DOCKER_CLI)"
            )
        cancel.check()
        log(
            f"Building with BuildKit ({len(spec.secrets)} build secrets mounted, "
            "never stored in the image)",
            stream=LogStream.SYSTEM,
        )
        if spec.memory_limit or spec.cpu_limit:
            log(
                "Build memory and CPU limits are not applied: BuildKit in Docker 20.10 "
                "ignores them",
                stream=LogStream.SYSTEM,
            )
        private = Path(tempfile.mkdtemp(prefix="slipway-secrets-"))  # 0700
        try:
            files = _write_secrets(private, spec.secrets)
            iidfile = private / "image-id"
            command = buildkit_command(
                cli=executable,
                context_dir=context_dir,
                dockerfile=dockerfile,
                spec=spec,
                build_args=build_args,
                target=target,
                secret_files=files,
                iidfile=iidfile,
            )
            env = buildkit_env(build_args, docker_host=self.docker_host, environ=os.environ)
            _run(command, env=env, log=log, cancel=cancel)
            try:
                image_id = iidfile.read_text().strip()
            except OSError as exc:
                raise BuildError(f"docker build finished but wrote no image id: {exc}") from exc
        finally:
            shutil.rmtree(private, ignore_errors=True)
        log(f"Built {spec.tag} ({image_id})", stream=LogStream.SYSTEM)
        return image_id


def _write_secrets(directory: Path, secrets: Mapping[str, str]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for number, (secret_id, value) in enumerate(secrets.items()):
        path = directory / f"secret-{number}"  # the id is checked, but never a file name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(value)
        files[secret_id] = path
    return files


def _run(command: list[str], *, env: dict[str, str], log: LogFn, cancel: CancelToken) -> None:
    try:
        code, tail = run_streaming(command, env=env, log=log, cancel=cancel, keep=4)
    except OSError as exc:
        raise BuildError(f"could not start {Path(command[0]).name}: {exc}") from exc
    if code != 0:
        text = " | ".join(tail)
        hint = ""
        if "buildx" in text.lower():
            hint = (
                "; this docker CLI cannot build with BuildKit without the buildx plugin: "
                "install it or point SLIPWAY_DOCKER_CLI at one that can (Docker 18.09-22.x)"
            )
        raise BuildError(f"docker build (BuildKit) failed with exit code {code}: {text}{hint}")
