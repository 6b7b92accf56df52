"""Inputs of application mutations, and their validation into table columns."""

from __future__ import annotations

import re
import secrets
from typing import Any

import strawberry

from app.crypto import Cipher
from app.errors import BadInput
from app.graphql.enums import BuildType, PublishMode, SourceType, TriggerType
from app.graphql.limits import (
    ENV_ENTRIES_MAX,
    ENV_KEY_MAX,
    ENV_VALUE_MAX,
    NAME_MAX,
    check_args,
    check_display_name,
    check_items,
    check_length,
)
from app.graphql.registries.references import FIELDS as REGISTRY_FIELDS
from app.graphql.registries.references import reference
from app.runtime.host_paths import normalised
from app.sources.validate import (
    split_credentials,
    validate_env_key,
    validate_known_hosts,
    validate_ref,
    validate_relative_path,
    validate_repository,
    validate_ssh_key,
    validate_watch_paths,
)
from app.types import GIT_SOURCES

APP_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,499}$")
VOLUME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
DOMAIN = re.compile(
    r"^(?=.{1,200}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)*[a-zA-Z]{2,63}$"
)
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
MOUNTS_MAX = 100
PORTS_MAX = 100
PATH_MAX = 4096
SECRET_MAX = 16_384  # an ssh key or registry token
KNOWN_HOSTS_MAX = 65_536


@strawberry.input
class EnvVarInput:
    key: str
    value: str


@strawberry.input
class PortInput:
    published_port: int
    target_port: int
    publish_mode: PublishMode = PublishMode.INGRESS


@strawberry.input
class MountInput:
    type: str = strawberry.field(description="bind or volume")
    source: str
    target: str
    read_only: bool = False


@strawberry.input
class BuildArgInput:
    key: str
    value: str = strawberry.field(description="write-only, stored encrypted, masked in logs")


@strawberry.input
class BuildSecretInput:
    id: str = strawberry.field(
        description="the id a Dockerfile mounts: RUN --mount=type=secret,id=<id>"
    )
    value: str = strawberry.field(
        description="write-only, stored encrypted; never in an image layer, the image config, "
        "docker history or a log"
    )


