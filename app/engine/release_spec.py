"""What a deployment released, as versioned JSON: a rollback point's snapshot.

A DONE deployment keeps the service spec it released (image, env, ports, mounts, limits,
health check, command, replicas, labels, health timeout) in ``release_spec_enc``,
encrypted with the application's other secrets (env values are in it). A ROLLBACK
deployment releases that spec again, so it must load whatever Slipway version wrote it:

* every document carries ``"version"``; :data:`UPGRADES` turns a document of version N
  into version N+1, so an old snapshot is carried forward step by step when read (the
  stored text is never rewritten);
* every field but ``image`` has a default, so a field a later version adds is simply
  absent from older documents, and unknown fields are ignored;
* a document from a newer Slipway than this one (a downgrade) is refused with a clear
  message rather than half understood.

Per-deployment labels (``slipway.application``, ``slipway.deployment``) and how the
engine publishes (endpoint mode, registry credentials) are not part of it: they are the
releasing deployment's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.crypto import Cipher
from app.errors import SourceError
from app.types import HealthCheckSpec, MountSpec, PortSpec, PublishMode, ServiceSpec

VERSION = 1
# version N -> version N+1 (none yet: version 1 is the first written)
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}
_PER_DEPLOYMENT = ("slipway.application", "slipway.deployment")


class RollbackPointGone(SourceError):
    """The image of a rollback point is no longer on the engine: the point is forgotten."""

    def __init__(self, message: str, *, deployment_id: str) -> None:
        super().__init__(message)
        self.deployment_id = deployment_id


@dataclass(frozen=True)
class ReleasedSpec:
    """A loaded snapshot: the service spec to release again and its health timeout."""

    service: ServiceSpec
    health_timeout: float | None = None
    admin_binds: frozenset[str] = frozenset()  # bind sources an ADMIN key had set
    version: int = VERSION  # the version it was written as


def dump(
    spec: ServiceSpec, *, health_timeout: float | None, admin_binds: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The snapshot of ``spec`` as the current version writes it. ``admin_binds``: the bind
    sources an ADMIN key set, so releasing it again is checked as the first release was."""
    check = spec.health_check
    sources = {m.source for m in spec.mounts if m.type == "bind"}
    return {
        "version": VERSION,
        "image": spec.image,
        "env": dict(spec.env),
        "ports": [
            {
                "published_port": p.published_port,
                "target_port": p.target_port,
                "publish_mode": p.publish_mode.value,
                "protocol": p.protocol,
            }
            for p in spec.ports
        ],
        "mounts": [
            {"type": m.type, "source": m.source, "target": m.target, "read_only": m.read_only}
            for m in spec.mounts
        ],
        "replicas": spec.replicas,
        "cpu_limit": spec.cpu_limit,
        "memory_limit": spec.memory_limit,
        "health_check": None
        if check is None
        else {
            "test": list(check.test),
            "interval_s": check.interval_s,
            "timeout_s": check.timeout_s,
            "retries": check.retries,
            "start_period_s": check.start_period_s,
        },
        "health_check_path": spec.health_check_path,
        "health_timeout": health_timeout,
        "command": list(spec.command) if spec.command else None,
        "labels": {k: v for k, v in spec.labels.items() if k not in _PER_DEPLOYMENT},
        "admin_binds": sorted(admin_binds & sources),
    }


def load(document: object) -> ReleasedSpec:
    """A snapshot of any version up to :data:`VERSION`; SourceError when unusable."""
    if not isinstance(document, dict) or not isinstance(document.get("version"), int):
        raise SourceError("the rollback point's snapshot is not a release snapshot")
    written = int(document["version"])
    if written > VERSION:
        raise SourceError(
            f"the rollback point's snapshot was written by a newer Slipway (format "
            f"{written}; this one reads up to {VERSION})"
        )
    data = dict(document)
    for version in range(written, VERSION):
        data = UPGRADES[version](data)
    try:
        return ReleasedSpec(
            service=_service(data),
            health_timeout=_float(data, "health_timeout"),
            admin_binds=frozenset(str(b) for b in data.get("admin_binds") or []),
            version=written,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SourceError(f"the rollback point's snapshot cannot be read: {exc!r}") from exc


def encode(
    cipher: Cipher,
    spec: ServiceSpec,
    *,
    health_timeout: float | None,
    admin_binds: frozenset[str] = frozenset(),
) -> str:
    return cipher.encrypt_json(dump(spec, health_timeout=health_timeout, admin_binds=admin_binds))


def decode(cipher: Cipher, token: str) -> ReleasedSpec:
    return load(cipher.decrypt_json(token))


def _service(data: dict[str, Any]) -> ServiceSpec:
    image = data["image"]
    if not isinstance(image, str) or not image:
        raise ValueError("no image")
    check = data.get("health_check")
    return ServiceSpec(
        name="",  # the application's service name, set when released
        image=image,
        env={str(k): str(v) for k, v in (data.get("env") or {}).items()},
        ports=tuple(
            PortSpec(
                published_port=int(p["published_port"]),
                target_port=int(p["target_port"]),
                publish_mode=PublishMode(p.get("publish_mode", "INGRESS")),
                protocol=str(p.get("protocol", "tcp")),
            )
            for p in data.get("ports") or []
        ),
        mounts=tuple(
            MountSpec(
                type=str(m["type"]),
                source=str(m["source"]),
                target=str(m["target"]),
                read_only=bool(m.get("read_only")),
            )
            for m in data.get("mounts") or []
        ),
        replicas=int(data.get("replicas", 1)),
        cpu_limit=_float(data, "cpu_limit"),
        memory_limit=int(data["memory_limit"]) if data.get("memory_limit") else None,
        health_check=None
        if not check
        else HealthCheckSpec(
            test=tuple(str(t) for t in check["test"]),
            interval_s=float(check.get("interval_s", 5.0)),
            timeout_s=float(check.get("timeout_s", 3.0)),
            retries=int(check.get("retries", 3)),
            start_period_s=float(check.get("start_period_s", 0.0)),
        ),
        health_check_path=data.get("health_check_path") or None,
        command=tuple(str(c) for c in data["command"]) if data.get("command") else None,
        labels={str(k): str(v) for k, v in (data.get("labels") or {}).items()},
    )


def _float(data: dict[str, Any], key: str) -> float | None:
    value = data.get(key)
    return float(value) if value is not None else None