@strawberry.input
class ApplicationSettingsInput:
    """Fields shared by create and update; on update, an omitted field is left as it is."""

    repository: str | None = None
    branch: str | None = None
    docker_image: str | None = None
    build_type: BuildType | None = None
    dockerfile: str | None = None
    context_path: str | None = None
    build_args: list[BuildArgInput] | None = strawberry.field(
        default=None,
        description="docker build arguments: values are write-only (buildArgKeys shows names), "
        "stored encrypted and masked in build logs; the list replaces the stored one",
    )
    docker_context_path: str | None = strawberry.field(
        default=None,
        description="the build context, relative to the repository (the same setting as "
        "contextPath; give one of them)",
    )
    docker_build_stage: str | None = strawberry.field(
        default=None, description="the Dockerfile stage to build (--target); empty: the last"
    )
    build_secrets: list[BuildSecretInput] | None = strawberry.field(
        default=None,
        description="BuildKit secret mounts (RUN --mount=type=secret,id=...): values are "
        "write-only (buildSecretKeys shows ids), stored encrypted, masked in logs and kept out "
        "of every image layer; the list replaces the stored one, an empty list removes them",
    )
    build_memory_limit_mb: int | None = strawberry.field(
        default=None, description="megabytes each build step may use; 0 removes the limit"
    )
    build_cpu_limit: float | None = strawberry.field(
        default=None, description="cores each build step may use; 0 removes the limit"
    )
    clean_cache: bool | None = strawberry.field(
        default=None,
        description="every build runs without the layer cache and pulls its base images "
        "fresh (default false)",
    )
    env: list[EnvVarInput] | None = None
    ports: list[PortInput] | None = None
    mounts: list[MountInput] | None = None
    replicas: int | None = None
    cpu_limit: float | None = strawberry.field(default=None, description="cores")
    memory_limit_mb: int | None = strawberry.field(default=None, description="megabytes")
    health_check_command: list[str] | None = strawberry.field(
        default=None, description='Docker health check, e.g. ["CMD", "wget", "-qO-", "..."]'
    )
    health_check_path: str | None = strawberry.field(
        default=None, description="HTTP path probed on the first port during VERIFY_HEALTH"
    )
    health_timeout: float | None = strawberry.field(default=None, description="seconds")
    command: list[str] | None = None
    deploy_timeout: float | None = strawberry.field(
        default=None, description="seconds a deployment may run before it is stopped (ERROR)"
    )
    keep_deployments: int | None = strawberry.field(
        default=None, description="finished deployments kept (older ones and images pruned)"
    )
    build_server_id: strawberry.ID | None = strawberry.field(
        default=None, description="the server that builds (its own concurrency limit)"
    )
    ssh_key: str | None = strawberry.field(
        default=None,
        description="private key (OpenSSH or PEM, no passphrase) for ssh:// and user@host:path "
        "repositories; write-only, stored encrypted; an empty string removes it",
    )
    known_hosts: str | None = strawberry.field(
        default=None,
        description="known_hosts lines pinning the git server's host keys; empty: the key seen "
        "on first use is accepted and recorded here",
    )
    submodules: bool | None = strawberry.field(
        default=None, description="also fetch git submodules (recursively, depth 1)"
    )
    registry_username: str | None = strawberry.field(
        default=None, description="registry user for pulling dockerImage; empty removes"
    )
    registry_password: str | None = strawberry.field(
        default=None, description="registry password or token; write-only, stored encrypted"
    )
    auto_deploy: bool | None = strawberry.field(
        default=None, description="webhook pushes deploy (default true)"
    )
    trigger_type: TriggerType | None = strawberry.field(
        default=None, description="PUSH: commits to the branch deploy; TAG: new tags deploy"
    )
    watch_paths: list[str] | None = strawberry.field(
        default=None,
        description="glob patterns (e.g. src/**, *.py); a push changing none of them is skipped",
    )
    preview_enabled: bool | None = strawberry.field(
        default=None, description="deploy a preview application for each open pull request"
    )
    preview_limit: int | None = strawberry.field(
        default=None, description="most previews at once; more pull requests are not deployed"
    )
    preview_env: list[EnvVarInput] | None = strawberry.field(
        default=None,
        description="env of previews (on top of the parent's only with previewInheritEnv)",
    )
    preview_inherit_env: bool | None = strawberry.field(
        default=None,
        description="previews of same-repository pull requests also get the parent's env "
        "(default false); a fork's preview never does",
    )
    preview_allow_forks: bool | None = strawberry.field(
        default=None,
        description="build previews of pull requests from other repositories (forks), with "
        "previewEnv only: no parent env, bind mounts, build args or credentials (default false)",
    )
    preview_port_base: int | None = strawberry.field(
        default=None, description="a preview publishes its first port at base + PR number"
    )
    preview_domain: str | None = strawberry.field(
        default=None, description="previews are labelled with host pr-<n>-<appName>.<domain>"
    )
    registry_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET,
        description="the registry each build is pushed to (see registries); null clears",
    )
    rollback_registry_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET,
        description="the registry rollback copies are pushed to; null clears",
    )
    rollback_active: bool | None = strawberry.field(
        default=None,
        description="keep a rollback point of every DONE deployment (default true); off: "
        "rollbackDeployment is refused and new deployments keep none",
    )
    restore_on_failure: bool | None = strawberry.field(
        default=None,
        description="put the previous release back when a new one fails VERIFY_HEALTH "
        "(default true); off: the failed release is left in place",
    )


@strawberry.input
class CreateApplicationInput(ApplicationSettingsInput):
    name: str
    source_type: SourceType
    app_name: str | None = strawberry.field(default=None, description="Swarm service name")
    build_type: BuildType | None = BuildType.DOCKERFILE
    dockerfile: str | None = "Dockerfile"


@strawberry.input
class UpdateApplicationInput(ApplicationSettingsInput):
    name: str | None = None


def new_app_name(name: str, requested: str | None) -> str:
    if requested is not None:
        if not APP_NAME.match(requested):
            raise BadInput("appName must be 1-63 of a-z, 0-9 and '-', starting alphanumeric")
        return requested
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:50] or "app"
    return f"{slug}-{secrets.token_hex(3)}"


def check_name(name: str) -> str:
    """1 to 100 characters; no control or bidirectional-override characters."""
    return check_display_name(name, "name", NAME_MAX)


def settings_columns(data: ApplicationSettingsInput, cipher: Cipher) -> dict[str, Any]:
    """Validated columns for the fields that were given; nothing is half-applied."""
    cols: dict[str, Any] = {}
    if data.docker_context_path is not None and data.context_path is not None:
        if data.docker_context_path != data.context_path:
            raise BadInput("give contextPath or dockerContextPath, not two different paths")
    for field, convert in _CONVERTERS.items():
        value = getattr(data, field)
        if value is not None:
            cols.update(convert(value, cipher))
    for column, label in REGISTRY_FIELDS.items():  # explicit null clears; omitted keeps
        value = getattr(data, column)
        if value is not strawberry.UNSET:
            cols[column] = reference(value, label)
    return cols


def check_source(source_type: SourceType, cols: dict[str, Any]) -> None:
    """The source settings an application of ``source_type`` cannot do without."""
    if source_type in GIT_SOURCES and not cols.get("repository"):
        raise BadInput(f"a {source_type.value} application needs a repository URL")
    if source_type == SourceType.DOCKER and not cols.get("docker_image"):
        raise BadInput("a DOCKER application needs dockerImage")


def _repository(value: str, cipher: Cipher) -> dict[str, Any]:
    check_length(value, "repository", 2048)
    clean, user, password = split_credentials(validate_repository(value))
    check_length(user or "", "repository user name", 200)
    return {
        "repository": clean,
        "repository_username": user,
        "repository_password_enc": cipher.encrypt_json(password) if password else None,
    }


def _pairs(value: list[EnvVarInput] | list[BuildArgInput], field: str) -> dict[str, str]:
    """Checked ``key=value`` pairs: valid, bounded, each name once."""
    check_items(value, field, ENV_ENTRIES_MAX)
    pairs: dict[str, str] = {}
    for item in value:
        validate_env_key(check_length(item.key, f"{field} key", ENV_KEY_MAX))
        check_length(item.value, f"{field} value of {item.key}", ENV_VALUE_MAX)
        if "\x00" in item.value:
            raise BadInput(f"{field} value of {item.key} must not contain NUL")
        if item.key in pairs:
            raise BadInput(f"{field} key {item.key!r} is given twice")
        pairs[item.key] = item.value
    return pairs


def _env(value: list[EnvVarInput], cipher: Cipher) -> dict[str, Any]:
    env = _pairs(value, "env")
    return {"env_enc": cipher.encrypt_json(env), "env_keys": sorted(env)}


def _ports(value: list[PortInput], _: Cipher) -> dict[str, Any]:
    check_items(value, "ports", PORTS_MAX)
    seen: set[int] = set()
    ports = []
    for p in value:
        for label, port in (("publishedPort", p.published_port), ("targetPort", p.target_port)):
            if not 1 <= port <= 65535:
                raise BadInput(f"{label} must be within 1-65535, got {port}")
        if p.published_port in seen:
            raise BadInput(f"publishedPort {p.published_port} is given twice")
        seen.add(p.published_port)
        ports.append(
            {
                "published_port": p.published_port,
                "target_port": p.target_port,
                "publish_mode": PublishMode(p.publish_mode).value,
            }
        )
    return {"ports": ports}


def _mounts(value: list[MountInput], _: Cipher) -> dict[str, Any]:
    """Well-formed mounts; whether this key may bind a host path is decided in mounts.py."""
    check_items(value, "mounts", MOUNTS_MAX)
    mounts = []
    targets: set[str] = set()
    for m in value:
        check_length(m.source, "mount source", PATH_MAX)
        check_length(m.target, "mount target", PATH_MAX)
        if m.type not in ("bind", "volume"):
            raise BadInput(f"mount type must be bind or volume, got {m.type[:20]!r}")
        target = normalised(m.target, "mount target")
        if target == "/":
            raise BadInput("mount target must not be / (the container's root)")
        if target in targets:
            raise BadInput(f"mount target {target} is given twice")
        targets.add(target)
        source = normalised(m.source) if m.type == "bind" else m.source
        if m.type == "volume" and not VOLUME.match(m.source):
            raise BadInput(f"volume name {m.source!r} is not valid")
        mounts.append(
            {"type": m.type, "source": source, "target": target, "read_only": m.read_only}
        )
    return {"mounts": mounts}


def _build_args(value: list[BuildArgInput], cipher: Cipher) -> dict[str, Any]:
    """Encrypted like env; the clear ``build_args`` column of older rows is emptied."""
    args = _pairs(value, "buildArgs")
    return {
        "build_args_enc": cipher.encrypt_json(args) if args else None,
        "build_arg_keys": sorted(args),
        "build_args": {},
    }


BUILD_STAGE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$")
BUILD_SECRET_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
BUILD_SECRET_MAX = SECRET_MAX  # a token, a key, a config file: bounded like ssh keys
BUILD_SECRETS_MAX = 50


def _build_stage(value: str, _: Cipher) -> dict[str, Any]:
    if value and not BUILD_STAGE.fullmatch(value):
        raise BadInput(
            f"dockerBuildStage {value[:60]!r} is not a stage name: a letter, then letters, "
            "digits, '_', '.' or '-' (at most 128)"
        )
    return {"docker_build_stage": value or None}


def _build_secrets(value: list[BuildSecretInput], cipher: Cipher) -> dict[str, Any]:
    """Encrypted ``{id: value}``; the ids alone in ``build_secret_keys``."""
    check_items(value, "buildSecrets", BUILD_SECRETS_MAX)
    found: dict[str, str] = {}
    for item in value:
        if not BUILD_SECRET_ID.fullmatch(item.id):
            raise BadInput(
                f"buildSecrets id {item.id[:60]!r} is not valid: 1-128 of letters, digits, "
                "'_', '.' and '-', not starting with '.' or '-'"
            )
        if item.id in found:
            raise BadInput(f"buildSecrets id {item.id!r} is given twice")
        if not item.value:
            raise BadInput(f"buildSecrets value of {item.id} is empty")
        if len(item.value) > BUILD_SECRET_MAX:
            raise BadInput(
                f"buildSecrets value of {item.id} is longer than {BUILD_SECRET_MAX} characters"
            )
        found[item.id] = item.value
    return {
        "build_secrets_enc": cipher.encrypt_json(found) if found else None,
        "build_secret_keys": sorted(found),
    }


def _build_memory(value: int, _: Cipher) -> dict[str, Any]:
    if value != 0 and not 6 <= value <= 1024 * 1024:
        raise BadInput(f"buildMemoryLimitMb must be 0 (no limit) or 6-1048576, got {value}")
    return {"build_memory_limit": value * 1024 * 1024 or None}


def _build_cpu(value: float, _: Cipher) -> dict[str, Any]:
    if value != 0 and not 0.01 <= value <= 256:
        raise BadInput(f"buildCpuLimit must be 0 (no limit) or 0.01-256, got {value}")
    return {"build_cpu_limit": value or None}


def _command(value: list[str], _: Cipher) -> dict[str, Any]:
    return {"command": check_args(value, "command") or None}


def _health_command(value: list[str], _: Cipher) -> dict[str, Any]:
    check_args(value, "healthCheckCommand")
    if not value:
        return {"health_check_command": None}
    if value[0] not in ("CMD", "CMD-SHELL", "NONE"):
        value = ["CMD", *value]
    return {"health_check_command": value}


def _health_path(value: str, _: Cipher) -> dict[str, Any]:
    check_length(value, "healthCheckPath", 500)
    if not value.startswith("/") or any(c in value for c in " \r\n\t"):
        raise BadInput(f"healthCheckPath must start with '/' and hold no spaces: {value!r}")
    return {"health_check_path": value}


def _docker_image(value: str, _: Cipher) -> dict[str, Any]:
    check_length(value, "dockerImage", 500)
    if not IMAGE.match(value):
        raise BadInput(f"dockerImage {value!r} is not an image reference")
    return {"docker_image": value}


def _ssh_key(value: str, cipher: Cipher) -> dict[str, Any]:
    check_length(value, "sshKey", SECRET_MAX)
    return {"ssh_key_enc": cipher.encrypt_json(validate_ssh_key(value)) if value else None}


def _secret(column: str, field: str) -> Any:
    def convert(value: str, cipher: Cipher) -> dict[str, Any]:
        check_length(value, field, SECRET_MAX)
        return {column: cipher.encrypt_json(value) if value else None}

    return convert


def _registry_user(value: str) -> str:
    if _CONTROL_OR_SPACE.search(value) or len(value) > 200:
        raise BadInput("registryUsername must be at most 200 characters, without spaces")
    return value


def _preview_env(value: list[EnvVarInput], cipher: Cipher) -> dict[str, Any]:
    return {"preview_env_enc": cipher.encrypt_json(_pairs(value, "previewEnv"))}


def _domain(value: str) -> str:
    check_length(value, "previewDomain", 253)
    if value and not DOMAIN.match(value):
        raise BadInput(f"previewDomain {value!r} is not a domain name")
    return value.lower()


def _ranged(column: str, label: str, low: float, high: float) -> Any:
    def convert(value: float, _: Cipher) -> dict[str, Any]:
        if not low <= value <= high:
            raise BadInput(f"{label} must be within {low:g}-{high:g}, got {value}")
        return {column: value}

    return convert


def _memory(value: int, _: Cipher) -> dict[str, Any]:
    if not 4 <= value <= 1024 * 1024:
        raise BadInput(f"memoryLimitMb must be within 4-1048576, got {value}")
    return {"memory_limit": value * 1024 * 1024}


def _bounded(field: str, limit: int, check: Any) -> Any:
    """``check`` of a string once it is known to be at most ``limit`` characters."""
    return lambda value: check(check_length(value, field, limit))


def _watch_paths(value: list[str]) -> list[str]:
    for index, pattern in enumerate(value):
        check_length(pattern, f"watchPaths[{index}]", 500)
    return validate_watch_paths(value)


def _plain(column: str, check: Any = None) -> Any:
    def convert(value: Any, _: Cipher) -> dict[str, Any]:
        return {column: check(value) if check else value}

    return convert


_CONVERTERS: dict[str, Any] = {
    "repository": _repository,
    "branch": _plain("branch", _bounded("branch", 255, lambda v: validate_ref(v, "branch"))),
    "docker_image": _docker_image,
    "build_type": _plain("build_type", lambda v: BuildType(v).value),
    "dockerfile": _plain(
        "dockerfile", _bounded("dockerfile", 500, lambda v: validate_relative_path(v, "dockerfile"))
    ),
    "context_path": _plain(
        "context_path",
        _bounded("contextPath", 500, lambda v: validate_relative_path(v, "contextPath")),
    ),
    "docker_context_path": _plain(
        "context_path",
        _bounded(
            "dockerContextPath", 500, lambda v: validate_relative_path(v, "dockerContextPath")
        ),
    ),
    "build_args": _build_args,
    "docker_build_stage": _build_stage,
    "build_secrets": _build_secrets,
    "build_memory_limit_mb": _build_memory,
    "build_cpu_limit": _build_cpu,
    "clean_cache": _plain("clean_cache", bool),
    "env": _env,
    "ports": _ports,
    "mounts": _mounts,
    "replicas": _ranged("replicas", "replicas", 0, 100),
    "cpu_limit": _ranged("cpu_limit", "cpuLimit", 0.01, 256),
    "memory_limit_mb": _memory,
    "health_check_command": _health_command,
    "health_check_path": _health_path,
    "health_timeout": _ranged("health_timeout", "healthTimeout", 1, 3600),
    "command": _command,
    "deploy_timeout": _ranged("deploy_timeout", "deployTimeout", 10, 7 * 24 * 3600),
    "keep_deployments": _ranged("keep_deployments", "keepDeployments", 1, 10_000),
    "build_server_id": _plain("build_server_id", _bounded("buildServerId", 24, str)),
    "ssh_key": _ssh_key,
    "known_hosts": _plain(
        "known_hosts",
        _bounded("knownHosts", KNOWN_HOSTS_MAX, lambda v: validate_known_hosts(v) or None),
    ),
    "submodules": _plain("submodules", bool),
    "registry_username": _plain("registry_username", lambda v: _registry_user(v) or None),
    "registry_password": _secret("registry_password_enc", "registryPassword"),
    "auto_deploy": _plain("auto_deploy", bool),
    "trigger_type": _plain("trigger_type", lambda v: TriggerType(v).value),
    "watch_paths": _plain("watch_paths", _watch_paths),
    "preview_enabled": _plain("preview_enabled", bool),
    "preview_limit": _ranged("preview_limit", "previewLimit", 1, 100),
    "preview_env": _preview_env,
    "preview_inherit_env": _plain("preview_inherit_env", bool),
    "preview_allow_forks": _plain("preview_allow_forks", bool),
    "preview_port_base": _ranged("preview_port_base", "previewPortBase", 1, 65535),
    "preview_domain": _plain("preview_domain", lambda v: _domain(v) or None),
    "rollback_active": _plain("rollback_active", bool),
    "restore_on_failure": _plain("restore_on_failure", bool),
}
